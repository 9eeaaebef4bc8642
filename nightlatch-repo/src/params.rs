//! Validation of the release parameters given on the command line.

use bootloader::envelope::{HardwareModel, Version};

use crate::error::{Error, Result};

/// Validate a hardware model name (`[a-z0-9._-]{1,32}`).
pub fn parse_model(model: &str) -> Result<HardwareModel> {
    HardwareModel::new(model).map_err(|_| Error::InvalidModel {
        model: model.to_owned(),
    })
}

/// Parse a strict `MAJOR.MINOR.PATCH` version, each part `0..=65535` without
/// leading zeros. Pre-release and build suffixes are refused: the envelope has
/// no room for them.
pub fn parse_version(version: &str) -> Result<Version> {
    let invalid = |reason| Error::InvalidVersion {
        version: version.to_owned(),
        reason,
    };
    if version.contains(['-', '+']) {
        return Err(invalid(
            "pre-release (-…) and build (+…) suffixes cannot be stored in an envelope",
        ));
    }
    if version.starts_with(['v', 'V']) {
        return Err(invalid("drop the leading 'v'"));
    }
    let mut parts = version.split('.');
    let mut numbers = [0u16; 3];
    for n in &mut numbers {
        let part = parts
            .next()
            .ok_or_else(|| invalid("expected three numbers, MAJOR.MINOR.PATCH"))?;
        *n = parse_part(part).map_err(invalid)?;
    }
    if parts.next().is_some() {
        return Err(invalid("expected exactly three numbers, MAJOR.MINOR.PATCH"));
    }
    let [major, minor, patch] = numbers;
    Ok(Version::new(major, minor, patch))
}

fn parse_part(part: &str) -> Result<u16, &'static str> {
    if part.is_empty() {
        return Err("a number is missing");
    }
    if !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err("each part must be a decimal number");
    }
    if part.len() > 1 && part.starts_with('0') {
        return Err("numbers must not have leading zeros");
    }
    part.parse().map_err(|_| "each part must be at most 65535")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.2.3").unwrap(), Version::new(1, 2, 3));
        assert_eq!(parse_version("0.0.0").unwrap(), Version::new(0, 0, 0));
        assert_eq!(
            parse_version("65535.65535.65535").unwrap(),
            Version::new(65535, 65535, 65535)
        );
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "1..3",
            "1.2.",
            ".1.2",
            "01.2.3",
            "1.2.65536",
            "1.2.3-rc.1",
            "1.2.3+b5",
            "v1.2.3",
            " 1.2.3",
            "1.2.3 ",
            "1.-2.3",
            "a.b.c",
            "1.2.99999999999999999999",
        ] {
            assert!(parse_version(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn models() {
        assert!(parse_model("nl-lock-v2").is_ok());
        assert!(parse_model("a.b_c-9").is_ok());
        for bad in ["", "NL", "lock v2", "é", &"x".repeat(33)] {
            assert!(parse_model(bad).is_err(), "{bad:?} accepted");
        }
    }
}
