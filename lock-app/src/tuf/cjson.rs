//! OLPC canonical JSON, as securesystemslib (python-tuf) and our own tools
//! sign it: object members sorted by key, no whitespace, only `"` and `\`
//! escaped in strings (every other character written raw), integers only.

use alloc::vec::Vec;
use serde_json::Value;

/// A value canonical JSON cannot hold (a float).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotCanonical;

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
                write_int(u128::from(u), false, out);
            } else if let Some(i) = n.as_i64() {
                write_int(u128::from(i.unsigned_abs()), i < 0, out);
            } else {
                return Err(NotCanonical);
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
            // serde_json's map (without `preserve_order`) iterates sorted by
            // key bytes, which is code point order: what OLPC requires. Sort
            // anyway so the form does not depend on a feature flag.
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

fn write_int(mut magnitude: u128, negative: bool, out: &mut Vec<u8>) {
    if negative {
        out.push(b'-');
    }
    let mut digits = [0u8; 40];
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
    use super::*;

    fn canon(text: &str) -> Result<Vec<u8>, NotCanonical> {
        to_vec(&serde_json::from_str::<Value>(text).unwrap())
    }

    #[test]
    fn sorts_compacts_and_escapes_only_quote_and_backslash() {
        assert_eq!(
            canon(r#"{"b": 1, "a": [true, null, "x\"y\\z\n\u00e9"], "A": -12}"#).unwrap(),
            "{\"A\":-12,\"a\":[true,null,\"x\\\"y\\\\z\n\u{e9}\"],\"b\":1}".as_bytes()
        );
    }

    #[test]
    fn refuses_floats() {
        assert_eq!(canon(r#"{"a": 1.5}"#), Err(NotCanonical));
    }

    #[test]
    fn integers_at_the_edges() {
        assert_eq!(
            canon("[0, 18446744073709551615, -9223372036854775808]").unwrap(),
            b"[0,18446744073709551615,-9223372036854775808]"
        );
    }
}
