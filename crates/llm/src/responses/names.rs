//! Namespace tools (`{"type":"namespace","name":"mcp__srv","tools":[...]}`) have no chat
//! equivalent: their functions become plain chat functions named `<namespace>__<name>`,
//! which is also how Claude Code names MCP tools (`mcp__srv__echo`). The name must match
//! `^[a-zA-Z0-9_-]{1,64}$` for every chat provider, so a name that would not is sanitized
//! and shortened with a hash suffix. Reversal never parses the flat name: the request
//! mapper records flat -> (namespace, name) in the context, so any shortening is safe.

/// Longest function name chat providers accept.
pub const MAX_NAME_LEN: usize = 64;

/// Chat function name for `name` inside `namespace`.
pub fn flat_name(namespace: &str, name: &str) -> String {
    let joined = format!("{namespace}__{name}");
    if joined.len() <= MAX_NAME_LEN && joined.bytes().all(is_name_byte) {
        return joined;
    }
    hashed_name(&joined, 0)
}

/// A shortened, sanitized name with a hash of the original; `salt` picks another one
/// when the first collides with a name already in use.
pub(crate) fn hashed_name(original: &str, salt: u32) -> String {
    let sanitized: String = original
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // 55 chars + '_' + 8 hex digits = 64.
    let prefix: String = sanitized.chars().take(MAX_NAME_LEN - 9).collect();
    format!("{prefix}_{:08x}", fnv1a(original, salt))
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// 32-bit FNV-1a: deterministic across runs and processes (the std hasher is not), so
/// the same tool gets the same flat name on every request of a conversation.
fn fnv1a(text: &str, salt: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in salt.to_le_bytes().iter().chain(text.as_bytes()) {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(name: &str) -> bool {
        !name.is_empty() && name.len() <= MAX_NAME_LEN && name.bytes().all(is_name_byte)
    }

    #[test]
    fn short_names_join_with_double_underscore() {
        assert_eq!(flat_name("mcp__srv", "echo"), "mcp__srv__echo");
    }

    #[test]
    fn long_or_odd_names_are_shortened_validly_and_stably() {
        let long = "x".repeat(80);
        let a = flat_name("mcp__srv", &long);
        assert!(valid(&a), "{a}");
        assert_eq!(a, flat_name("mcp__srv", &long));
        assert_ne!(a, flat_name("mcp__srv", &"x".repeat(81)));
        let odd = flat_name("my.server", "tool/one");
        assert!(valid(&odd), "{odd}");
        assert!(odd.starts_with("my_server__tool_one_"), "{odd}");
        assert_ne!(hashed_name("a", 0), hashed_name("a", 1));
    }
}
