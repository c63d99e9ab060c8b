//! Key generation and hashing. The hash is LiteLLM's (`sha256(key).hexdigest()` over the
//! full `sk-...` string), so tokens exported from `LiteLLM_VerificationToken` keep working.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new virtual key: `sk-` + 64 hex chars from 32 random bytes (256 bits).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    // ThreadRng is a CSPRNG (ChaCha) seeded and periodically reseeded from the OS.
    rand::rng().fill_bytes(&mut bytes);
    format!("sk-{}", hex::encode(bytes))
}

/// The stored form of a key: lowercase hex sha256 of its UTF-8 bytes.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// What listings show instead of the key: `sk-...abcd` (last four characters).
pub fn prefix_display(key: &str) -> String {
    let tail: String = {
        let chars: Vec<char> = key.chars().collect();
        let start = chars.len().saturating_sub(4);
        chars[start..].iter().collect()
    };
    let head = if key.starts_with("sk-") { "sk-" } else { "" };
    format!("{head}...{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_long_unique_and_prefixed() {
        let a = generate_key();
        let b = generate_key();
        assert!(a.starts_with("sk-"));
        assert_eq!(a.len(), 3 + 64);
        assert_ne!(a, b);
    }

    #[test]
    fn hash_matches_litellm_sha256_hex() {
        // sha256("sk-1234"), as LiteLLM's hash_token computes it.
        assert_eq!(
            hash_key("sk-1234"),
            "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
        );
    }

    #[test]
    fn display_keeps_only_the_tail() {
        assert_eq!(prefix_display("sk-abcdefgh1234"), "sk-...1234");
        assert_eq!(prefix_display("ab"), "...ab");
    }
}
