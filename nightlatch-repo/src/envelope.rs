//! Firmware envelopes as a release engineer makes them: a raw image signed
//! into an envelope by 1 to 8 release keys, checked with the bootloader's
//! own verifier before it is handed back (`nightlatch-sign sign`, the
//! system tests and the fleet simulator all sign through here).

use std::path::PathBuf;

use bootloader::anchors::TrustAnchors;
use bootloader::envelope::{
    HardwareModel, Header, MAX_SIGNATURES, PREFIX_LEN, Policy, Prefix, SignatureEntry, Version,
    verify_bytes,
};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::keys;

/// Largest envelope: the prefix plus a payload of `u32::MAX` bytes.
pub const MAX_ENVELOPE_LEN: u64 = PREFIX_LEN as u64 + u32::MAX as u64;

/// The header fields a release engineer chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// Hardware model.
    pub model: HardwareModel,
    /// Firmware version.
    pub version: Version,
    /// Anti-rollback counter.
    pub security_counter: u32,
}

/// Build a complete envelope (prefix and payload) signed by every key (1 to 8
/// distinct keys), and check it with the bootloader's own verifier before
/// returning it.
pub fn sign_payload(release: &Release, payload: &[u8], keys: &[SigningKey]) -> Result<Vec<u8>> {
    let payload_len = u32::try_from(payload.len()).map_err(|_| Error::TooLarge {
        path: PathBuf::from("the payload"),
        limit: u64::from(u32::MAX),
    })?;
    if keys.len() > MAX_SIGNATURES {
        return Err(Error::TooManyKeys { count: keys.len() });
    }
    let header = Header {
        model: release.model,
        version: release.version,
        security_counter: release.security_counter,
        payload_len,
        payload_sha256: Sha256::digest(payload).into(),
    };
    let signed = header.encode();
    let entries: Vec<SignatureEntry> = keys
        .iter()
        .map(|k| SignatureEntry {
            key_id: keys::key_id_of(&k.verifying_key()),
            signature: k.sign(&signed).to_bytes(),
        })
        .collect();
    let prefix = Prefix::encode(&header, &entries).map_err(|reason| Error::Encode { reason })?;
    let mut envelope = Vec::with_capacity(PREFIX_LEN + payload.len());
    envelope.extend_from_slice(&prefix);
    envelope.extend_from_slice(payload);

    // Every key must verify, exactly as a device holding all of them would check.
    let publics: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
    let threshold = u8::try_from(publics.len()).unwrap_or(u8::MAX);
    let anchors =
        TrustAnchors::new(1, threshold, &publics).map_err(|e| Error::anchors(e, publics.len()))?;
    let policy = Policy {
        anchors: &anchors,
        model: Some(&release.model),
        min_security_counter: release.security_counter,
        max_payload_len: u32::MAX,
    };
    verify_bytes(&envelope, &policy).map_err(|reason| Error::SelfCheck { reason })?;
    Ok(envelope)
}

/// Load the signing keys, refusing repeats and more than an envelope holds.
pub fn load_signing_keys(paths: &[PathBuf]) -> Result<Vec<SigningKey>> {
    if paths.len() > MAX_SIGNATURES {
        return Err(Error::TooManyKeys { count: paths.len() });
    }
    let mut loaded: Vec<SigningKey> = Vec::with_capacity(paths.len());
    for path in paths {
        let key = keys::load_private_key(path)?;
        if loaded
            .iter()
            .any(|k| k.verifying_key() == key.verifying_key())
        {
            return Err(Error::DuplicateKey {
                path: path.clone(),
                key_id: keys::key_id_hex(&key.verifying_key()),
            });
        }
        loaded.push(key);
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{parse_model, parse_version};

    #[test]
    fn signed_envelopes_verify_and_bad_key_sets_are_refused() {
        let release = Release {
            model: parse_model("nl-lock-v2").unwrap(),
            version: parse_version("1.2.3").unwrap(),
            security_counter: 7,
        };
        let (a, b) = (keys::generate(), keys::generate());
        let env = sign_payload(&release, &[0xAB; 300], &[a.clone(), b.clone()]).unwrap();
        assert_eq!(env.len(), PREFIX_LEN + 300);
        let prefix = Prefix::parse(&env).unwrap();
        assert_eq!(prefix.signatures().len(), 2);
        assert_eq!(prefix.header.security_counter, 7);
        assert!(matches!(
            sign_payload(&release, b"x", &[a.clone(), a.clone()]),
            Err(Error::Encode { .. } | Error::Anchors { .. })
        ));
        let nine: Vec<SigningKey> = (0..9).map(|_| keys::generate()).collect();
        assert!(matches!(
            sign_payload(&release, b"x", &nine),
            Err(Error::TooManyKeys { count: 9 })
        ));
        assert!(sign_payload(&release, b"x", &[]).is_err());
    }
}
