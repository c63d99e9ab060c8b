//! Wildcard routes: a `model_name` with `*` (`openai/*`, `anthropic/claude-*`, `*`)
//! serves every requested name it matches.

pub(crate) struct Pattern {
    /// The group name as written (`openai/*`).
    pub group: String,
    prefix: String,
    suffix: String,
}

impl Pattern {
    /// The first `*` splits the name; text after it must end the requested name.
    pub fn new(group: &str) -> Self {
        let (prefix, suffix) = group.split_once('*').unwrap_or((group, ""));
        Self {
            group: group.to_owned(),
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        }
    }

    pub fn text(&self) -> &str {
        &self.group
    }

    pub fn literal_len(&self) -> usize {
        self.prefix.len() + self.suffix.len()
    }

    /// What `*` matched in `name`, if the pattern matches (never empty).
    pub fn capture<'n>(&self, name: &'n str) -> Option<&'n str> {
        let rest = name.strip_prefix(self.prefix.as_str())?;
        let captured = rest.strip_suffix(self.suffix.as_str())?;
        (!captured.is_empty()).then_some(captured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_what_the_star_matched() {
        let p = Pattern::new("openai/*");
        assert_eq!(p.capture("openai/gpt-4o"), Some("gpt-4o"));
        assert_eq!(p.capture("openai/"), None);
        assert_eq!(p.capture("anthropic/claude"), None);
        assert_eq!(Pattern::new("*").capture("anything/x"), Some("anything/x"));
        assert_eq!(
            Pattern::new("claude-*-latest").capture("claude-3-5-latest"),
            Some("3-5")
        );
    }
}
