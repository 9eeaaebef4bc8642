//! A target's name and bytes against what targets metadata lists: a safe
//! relative name, exact length, every listed hash (streaming, so the lock
//! can check a target as it writes it to flash).

use super::digest::{DigestError, Hasher};
use super::error::{Result, TufError};
use super::metadata::{Hashes, TargetFile};

/// A target name that is safe to use as a relative path: not empty, at most
/// 1024 bytes, no leading `/`, no `\`, no NUL, no empty, `.` or `..`
/// segment.
pub fn check_target_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 1024
        || name.contains(['\\', '\0'])
        || name
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        Err(TufError::InvalidTargetName)
    } else {
        Ok(())
    }
}

impl TargetFile {
    /// Whether `bytes` are this target: exact length and every listed hash
    /// (all of which must be `sha256` or `sha512`).
    pub fn verify(&self, bytes: &[u8]) -> Result<()> {
        let mut v = TargetVerifier::new(self)?;
        v.update(bytes)?;
        v.finish()
    }
}

/// Checks a target's bytes as they arrive: never more than the signed
/// length, then exact length and every signed hash.
#[derive(Debug, Clone)]
pub struct TargetVerifier {
    expected: u64,
    seen: u64,
    hasher: Hasher,
    hashes: Hashes,
}

impl TargetVerifier {
    /// Start checking bytes against `file` (its length and hashes).
    pub fn new(file: &TargetFile) -> Result<Self> {
        let hasher = Hasher::new(&file.hashes).map_err(|_| TufError::UnsupportedHash)?;
        Ok(Self {
            expected: file.length,
            seen: 0,
            hasher,
            hashes: file.hashes.clone(),
        })
    }

    /// Feed the next chunk; refuses bytes past the signed length.
    pub fn update(&mut self, chunk: &[u8]) -> Result<()> {
        let len = u64::try_from(chunk.len()).map_err(|_| TufError::TargetTooLarge)?;
        let seen = self.seen.saturating_add(len);
        if seen > self.expected {
            return Err(TufError::TargetTooLarge);
        }
        self.seen = seen;
        self.hasher.update(chunk);
        Ok(())
    }

    /// Exact length and hashes.
    pub fn finish(self) -> Result<()> {
        if self.seen != self.expected {
            return Err(TufError::TargetLengthMismatch);
        }
        self.hasher.finish(&self.hashes).map_err(|e| match e {
            DigestError::Mismatch => TufError::TargetHashMismatch,
            DigestError::Unsupported => TufError::UnsupportedHash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        for ok in ["a", "nl-lock-v2/1.0.0.nlfw", "a/b/c.bin", "..a"] {
            assert_eq!(check_target_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a/",
            "./a",
            "a\\b",
            "a\0",
        ] {
            assert_eq!(
                check_target_name(bad),
                Err(TufError::InvalidTargetName),
                "{bad}"
            );
        }
    }

    #[test]
    fn target_bytes() {
        let file = TargetFile::from_data(b"firmware", None);
        assert_eq!(file.verify(b"firmware"), Ok(()));
        assert_eq!(file.verify(b"firmwarE"), Err(TufError::TargetHashMismatch));
        assert_eq!(file.verify(b"firmwar"), Err(TufError::TargetLengthMismatch));
        assert_eq!(file.verify(b"firmware!"), Err(TufError::TargetTooLarge));
        let mut odd = file.clone();
        odd.hashes.0.insert("md5".into(), alloc::vec![0; 16]);
        assert_eq!(odd.verify(b"firmware"), Err(TufError::UnsupportedHash));
    }
}
