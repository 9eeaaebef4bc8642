//! PKCS#11 URIs (RFC 7512), the subset needed to name one key:
//! `pkcs11:token=LABEL;object=LABEL;id=%01%02?module-path=/path/lib.so&pin-source=/path/pin`.
//!
//! Path attributes: `token`, `object`, `id`, `type` (`private`/`public`),
//! `slot-id`. Query attributes: `module-path`, `pin-value`, `pin-source` (a
//! file holding the PIN). The PIN never appears in [`Pkcs11Uri`]'s `Display`.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// A parsed `pkcs11:` URI.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// Token label.
    pub token: Option<String>,
    /// Key label (`CKA_LABEL`).
    pub object: Option<String>,
    /// Key id (`CKA_ID`) bytes.
    pub id: Option<Vec<u8>>,
    /// Slot id.
    pub slot_id: Option<u64>,
    /// Path of the PKCS#11 module (shared library).
    pub module_path: Option<PathBuf>,
    /// PIN given in the URI (discouraged outside tests).
    pub pin_value: Option<String>,
    /// File holding the PIN.
    pub pin_source: Option<PathBuf>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

impl Pkcs11Uri {
    /// Parse a URI.
    pub fn parse(text: &str) -> Result<Self> {
        let err = |reason: String| Error::Pkcs11Uri {
            uri: redact(text),
            reason,
        };
        let rest = text
            .strip_prefix("pkcs11:")
            .ok_or_else(|| err("must start with pkcs11:".into()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Self::default();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| err(format!("attribute {attr:?} has no '='")))?;
            let bytes = decode(value).map_err(err)?;
            let text = || {
                String::from_utf8(bytes.clone()).map_err(|_| err(format!("{name} is not UTF-8")))
            };
            match name {
                "token" => uri.token = Some(text()?),
                "object" => uri.object = Some(text()?),
                "id" => uri.id = Some(bytes.clone()),
                "type" => {
                    let t = text()?;
                    if t != "private" && t != "public" {
                        return Err(err(format!("type={t} is not a key type this tool uses")));
                    }
                }
                "slot-id" => {
                    uri.slot_id = Some(
                        text()?
                            .parse()
                            .map_err(|_| err("slot-id is not a number".into()))?,
                    )
                }
                "manufacturer"
                | "model"
                | "serial"
                | "library-manufacturer"
                | "library-description"
                | "library-version" => {}
                other => return Err(err(format!("unknown path attribute {other:?}"))),
            }
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attr
                .split_once('=')
                .ok_or_else(|| err(format!("query attribute {:?} has no '='", redact(attr))))?;
            let value = String::from_utf8(decode(value).map_err(err)?)
                .map_err(|_| err(format!("{name} is not UTF-8")))?;
            match name {
                "module-path" => uri.module_path = Some(PathBuf::from(value)),
                "pin-value" => uri.pin_value = Some(value),
                "pin-source" => {
                    let path = value.strip_prefix("file:").unwrap_or(&value);
                    uri.pin_source = Some(PathBuf::from(path));
                }
                other => return Err(err(format!("unknown query attribute {other:?}"))),
            }
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(err("name the key with object=LABEL or id=…".into()));
        }
        Ok(uri)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token={}", encode(t.as_bytes())));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={}", encode(o.as_bytes())));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02x}")).collect();
            parts.push(format!("id={hex}"));
        }
        if let Some(s) = self.slot_id {
            parts.push(format!("slot-id={s}"));
        }
        write!(f, "pkcs11:{}", parts.join(";"))
    }
}

fn decode(value: &str) -> Result<Vec<u8>, String> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent escape in a value".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The URI text with any `pin-value` hidden, for error messages.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("pin-value=") {
        let value = at + "pin-value=".len();
        let end = rest[value..]
            .find(['&', ';', '?'])
            .map_or(rest.len(), |e| value + e);
        out.push_str(&rest[..value]);
        out.push_str("***");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hides_the_pin() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=my%20token;object=root-1;id=%01%ff?module-path=/usr/lib/x.so&pin-value=1234",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("my token"));
        assert_eq!(u.object.as_deref(), Some("root-1"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 255][..]));
        assert_eq!(u.pin_value.as_deref(), Some("1234"));
        let shown = u.to_string();
        assert_eq!(shown, "pkcs11:token=my%20token;object=root-1;id=%01%ff");
        assert!(!format!("{u:?}").contains("1234"));
    }

    #[test]
    fn refuses_bad_uris() {
        for bad in [
            "pkcs11:",
            "pkcs11:token=a",
            "pkcs11:object=%zz",
            "pkcs11:object=a;colour=red",
            "pkcs11:object=a?pin=1",
            "pkcs11:object=a;type=secret-key",
            "pkcs11:object=a;slot-id=x",
        ] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad}");
        }
        let e = Pkcs11Uri::parse("pkcs11:object=a?pin-value=secret&bogus=1").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        // Every pin-value is hidden, and a bad escape in one is not echoed.
        for bad in [
            "pkcs11:object=a?pin-value=first&pin-value=second&bogus=1",
            "pkcs11:object=a?pin-value=sec%zzret",
            "pkcs11:object=a?pin-value=secret&pin-value=sec%zret",
        ] {
            let e = Pkcs11Uri::parse(bad).unwrap_err().to_string();
            for pin in ["first", "second", "sec", "zz"] {
                assert!(!e.contains(pin), "{e}");
            }
        }
        assert_eq!(
            redact("pkcs11:object=a?pin-value=1&module-path=/m&pin-value=2"),
            "pkcs11:object=a?pin-value=***&module-path=/m&pin-value=***"
        );
    }
}
