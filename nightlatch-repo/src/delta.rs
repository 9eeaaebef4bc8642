//! Host side of delta updates: make a patch between two envelopes (bidiff's
//! match finder, then `bootloader::delta`'s encoder), and time it.
//!
//! Checking a patch by applying it with the device's own applier on the
//! bootloader's flash simulator is the CLI's business (`nightlatch-sign
//! delta` and `apply`), not this library's: nothing here links the
//! simulator.

use std::time::{Duration, Instant};

use bootloader::delta::DeltaError;
use bootloader::delta::encode::{Control, EncodeOptions, EncodeStats, encode_with_stats};
use bootloader::envelope::{PREFIX_LEN, Prefix};

/// Progress reporting, kept out of the library's way (the CLI plugs
/// indicatif in; tests and benchmarks pass [`NoProgress`]).
pub trait Progress {
    /// A phase with `total` units begins.
    fn start(&self, phase: &str, total: u64);
    /// `done` units of the current phase are complete.
    fn set(&self, done: u64);
    /// The phase is over.
    fn finish(&self);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn set(&self, _: u64) {}
    fn finish(&self) {}
}

/// bsdiff-style controls from bidiff's suffix-array match finder (which
/// needs both sides non-empty: the trivial cases are written out here).
pub fn controls(old: &[u8], new: &[u8], progress: &dyn Progress) -> Vec<Control> {
    if new.is_empty() {
        return vec![];
    }
    if old.is_empty() {
        return vec![Control {
            add: 0,
            copy: new.len(),
            seek: 0,
        }];
    }
    progress.start("matching", new.len() as u64);
    let mut out = Vec::new();
    let mut tr = bidiff::Translator::new(
        old,
        new,
        |c: &bidiff::Control<'_>| -> Result<(), std::io::Error> {
            out.push(Control {
                add: c.add.len(),
                copy: c.copy.len(),
                seek: c.seek,
            });
            Ok(())
        },
    );
    // Neither callback can fail: bidiff only propagates our own errors.
    let _ = bidiff::diff(old, new, &bidiff::DiffParams::default(), |m| {
        progress.set(m.add_new_start as u64);
        tr.translate(m)
    });
    let _ = tr.close();
    progress.finish();
    out
}

/// Split an envelope into its prefix and payload (structure only).
pub fn split_envelope(bytes: &[u8]) -> Result<(&[u8], &[u8]), DeltaError> {
    let prefix = Prefix::parse(bytes).map_err(DeltaError::BadTargetPrefix)?;
    if bytes.len() as u64 != prefix.header.envelope_len() {
        return Err(DeltaError::BadTargetPrefix(
            bootloader::envelope::EnvelopeError::LengthMismatch {
                expected: prefix.header.envelope_len(),
                actual: bytes.len() as u64,
            },
        ));
    }
    Ok(bytes.split_at(PREFIX_LEN))
}

/// A patch and how it was made.
#[derive(Debug, Clone)]
pub struct Made {
    /// The patch bytes.
    pub patch: Vec<u8>,
    /// Where its bytes went.
    pub stats: EncodeStats,
    /// Time to find matches and encode.
    pub elapsed: Duration,
}

/// Make a patch from one envelope to another (both checked for structure
/// and length). The patch is not applied here: see the module documentation.
pub fn make_patch(
    old_env: &[u8],
    new_env: &[u8],
    progress: &dyn Progress,
) -> Result<Made, DeltaError> {
    let (old_prefix, old) = split_envelope(old_env)?;
    let (prefix, new) = split_envelope(new_env)?;
    let t = Instant::now();
    let ctl = controls(old, new, progress);
    progress.start("encoding", 1);
    let (patch, stats) =
        encode_with_stats(old, new, &ctl, old_prefix, prefix, EncodeOptions::default())?;
    progress.finish();
    let elapsed = t.elapsed();
    Ok(Made {
        patch,
        stats,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Release, sign_payload};
    use crate::keys;
    use crate::params::{parse_model, parse_version};

    fn envelope(version: &str, payload: &[u8]) -> Vec<u8> {
        let release = Release {
            model: parse_model("nl-lock-v2").unwrap(),
            version: parse_version(version).unwrap(),
            security_counter: 1,
        };
        sign_payload(&release, payload, &[keys::generate()]).unwrap()
    }

    #[test]
    fn patches_rebuild_the_target_on_the_device_applier() {
        let old: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut new = old.clone();
        new[1000..1100].fill(0x5A);
        new.extend_from_slice(b"appended");
        let (old_env, new_env) = (envelope("1.0.0", &old), envelope("1.0.1", &new));
        let made = make_patch(&old_env, &new_env, &NoProgress).unwrap();
        assert!(made.patch.len() < new_env.len() / 4, "{}", made.patch.len());
        // The library does not apply patches; the test does, as the lock would.
        let rebuilt = bootloader::delta::encode::apply_on_sim(&old_env, &made.patch).unwrap();
        assert_eq!(rebuilt, new_env);
        // Not envelopes: refused, never a panic.
        assert!(make_patch(b"short", &new_env, &NoProgress).is_err());
        assert!(make_patch(&old_env, &new_env[..new_env.len() - 1], &NoProgress).is_err());
    }
}
