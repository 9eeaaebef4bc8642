//! TUF delegation path patterns, as python-tuf matches them: the pattern and
//! the target path have the same number of `/`-separated parts, and each
//! part matches its glob (`*` any run of characters, `?` one character).

/// Whether `target` matches `pattern` (the one matcher the ceremony and
/// repository tools use too).
pub fn matches(pattern: &str, target: &str) -> bool {
    keys_ceremony::metadata::targets::path_matches(pattern, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_patterns() {
        assert!(matches("nl-lock-v2/*", "nl-lock-v2/1.0.0.nlfw"));
        assert!(!matches("nl-lock-v2/*", "nl-lock-v3/1.0.0.nlfw"));
        assert!(!matches("nl-lock-v2/*", "nl-lock-v2/a/b"));
        assert!(matches("*/1.?.0.nlfw", "m/1.2.0.nlfw"));
        assert!(matches("m/*.nl*", "m/1.0.0.nlfw"));
        assert!(!matches("m/*.nldp", "m/1.0.0.nlfw"));
    }
}
