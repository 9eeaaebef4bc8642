//! The first look at a check-in: size, JSON, field limits (the usage
//! summary decoded with the lock's codec), signature header.
//! Nothing is read from the database before this passes.

use bytes::Bytes;
use lock_app::scheduler::summary::UsageSummary;

use crate::error::{ApiError, AppResult};
use crate::ids::check_name;
use crate::rollouts::version;
use crate::wire::{CheckinRequest, MAX_NONCE, MIN_NONCE, decode_nonce, parse_signature_header};

/// A check-in as received.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The `{id}` of the URL.
    pub path_id: String,
    /// The exact body bytes.
    pub body: Bytes,
    /// The `Nightlatch-Signature` header.
    pub signature: Option<String>,
}

/// A check-in that parsed.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The request.
    pub req: CheckinRequest,
    /// Nonce bytes.
    pub nonce: Vec<u8>,
    /// The signature.
    pub sig: ed25519_dalek::Signature,
    /// Counter as stored (i64).
    pub counter: i64,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_report", message)
}

fn bounded(what: &str, text: &str, max: usize) -> AppResult<()> {
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(invalid(format!(
            "{what} must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

/// Parse and check a submission.
pub fn parse(s: &Submission) -> AppResult<Parsed> {
    let sig = s
        .signature
        .as_deref()
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_signature",
                "a check-in must carry a Nightlatch-Signature: ed25519=<base64url> header",
            )
        })
        .and_then(|h| {
            parse_signature_header(h).ok_or_else(|| {
                ApiError::unauthorized(
                    "bad_signature",
                    "the Nightlatch-Signature header is not ed25519=<86 base64url characters>",
                )
            })
        })?;
    let req: CheckinRequest = serde_json::from_slice(&s.body).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the check-in is not valid: {e}"))
    })?;
    if req.device_id != s.path_id {
        return Err(ApiError::bad_request(
            "device_mismatch",
            "the body's device_id is not the one in the URL",
        ));
    }
    check_name("device id", &req.device_id).map_err(invalid)?;
    let nonce = decode_nonce(&req.nonce).ok_or_else(|| {
        invalid(format!(
            "nonce must be {MIN_NONCE} to {MAX_NONCE} bytes in base64url"
        ))
    })?;
    let counter = i64::try_from(req.counter)
        .ok()
        .filter(|c| *c >= 1)
        .ok_or_else(|| invalid("counter must be between 1 and 2^63-1"))?;
    let r = &req.report;
    bounded("hardware_model", &r.hardware_model, 64)?;
    if version::parse(&r.firmware.version).is_none() {
        return Err(invalid("firmware.version must be MAJOR.MINOR.PATCH"));
    }
    if let Some(b) = r.battery_percent
        && b > 100
    {
        return Err(invalid("battery_percent must be 0 to 100"));
    }
    if let Some(tz) = &r.time_zone {
        bounded("time_zone", tz, 64)?;
    }
    if let Some(u) = &r.last_update {
        bounded("last_update.target", &u.target, 255)?;
        if let Some(reason) = &u.reason {
            bounded("last_update.reason", reason, 200)?;
        }
    }
    if let Some(text) = &r.usage {
        // At most `MAX_TEXT_LEN` characters are decoded (format 1: exactly
        // `TEXT_LEN`); the codec is the lock's own.
        UsageSummary::from_text(text).map_err(|e| invalid(format!("report.usage: {e}")))?;
    }
    Ok(Parsed {
        req,
        nonce,
        sig,
        counter,
    })
}
