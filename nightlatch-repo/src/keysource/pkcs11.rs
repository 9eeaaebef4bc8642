//! Keys in a PKCS#11 token (an HSM, or SoftHSM2 in tests): Ed25519, signing
//! with `CKM_EDDSA`, or ECDSA P-256, signing a SHA-256 digest with
//! `CKM_ECDSA` (the mechanism every token has; the raw `r ‖ s` it returns is
//! written as the DER signature TUF's `ecdsa-sha2-nistp256` scheme lists).
//! The private key never leaves the token: it is generated there
//! (`CKM_EC_EDWARDS_KEY_PAIR_GEN` / `CKM_EC_KEY_PAIR_GEN`, sensitive, not
//! extractable).

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ed25519_dalek::VerifyingKey;
use nightlatch_proto::tuf::key::PublicKey;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsio::read_limited;
use crate::keysource::secret::{self, ecdsa_public};
use crate::keysource::{KeySource, Pkcs11Uri, passphrase};

/// Environment variable naming the PKCS#11 module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "NIGHTLATCH_PKCS11_MODULE";

/// DER of the Ed25519 curve OID 1.3.101.112 (`CKA_EC_PARAMS`).
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER of the P-256 curve OID 1.2.840.10045.3.1.7 (`prime256v1`).
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The key types a token key may have here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ed25519,
    EcdsaP256,
}

/// One initialised context per module for the whole process
/// (`C_Initialize` may be called only once).
static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// An Ed25519 or ECDSA P-256 key in a token, with a logged-in session.
#[derive(Debug)]
pub struct Pkcs11Key {
    uri: Pkcs11Uri,
    session: Session,
    private: ObjectHandle,
    kind: Kind,
    public: PublicKey,
}

impl Pkcs11Key {
    /// Find the key named by `uri` and log in.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self> {
        let session = login(uri, false)?;
        let err = |operation, reason: String| failure(uri, operation, reason);
        let (kind, private) = find_private(&session, uri)?.ok_or_else(|| {
            err(
                "find private key",
                "no such Ed25519 or ECDSA P-256 private key in the token".into(),
            )
        })?;
        let public_obj = find_one(&session, uri, ObjectClass::PUBLIC_KEY, kind)?
            .ok_or_else(|| err("find public key", "the key has no public key object".into()))?;
        let public = read_public(&session, uri, public_obj, kind)?;
        Ok(Self {
            uri: uri.clone(),
            session,
            private,
            kind,
            public,
        })
    }

    /// Generate a new key pair of type `kind` in the token, labelled by the
    /// URI's `object` (and `id`, if given). Refuses if a key with that label
    /// exists.
    pub fn generate(uri: &Pkcs11Uri, kind: secret::KeyType) -> Result<Self> {
        let kind = match kind {
            secret::KeyType::Ed25519 => Kind::Ed25519,
            secret::KeyType::EcdsaP256 => Kind::EcdsaP256,
            secret::KeyType::Rsa => {
                return Err(Error::usage(
                    "RSA keys are not made in tokens by this tool",
                    "use --type ed25519 or --type ecdsa for a token key (RSA keys: key files)",
                ));
            }
        };
        let session = login(uri, true)?;
        let label = uri.object.clone().ok_or_else(|| Error::Pkcs11Uri {
            uri: uri.to_string(),
            reason: "a new key needs object=LABEL".into(),
        })?;
        if find_private(&session, uri)?.is_some() {
            return Err(failure(
                uri,
                "generate key",
                "a key with this label already exists".into(),
            ));
        }
        let mut public_t = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::EcParams(match kind {
                Kind::Ed25519 => ED25519_PARAMS.to_vec(),
                Kind::EcdsaP256 => P256_PARAMS.to_vec(),
            }),
            Attribute::Label(label.clone().into_bytes()),
        ];
        let mut private_t = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.into_bytes()),
        ];
        if let Some(id) = &uri.id {
            public_t.push(Attribute::Id(id.clone()));
            private_t.push(Attribute::Id(id.clone()));
        }
        let mechanism = match kind {
            Kind::Ed25519 => Mechanism::EccEdwardsKeyPairGen,
            Kind::EcdsaP256 => Mechanism::EccKeyPairGen,
        };
        session
            .generate_key_pair(&mechanism, &public_t, &private_t)
            .map_err(|e| failure(uri, "generate key", e.to_string()))?;
        drop(session);
        Self::open(uri)
    }
}

impl KeySource for Pkcs11Key {
    fn public(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match self.kind {
            Kind::Ed25519 => {
                let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
                let sig = self
                    .session
                    .sign(&mechanism, self.private, message)
                    .map_err(|e| failure(&self.uri, "sign (CKM_EDDSA)", e.to_string()))?;
                if sig.len() != 64 {
                    return Err(failure(
                        &self.uri,
                        "sign (CKM_EDDSA)",
                        format!(
                            "the token returned {} bytes, not a 64-byte Ed25519 signature",
                            sig.len()
                        ),
                    ));
                }
                Ok(sig)
            }
            Kind::EcdsaP256 => {
                let digest = Sha256::digest(message);
                let raw = self
                    .session
                    .sign(&Mechanism::Ecdsa, self.private, &digest)
                    .map_err(|e| failure(&self.uri, "sign (CKM_ECDSA)", e.to_string()))?;
                let sig = p256::ecdsa::Signature::from_slice(&raw).map_err(|_| {
                    failure(
                        &self.uri,
                        "sign (CKM_ECDSA)",
                        format!(
                            "the token returned {} bytes, not a 64-byte P-256 r ‖ s",
                            raw.len()
                        ),
                    )
                })?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
        }
    }

    fn describe(&self) -> String {
        self.uri.to_string()
    }
}

fn failure(uri: &Pkcs11Uri, operation: &'static str, reason: String) -> Error {
    let help = if reason.contains("PIN_INCORRECT") {
        "the PIN is wrong; check pin-source / NIGHTLATCH_PKCS11_PIN (tokens lock after repeated wrong PINs)"
    } else if operation == "load module" {
        "set module-path= in the URI or NIGHTLATCH_PKCS11_MODULE to the PKCS#11 library (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
    } else if operation == "find token" {
        "check token= against the labels your module lists (softhsm2-util --show-slots), and SOFTHSM2_CONF for SoftHSM2"
    } else {
        "check that the token is present, the URI names an Ed25519 or P-256 key, and the module supports CKM_EDDSA / CKM_ECDSA"
    };
    Error::Pkcs11 {
        uri: uri.to_string(),
        operation,
        reason,
        help: help.into(),
    }
}

fn context(uri: &Pkcs11Uri) -> Result<Pkcs11> {
    let module = match &uri.module_path {
        Some(p) => p.clone(),
        None => std::env::var_os(MODULE_ENV)
            .map(PathBuf::from)
            .ok_or_else(|| {
                failure(
                    uri,
                    "load module",
                    "no module-path in the URI and NIGHTLATCH_PKCS11_MODULE is not set".into(),
                )
            })?,
    };
    let mut modules = MODULES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, ctx)) = modules.iter().find(|(p, _)| *p == module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&module)
        .map_err(|e| failure(uri, "load module", format!("{}: {e}", module.display())))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| failure(uri, "load module", e.to_string()))?;
    modules.push((module, ctx.clone()));
    Ok(ctx)
}

fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| failure(uri, "find token", e.to_string()))?;
    let mut matching = Vec::new();
    for slot in slots {
        if uri.slot_id.is_some_and(|id| slot.id() != id) {
            continue;
        }
        if let Some(label) = &uri.token {
            let info = ctx
                .get_token_info(slot)
                .map_err(|e| failure(uri, "find token", e.to_string()))?;
            if info.label().trim_end() != label {
                continue;
            }
        }
        matching.push(slot);
    }
    match matching.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(failure(
            uri,
            "find token",
            "no token matches the URI".into(),
        )),
        _ => Err(failure(
            uri,
            "find token",
            "several tokens match; add token= or slot-id=".into(),
        )),
    }
}

fn read_pin(uri: &Pkcs11Uri) -> Result<AuthPin> {
    if let Some(pin) = &uri.pin_value {
        return Ok(AuthPin::new(pin.clone().into()));
    }
    if let Some(path) = &uri.pin_source {
        let bytes = read_limited(path, 1024)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::KeyFile {
            path: path.clone(),
            reason: "the PIN file is not UTF-8 text".into(),
        })?;
        return Ok(AuthPin::new(
            text.trim_end_matches(['\r', '\n']).to_owned().into(),
        ));
    }
    let pin = passphrase::pin(&uri.to_string())?;
    Ok(AuthPin::new(pin.as_str().to_owned().into()))
}

fn login(uri: &Pkcs11Uri, read_write: bool) -> Result<Session> {
    let ctx = context(uri)?;
    let slot = find_slot(&ctx, uri)?;
    let session = if read_write {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(|e| failure(uri, "open session", e.to_string()))?;
    let pin = read_pin(uri)?;
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) => Ok(session),
        Err(cryptoki::error::Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(e) => Err(failure(uri, "log in", e.to_string())),
    }
}

/// The private key the URI names, of either type.
fn find_private(session: &Session, uri: &Pkcs11Uri) -> Result<Option<(Kind, ObjectHandle)>> {
    for kind in [Kind::Ed25519, Kind::EcdsaP256] {
        if let Some(handle) = find_one(session, uri, ObjectClass::PRIVATE_KEY, kind)? {
            return Ok(Some((kind, handle)));
        }
    }
    Ok(None)
}

fn find_one(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
    kind: Kind,
) -> Result<Option<ObjectHandle>> {
    let key_type = match kind {
        Kind::Ed25519 => KeyType::EC_EDWARDS,
        Kind::EcdsaP256 => KeyType::EC,
    };
    let mut template = vec![Attribute::Class(class), Attribute::KeyType(key_type)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.clone().into_bytes()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let found = session
        .find_objects(&template)
        .map_err(|e| failure(uri, "find key", e.to_string()))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(failure(
            uri,
            "find key",
            "several keys match; add id= to the URI".into(),
        )),
    }
}

fn read_public(
    session: &Session,
    uri: &Pkcs11Uri,
    obj: ObjectHandle,
    kind: Kind,
) -> Result<PublicKey> {
    let attrs = session
        .get_attributes(obj, &[AttributeType::EcPoint])
        .map_err(|e| failure(uri, "read public key", e.to_string()))?;
    let point = attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or_else(|| failure(uri, "read public key", "no CKA_EC_POINT".into()))?;
    match kind {
        Kind::Ed25519 => decode_point(&point).map(PublicKey::Ed25519).ok_or_else(|| {
            failure(
                uri,
                "read public key",
                "CKA_EC_POINT is not an Ed25519 key".into(),
            )
        }),
        Kind::EcdsaP256 => decode_p256_point(&point)
            .ok_or_else(|| {
                failure(
                    uri,
                    "read public key",
                    "CKA_EC_POINT is not a P-256 point".into(),
                )
            })
            .and_then(|k| ecdsa_public(&k).map_err(|e| failure(uri, "read public key", e))),
    }
}

/// `CKA_EC_POINT` is the 32 raw bytes, or (SoftHSM2, older specs) a DER
/// OCTET STRING wrapping them.
fn decode_point(point: &[u8]) -> Option<VerifyingKey> {
    let raw: &[u8] = match point {
        [0x04, 32, rest @ ..] if rest.len() == 32 => rest,
        raw if raw.len() == 32 => raw,
        _ => return None,
    };
    let bytes: [u8; 32] = raw.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// A P-256 `CKA_EC_POINT`: the DER OCTET STRING of the SEC 1 point (as the
/// specification says), or the bare point (some modules).
fn decode_p256_point(point: &[u8]) -> Option<p256::ecdsa::VerifyingKey> {
    let wrapped = match point {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => {
            p256::ecdsa::VerifyingKey::from_sec1_bytes(rest).ok()
        }
        _ => None,
    };
    wrapped.or_else(|| p256::ecdsa::VerifyingKey::from_sec1_bytes(point).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_forms() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
        let raw = key.to_bytes();
        assert_eq!(decode_point(&raw), Some(key));
        let mut der = vec![0x04, 32];
        der.extend_from_slice(&raw);
        assert_eq!(decode_point(&der), Some(key));
        assert_eq!(decode_point(&der[..20]), None);
        assert_eq!(decode_point(&[]), None);
    }

    #[test]
    fn p256_point_forms() {
        let key = *p256::ecdsa::SigningKey::from_slice(&[5; 32])
            .unwrap()
            .verifying_key();
        let sec1 = key.to_encoded_point(false);
        assert_eq!(decode_p256_point(sec1.as_bytes()), Some(key));
        let mut der = vec![0x04, 65];
        der.extend_from_slice(sec1.as_bytes());
        assert_eq!(decode_p256_point(&der), Some(key));
        assert_eq!(decode_p256_point(&der[..30]), None);
    }
}
