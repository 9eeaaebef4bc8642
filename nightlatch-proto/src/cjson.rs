//! Canonical JSON as TUF signs it: the OLPC form exactly as securesystemslib's
//! `encode_canonical` (python-tuf's signing form) writes it. Object members
//! sorted by key in code point order (UTF-8 byte order), no whitespace,
//! strings escaped only for `"` and `\` (every other character written raw,
//! never normalised), integers only: a float has no canonical form and is
//! refused.
//!
//! Integers are those `serde_json` holds (`i64` and `u64`); a larger one,
//! and `-0`, parse as floats and are refused, so metadata carrying them
//! never verifies (stricter than securesystemslib, which Python's arbitrary
//! integers let write them; no TUF writer emits either).

use alloc::vec::Vec;
use core::fmt;

use serde_json::{Number, Value};

/// A value canonical JSON cannot hold: a number that is not an integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCanonical {
    number: Number,
}

impl NotCanonical {
    /// The number refused.
    pub fn number(&self) -> &Number {
        &self.number
    }
}

impl fmt::Display for NotCanonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not an integer: canonical JSON has no floats",
            self.number
        )
    }
}

impl core::error::Error for NotCanonical {}

/// The canonical JSON bytes of `value`.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, NotCanonical> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), NotCanonical> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                write_int(u, false, out);
            } else if let Some(i) = n.as_i64() {
                write_int(i.unsigned_abs(), i < 0, out);
            } else {
                return Err(NotCanonical { number: n.clone() });
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // Without serde_json's `preserve_order` the map already iterates
            // in key byte order; sort anyway so the form cannot depend on a
            // feature another crate turns on.
            let mut members: Vec<(&alloc::string::String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Decimal digits of `magnitude`, `-` first when `negative` (as Python's
/// `str(int)`: no leading zeros, no `+`, `0` never negative).
fn write_int(mut magnitude: u64, negative: bool, out: &mut Vec<u8>) {
    if negative && magnitude != 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (magnitude % 10) as u8;
        n += 1;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    out.extend(digits[..n].iter().rev());
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use alloc::string::{String, ToString};
    use alloc::vec;

    use super::*;

    fn canon(text: &str) -> Result<String, NotCanonical> {
        let value: Value = serde_json::from_str(text).unwrap();
        to_vec(&value).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn sorts_compacts_and_escapes_only_quote_and_backslash() {
        assert_eq!(
            canon(r#"{"b": 1, "a": [true, null, "x\"y\\z\n\u00e9"], "A": -12}"#).unwrap(),
            "{\"A\":-12,\"a\":[true,null,\"x\\\"y\\\\z\n\u{e9}\"],\"b\":1}"
        );
        assert_eq!(
            canon(r#"{"b": 1, "a": [true, "x\"y"]}"#).unwrap(),
            r#"{"a":[true,"x\"y"],"b":1}"#
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(canon("null").unwrap(), "null");
        assert_eq!(canon("true").unwrap(), "true");
        assert_eq!(canon("false").unwrap(), "false");
        assert_eq!(canon(r#""""#).unwrap(), r#""""#);
        assert_eq!(canon("[]").unwrap(), "[]");
        assert_eq!(canon("{}").unwrap(), "{}");
    }

    #[test]
    fn control_characters_and_slash_are_written_raw() {
        assert_eq!(
            canon(r#""\u0000\u0001\b\f\n\r\t\u001f\/""#).unwrap(),
            "\"\u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f}/\""
        );
        // The escape JSON allows for `/` is undone; `\u` escapes are decoded.
        assert_eq!(canon(r#""\u0041\u00e9""#).unwrap(), "\"A\u{e9}\"");
    }

    #[test]
    fn unicode_is_raw_and_never_normalised() {
        // "é" precomposed and decomposed stay different.
        assert_eq!(canon(r#""\u00e9""#).unwrap(), "\"\u{e9}\"");
        assert_eq!(canon(r#""e\u0301""#).unwrap(), "\"e\u{301}\"");
        // Astral plane from a surrogate pair, and raw.
        assert_eq!(canon(r#""\ud83d\udd12""#).unwrap(), "\"\u{1f512}\"");
        assert_eq!(canon("\"\u{1f512}\"").unwrap(), "\"\u{1f512}\"");
        // Line and paragraph separators, BOM, non-characters: raw.
        assert_eq!(
            canon(r#""\u2028\u2029\ufeff\uffff""#).unwrap(),
            "\"\u{2028}\u{2029}\u{feff}\u{ffff}\""
        );
    }

    #[test]
    fn keys_sort_by_code_point_not_utf16_or_case() {
        // U+FF61 (3 UTF-8 bytes) sorts before U+1F512 (4 bytes) in code point
        // order; in UTF-16 order the surrogate 0xD83D would come first.
        assert_eq!(
            canon("{\"\u{1f512}\":1,\"\u{ff61}\":2,\"Z\":3,\"a\":4,\"\":5}").unwrap(),
            "{\"\":5,\"Z\":3,\"a\":4,\"\u{ff61}\":2,\"\u{1f512}\":1}"
        );
        // A key that is a prefix of another sorts first.
        assert_eq!(
            canon(r#"{"ab":1,"a":2,"a\"":3}"#).unwrap(),
            r#"{"a":2,"a\"":3,"ab":1}"#
        );
    }

    #[test]
    fn nested_objects_sort_at_every_level() {
        assert_eq!(
            canon(r#"{"z":{"y":[{"b":0,"a":[{"d":1,"c":2}]}],"x":{}},"m":[[],[[]]]}"#).unwrap(),
            r#"{"m":[[],[[]]],"z":{"x":{},"y":[{"a":[{"c":2,"d":1}],"b":0}]}}"#
        );
    }

    #[test]
    fn integers_at_the_edges() {
        assert_eq!(
            canon("[0, 1, -1, 18446744073709551615, -9223372036854775808, 9223372036854775807, 9223372036854775808]")
                .unwrap(),
            "[0,1,-1,18446744073709551615,-9223372036854775808,9223372036854775807,9223372036854775808]"
        );
    }

    #[test]
    fn refuses_floats_anywhere() {
        for text in [
            "1.5",
            "1.0",
            "-0.0",
            // serde_json reads `-0` as the float -0.0 (Python's json reads
            // the integer 0): refused, stricter than securesystemslib. No
            // TUF writer emits it.
            "-0",
            "1e3",
            "1E-2",
            r#"{"a": 1.5}"#,
            r#"[1, [2, {"x": 0.1}]]"#,
            // Past u64 and i64: serde_json holds these as floats.
            "18446744073709551616",
            "-9223372036854775809",
        ] {
            let e = canon(text).unwrap_err();
            assert!(e.to_string().contains("not an integer"), "{text}: {e}");
        }
        assert_eq!(
            canon(r#"{"a": 1.5}"#).unwrap_err().number(),
            &Number::from_f64(1.5).unwrap()
        );
    }

    #[test]
    fn writes_a_value_built_in_code() {
        let mut map = serde_json::Map::new();
        map.insert("b".to_string(), Value::from(vec![Value::from(-7i64)]));
        map.insert("a".to_string(), Value::from("q\"\\"));
        assert_eq!(
            to_vec(&Value::Object(map)).unwrap(),
            br#"{"a":"q\"\\","b":[-7]}"#
        );
    }
}
