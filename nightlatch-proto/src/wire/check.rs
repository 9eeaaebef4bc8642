//! What a check-in must be before the server reads anything else: the
//! signature header, JSON, the device id in the URL, and every field's
//! limits. One definition: the server runs [`check_submission`] on every
//! request, the `checkin_request` fuzz target drives it with arbitrary
//! bytes, and a lock can check what it is about to send with the same
//! rules ([`CheckinRequest::check`]).
//!
//! Only the usage summary's codec is not here (it is the lock's
//! scheduler's, `lock_app::scheduler::summary`): the caller passes it in.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::Signature;

use super::{CheckinRequest, MAX_NONCE, MIN_NONCE, decode_nonce, parse_signature_header};

/// Longest id (device, site, group, rollout name) the protocol allows.
pub const MAX_ID_LEN: usize = 128;
/// Longest `hardware_model`.
pub const MAX_MODEL_LEN: usize = 64;
/// Longest `time_zone` (IANA names are shorter).
pub const MAX_TIME_ZONE_LEN: usize = 64;
/// Longest `last_update.target` (a TUF target path).
pub const MAX_TARGET_LEN: usize = 255;
/// Longest `last_update.reason`.
pub const MAX_REASON_LEN: usize = 200;

/// Why a check-in is refused, before any state is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckinRefusal {
    /// No `Nightlatch-Signature` header.
    MissingSignature,
    /// The header is not `ed25519=<86 base64url>`.
    BadSignatureHeader,
    /// The body is not a check-in (serde's reason).
    MalformedJson(String),
    /// The body's `device_id` is not the id in the URL.
    DeviceMismatch,
    /// A field breaks its limit (which, and how).
    Invalid(String),
}

impl CheckinRefusal {
    /// The stable error code the server answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::BadSignatureHeader => "bad_signature",
            Self::MalformedJson(_) => "malformed_json",
            Self::DeviceMismatch => "device_mismatch",
            Self::Invalid(_) => "invalid_report",
        }
    }

    /// Whether the refusal is about authentication (HTTP 401) rather than
    /// the request (400).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::MissingSignature | Self::BadSignatureHeader)
    }
}

impl fmt::Display for CheckinRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingSignature => f.write_str(
                "a check-in must carry a Nightlatch-Signature: ed25519=<base64url> header",
            ),
            Self::BadSignatureHeader => f.write_str(
                "the Nightlatch-Signature header is not ed25519=<86 base64url characters>",
            ),
            Self::MalformedJson(e) => write!(f, "the check-in is not valid: {e}"),
            Self::DeviceMismatch => f.write_str("the body's device_id is not the one in the URL"),
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

impl core::error::Error for CheckinRefusal {}

/// A check-in that passed [`check_submission`].
#[derive(Debug, Clone)]
pub struct CheckedCheckin {
    /// The request.
    pub req: CheckinRequest,
    /// Nonce bytes.
    pub nonce: Vec<u8>,
    /// The lock's signature (not verified yet: that needs its key).
    pub sig: Signature,
    /// The counter, as a database stores it (1 to 2⁶³ − 1).
    pub counter: i64,
}

/// An id as devices, sites, groups and models are named: 1 to
/// [`MAX_ID_LEN`] characters from `A-Z a-z 0-9 . _ : -`, not starting with
/// `.` (safe in a URL path and a file name). `what` names it in the error.
pub fn check_id(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_ID_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {:?} must be 1 to {MAX_ID_LEN} characters from A-Z a-z 0-9 . _ : - (not starting with '.')",
            name.chars().take(64).collect::<String>()
        ))
    }
}

/// A firmware version `MAJOR.MINOR.PATCH`, each 0 to 65535 in at most five
/// digits.
pub fn parse_version(text: &str) -> Option<(u16, u16, u16)> {
    let mut parts = text.split('.');
    let mut next = || -> Option<u16> {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let v = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(v)
}

fn bounded(what: &str, text: &str, max: usize) -> Result<(), CheckinRefusal> {
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(CheckinRefusal::Invalid(format!(
            "{what} must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

impl CheckinRequest {
    /// Check every field's limits; `usage` decodes `report.usage` (the
    /// lock's codec). Returns the nonce bytes and the counter.
    pub fn check(
        &self,
        usage: impl Fn(&str) -> Result<(), String>,
    ) -> Result<(Vec<u8>, i64), CheckinRefusal> {
        let invalid = CheckinRefusal::Invalid;
        check_id("device id", &self.device_id).map_err(invalid)?;
        let nonce = decode_nonce(&self.nonce).ok_or_else(|| {
            invalid(format!(
                "nonce must be {MIN_NONCE} to {MAX_NONCE} bytes in base64url"
            ))
        })?;
        let counter = i64::try_from(self.counter)
            .ok()
            .filter(|c| *c >= 1)
            .ok_or_else(|| invalid("counter must be between 1 and 2^63-1".to_string()))?;
        let r = &self.report;
        bounded("hardware_model", &r.hardware_model, MAX_MODEL_LEN)?;
        if parse_version(&r.firmware.version).is_none() {
            return Err(invalid(
                "firmware.version must be MAJOR.MINOR.PATCH".to_string(),
            ));
        }
        if r.battery_percent.is_some_and(|b| b > 100) {
            return Err(invalid("battery_percent must be 0 to 100".to_string()));
        }
        if let Some(tz) = &r.time_zone {
            bounded("time_zone", tz, MAX_TIME_ZONE_LEN)?;
        }
        if let Some(u) = &r.last_update {
            bounded("last_update.target", &u.target, MAX_TARGET_LEN)?;
            if let Some(reason) = &u.reason {
                bounded("last_update.reason", reason, MAX_REASON_LEN)?;
            }
        }
        if let Some(text) = &r.usage {
            usage(text).map_err(|e| invalid(format!("report.usage: {e}")))?;
        }
        Ok((nonce, counter))
    }
}

/// Parse and check a check-in as received: `path_id` from the URL, the exact
/// `body` bytes, the `Nightlatch-Signature` header. The signature header is
/// checked first (a request without one costs no JSON parsing). `usage`
/// decodes `report.usage` (see [`CheckinRequest::check`]).
pub fn check_submission(
    path_id: &str,
    body: &[u8],
    signature: Option<&str>,
    usage: impl Fn(&str) -> Result<(), String>,
) -> Result<CheckedCheckin, CheckinRefusal> {
    let sig = signature
        .ok_or(CheckinRefusal::MissingSignature)
        .and_then(|h| parse_signature_header(h).ok_or(CheckinRefusal::BadSignatureHeader))?;
    let req: CheckinRequest =
        serde_json::from_slice(body).map_err(|e| CheckinRefusal::MalformedJson(e.to_string()))?;
    if req.device_id != path_id {
        return Err(CheckinRefusal::DeviceMismatch);
    }
    let (nonce, counter) = req.check(usage)?;
    Ok(CheckedCheckin {
        req,
        nonce,
        sig,
        counter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;
    use ed25519_dalek::SigningKey;

    const FULL: &str = include_str!("golden/request_full.json");
    const IDLE: &str = include_str!("golden/request_idle.json");

    fn header(body: &[u8]) -> String {
        super::super::sign_body(&SigningKey::from_bytes(&[9; 32]), body)
    }

    fn id_of(text: &str) -> String {
        serde_json::from_str::<CheckinRequest>(text)
            .unwrap()
            .device_id
    }

    fn no_usage(_: &str) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn the_golden_requests_pass() {
        for text in [FULL, IDLE] {
            let h = header(text.as_bytes());
            let c = check_submission(&id_of(text), text.as_bytes(), Some(&h), no_usage).unwrap();
            assert!(c.counter >= 1);
            assert!(c.nonce.len() >= MIN_NONCE);
        }
    }

    #[test]
    fn each_refusal_has_its_code() {
        let body = IDLE.as_bytes();
        let id = id_of(IDLE);
        let h = header(body);
        let code = |r: Result<CheckedCheckin, CheckinRefusal>| r.unwrap_err().code();
        assert_eq!(
            code(check_submission(&id, body, None, no_usage)),
            "missing_signature"
        );
        assert_eq!(
            code(check_submission(&id, body, Some("ed25519=abc"), no_usage)),
            "bad_signature"
        );
        assert_eq!(
            code(check_submission(&id, b"{", Some(&h), no_usage)),
            "malformed_json"
        );
        assert_eq!(
            code(check_submission("other", body, Some(&h), no_usage)),
            "device_mismatch"
        );
        // The full golden request has every optional field.
        let mut v: serde_json::Value = serde_json::from_str(FULL).unwrap();
        let id = id_of(FULL);
        for (field, bad) in [
            ("/counter", serde_json::json!(0)),
            ("/nonce", serde_json::json!("AAAA")),
            ("/report/firmware/version", serde_json::json!("1.2")),
            ("/report/hardware_model", serde_json::json!("")),
            ("/report/battery_percent", serde_json::json!(101)),
            ("/report/time_zone", serde_json::json!("a\u{7}b")),
            (
                "/report/last_update/reason",
                serde_json::json!("r".repeat(201)),
            ),
        ] {
            let mut bad_v = v.clone();
            *bad_v.pointer_mut(field).unwrap() = bad;
            let text = serde_json::to_vec(&bad_v).unwrap();
            let h = header(&text);
            let r = check_submission(&id, &text, Some(&h), no_usage);
            assert_eq!(code(r), "invalid_report", "{field}");
        }
        let usage = |_: &str| Err("not a summary".to_owned());
        v["report"]["usage"] = "x".into();
        let text = serde_json::to_vec(&v).unwrap();
        let h = header(&text);
        let e = check_submission(&id, &text, Some(&h), usage).unwrap_err();
        assert_eq!(e.to_string(), "report.usage: not a summary");
    }

    #[test]
    fn ids_and_versions() {
        assert!(check_id("device id", "lock-00001").is_ok());
        for bad in ["", ".hidden", "a/b", "é", &"x".repeat(129)] {
            assert!(check_id("device id", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_version("1.2.3"), Some((1, 2, 3)));
        for bad in ["", "1.2", "1.2.3.4", "1.2.x", "1.2.70000", "-1.2.3"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }
}
