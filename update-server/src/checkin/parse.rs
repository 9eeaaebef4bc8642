//! The first look at a check-in: size, JSON, field limits (the usage
//! summary decoded with the lock's codec), signature header.
//! Nothing is read from the database before this passes.

use bytes::Bytes;
use lock_app::scheduler::summary::UsageSummary;

use crate::error::{ApiError, AppResult};
use crate::wire::{CheckinRequest, check_submission};

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

/// Parse and check a submission: [`crate::wire::check_submission`] (the
/// protocol crate's rules, the code the fuzzer drives), with the lock's own
/// codec for the usage summary; a refusal becomes the API's error.
pub fn parse(s: &Submission) -> AppResult<Parsed> {
    let checked = check_submission(&s.path_id, &s.body, s.signature.as_deref(), |text| {
        UsageSummary::from_text(text)
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .map_err(|refusal| {
        let (code, message) = (refusal.code(), refusal.to_string());
        if refusal.is_unauthorized() {
            ApiError::unauthorized(code, message)
        } else {
            ApiError::bad_request(code, message)
        }
    })?;
    Ok(Parsed {
        req: checked.req,
        nonce: checked.nonce,
        sig: checked.sig,
        counter: checked.counter,
    })
}
