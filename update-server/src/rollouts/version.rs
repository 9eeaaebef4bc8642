//! Firmware versions `MAJOR.MINOR.PATCH` (each 0–65535, as the envelope
//! stores them) and their sort key.

/// Parse `MAJOR.MINOR.PATCH`: the protocol's rule
/// ([`nightlatch_proto::wire::parse_version`]), the one a check-in's
/// `firmware.version` is checked with.
pub use nightlatch_proto::wire::parse_version as parse;

/// A sortable integer for a version (None if malformed).
pub fn order(text: &str) -> Option<i64> {
    let (a, b, c) = parse(text)?;
    Some((i64::from(a) << 32) | (i64::from(b) << 16) | i64::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically() {
        assert!(order("1.10.0") > order("1.9.9"));
        assert!(order("2.0.0") > order("1.65535.65535"));
        assert_eq!(parse("1.2.3"), Some((1, 2, 3)));
        for bad in ["", "1.2", "1.2.3.4", "1.2.x", "1.2.70000", "-1.2.3"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
