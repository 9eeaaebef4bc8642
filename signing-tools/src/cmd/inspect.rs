//! `nightlatch-sign inspect`: show what an envelope holds, without checking
//! signatures or the payload digest (use `verify` for that).

use std::path::PathBuf;

use bootloader::envelope::{EnvelopeError, Prefix};
use clap::Args;
use nightlatch_repo::envelope::MAX_ENVELOPE_LEN;
use nightlatch_repo::{Error, Result, fsio};

use crate::summary::EnvelopeSummary;

/// Arguments of `inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The envelope to read.
    #[arg(value_name = "ENVELOPE")]
    pub envelope: PathBuf,
    /// Print the fields as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Strictly parse an envelope held in memory (structure and exact length).
pub fn inspect_bytes(bytes: &[u8]) -> Result<EnvelopeSummary, EnvelopeError> {
    let prefix = Prefix::parse(bytes)?;
    let expected = prefix.header.envelope_len();
    let actual = bytes.len() as u64;
    if actual != expected {
        return Err(EnvelopeError::LengthMismatch { expected, actual });
    }
    Ok(EnvelopeSummary::from_prefix(&prefix))
}

/// Run `inspect`.
pub fn run(args: &InspectArgs) -> Result<()> {
    let bytes = fsio::read_limited(&args.envelope, MAX_ENVELOPE_LEN)?;
    let summary = inspect_bytes(&bytes)
        .map_err(|reason| Error::malformed_envelope(&args.envelope, reason))?;
    if args.json {
        fsio::print_json(&summary)
    } else {
        fsio::print(&summary.table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootloader::envelope::PREFIX_LEN;
    use nightlatch_repo::envelope::{Release, sign_payload};
    use nightlatch_repo::keys;
    use nightlatch_repo::params::{parse_model, parse_version};

    /// Every single-byte change in the prefix, and every truncation, is an
    /// error or a still-parseable envelope, never a panic.
    #[test]
    fn byte_flips_and_truncations_never_panic() {
        let release = Release {
            model: parse_model("nl-lock-v2").unwrap(),
            version: parse_version("1.2.3").unwrap(),
            security_counter: 7,
        };
        let envelope = sign_payload(&release, &[0xAB; 300], &[keys::generate()]).unwrap();
        assert!(inspect_bytes(&envelope).is_ok());
        for i in 0..PREFIX_LEN {
            for flip in [0x01, 0x80, 0xFF] {
                let mut bad = envelope.clone();
                bad[i] ^= flip;
                let _ = inspect_bytes(&bad);
            }
        }
        for len in 0..envelope.len() {
            assert!(inspect_bytes(&envelope[..len]).is_err());
        }
    }
}
