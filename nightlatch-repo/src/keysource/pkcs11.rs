//! Ed25519 keys in a PKCS#11 token (an HSM, or SoftHSM2 in tests), signing
//! with `CKM_EDDSA`. The private key never leaves the token: it is generated
//! there (`CKM_EC_EDWARDS_KEY_PAIR_GEN`, sensitive, not extractable).

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

use crate::error::{Error, Result};
use crate::fsio::read_limited;
use crate::keysource::{KeySource, Pkcs11Uri, passphrase};

/// Environment variable naming the PKCS#11 module when the URI has no `module-path`.
pub const MODULE_ENV: &str = "NIGHTLATCH_PKCS11_MODULE";

/// DER of the Ed25519 curve OID 1.3.101.112 (`CKA_EC_PARAMS`).
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// One initialised context per module for the whole process
/// (`C_Initialize` may be called only once).
static MODULES: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

/// An Ed25519 key in a token, with a logged-in session.
#[derive(Debug)]
pub struct Pkcs11Key {
    uri: Pkcs11Uri,
    session: Session,
    private: ObjectHandle,
    public: VerifyingKey,
}

impl Pkcs11Key {
    /// Find the key named by `uri` and log in.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self> {
        let session = login(uri, false)?;
        let err = |operation, reason: String| failure(uri, operation, reason);
        let private = find_one(&session, uri, ObjectClass::PRIVATE_KEY)?.ok_or_else(|| {
            err(
                "find private key",
                "no such Ed25519 private key in the token".into(),
            )
        })?;
        let public_obj = find_one(&session, uri, ObjectClass::PUBLIC_KEY)?
            .ok_or_else(|| err("find public key", "the key has no public key object".into()))?;
        let public = read_public(&session, uri, public_obj)?;
        Ok(Self {
            uri: uri.clone(),
            session,
            private,
            public,
        })
    }

    /// Generate a new Ed25519 key pair in the token, labelled by the URI's
    /// `object` (and `id`, if given). Refuses if a key with that label exists.
    pub fn generate(uri: &Pkcs11Uri) -> Result<Self> {
        let session = login(uri, true)?;
        let label = uri.object.clone().ok_or_else(|| Error::Pkcs11Uri {
            uri: uri.to_string(),
            reason: "a new key needs object=LABEL".into(),
        })?;
        if find_one(&session, uri, ObjectClass::PRIVATE_KEY)?.is_some() {
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
            Attribute::EcParams(ED25519_PARAMS.to_vec()),
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
        session
            .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public_t, &private_t)
            .map_err(|e| failure(uri, "generate key", e.to_string()))?;
        drop(session);
        Self::open(uri)
    }
}

impl KeySource for Pkcs11Key {
    fn public_key(&self) -> &VerifyingKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<ed25519_dalek::Signature> {
        let mechanism = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let sig = self
            .session
            .sign(&mechanism, self.private, message)
            .map_err(|e| failure(&self.uri, "sign (CKM_EDDSA)", e.to_string()))?;
        let bytes: [u8; 64] = sig.try_into().map_err(|s: Vec<u8>| {
            failure(
                &self.uri,
                "sign (CKM_EDDSA)",
                format!(
                    "the token returned {} bytes, not a 64-byte Ed25519 signature",
                    s.len()
                ),
            )
        })?;
        Ok(ed25519_dalek::Signature::from_bytes(&bytes))
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
        "check that the token is present, the URI names an Ed25519 key, and the module supports CKM_EDDSA"
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

fn find_one(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>> {
    let mut template = vec![
        Attribute::Class(class),
        Attribute::KeyType(KeyType::EC_EDWARDS),
    ];
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

fn read_public(session: &Session, uri: &Pkcs11Uri, obj: ObjectHandle) -> Result<VerifyingKey> {
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
    decode_point(&point).ok_or_else(|| {
        failure(
            uri,
            "read public key",
            "CKA_EC_POINT is not an Ed25519 key".into(),
        )
    })
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
}
