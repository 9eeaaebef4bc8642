//! Every key type signed with a host key (RustCrypto with `std`, as a
//! ceremony or python-tuf would sign) and verified by the `no_std` code;
//! thresholds across key types; parsing errors; the serialisation round
//! trip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

extern crate std;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use alloc::{format, vec};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::cjson;

const NOW: u64 = 1_800_000_000;
const EXPIRES: &str = "2030-01-01T00:00:00Z";
#[cfg(feature = "rsa")]
const RSA_A: &str = include_str!("testdata/rsa-2048-a.key.pem");
#[cfg(feature = "rsa")]
const RSA_B: &str = include_str!("testdata/rsa-2048-b.key.pem");
#[cfg(feature = "rsa")]
const RSA_1024_PUB: &str = include_str!("testdata/rsa-1024.pub.pem");

/// A private key of one TUF key type, with the scheme it signs with.
enum Signer {
    Ed25519(ed25519_dalek::SigningKey),
    #[cfg(feature = "ecdsa")]
    Ecdsa(p256::ecdsa::SigningKey),
    #[cfg(feature = "rsa")]
    Rsa(rsa::RsaPrivateKey, &'static str),
}

fn ed(seed: u8) -> Signer {
    Signer::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
}

#[cfg(feature = "ecdsa")]
fn ec(seed: u8) -> Signer {
    Signer::Ecdsa(p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap())
}

#[cfg(feature = "rsa")]
fn rsa_key(pem: &str, scheme: &'static str) -> Signer {
    use rsa::pkcs8::DecodePrivateKey;
    Signer::Rsa(rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap(), scheme)
}

impl Signer {
    /// The key object as securesystemslib writes it.
    fn public_json(&self) -> Value {
        match self {
            Signer::Ed25519(k) => json!({"keytype": "ed25519", "scheme": "ed25519",
                "keyval": {"public": hex_encode(k.verifying_key().as_bytes())}}),
            #[cfg(feature = "ecdsa")]
            Signer::Ecdsa(k) => {
                use p256::pkcs8::{EncodePublicKey, LineEnding};
                let pem = k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
                json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
                    "keyval": {"public": pem}})
            }
            #[cfg(feature = "rsa")]
            Signer::Rsa(k, scheme) => {
                use rsa::pkcs8::{EncodePublicKey, LineEnding};
                let pem = k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
                json!({"keytype": "rsa", "scheme": scheme, "keyval": {"public": pem}})
            }
        }
    }

    fn public(&self) -> PublicKey {
        PublicKey::from_json(&self.public_json(), Role::Root).unwrap()
    }

    fn keyid(&self) -> String {
        hex_encode(&Sha256::digest(cjson::to_vec(&self.public_json()).unwrap()))
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Signer::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(msg).to_bytes().to_vec()
            }
            #[cfg(feature = "ecdsa")]
            Signer::Ecdsa(k) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
            #[cfg(feature = "rsa")]
            Signer::Rsa(k, scheme) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer as _};
                if *scheme == "rsassa-pss-sha256" {
                    rsa::pss::SigningKey::<Sha256>::new(k.clone())
                        .sign_with_rng(&mut rand_core::OsRng, msg)
                        .to_vec()
                } else {
                    rsa::pkcs1v15::SigningKey::<Sha256>::new(k.clone())
                        .sign(msg)
                        .to_vec()
                }
            }
        }
    }
}

/// A root `signed` object listing `keys` for every role, threshold `t`.
fn root_signed(keys: &[&Signer], t: u32) -> Value {
    let mut listed = serde_json::Map::new();
    let ids: Vec<String> = keys.iter().map(|k| k.keyid()).collect();
    for k in keys {
        listed.insert(k.keyid(), k.public_json());
    }
    let role = json!({"keyids": ids, "threshold": t});
    json!({"_type": "root", "spec_version": "1.0.31", "version": 1, "expires": EXPIRES,
        "consistent_snapshot": true, "keys": listed,
        "roles": {"root": role, "timestamp": role, "snapshot": role, "targets": role}})
}

/// The envelope of `signed` signed by `signers`.
fn envelope(signed: &Value, signers: &[&Signer]) -> Vec<u8> {
    let canonical = cjson::to_vec(signed).unwrap();
    let sigs: Vec<Value> = signers
        .iter()
        .map(|s| json!({"keyid": s.keyid(), "sig": hex_encode(&s.sign(&canonical))}))
        .collect();
    serde_json::to_vec(&json!({"signatures": sigs, "signed": signed})).unwrap()
}

fn check_root(bytes: &[u8]) -> Result<Root> {
    let env = Envelope::parse(bytes, Role::Root)?;
    let root = Root::parse(&env)?;
    env.verify(&root.keys, &root.root, Role::Root)?;
    Ok(root)
}

fn signature_err(valid: u32, threshold: u32) -> TufError {
    TufError::Signature {
        role: Role::Root,
        valid,
        threshold,
    }
}

/// Every key type this build verifies, each with a second key of the same
/// type.
fn signers() -> Vec<(Signer, Signer)> {
    #[allow(unused_mut, clippy::useless_vec)]
    let mut all = vec![(ed(1), ed(2))];
    #[cfg(feature = "ecdsa")]
    all.push((ec(3), ec(4)));
    #[cfg(feature = "rsa")]
    {
        all.push((
            rsa_key(RSA_A, "rsassa-pss-sha256"),
            rsa_key(RSA_B, "rsassa-pss-sha256"),
        ));
        all.push((
            rsa_key(RSA_A, "rsa-pkcs1v15-sha256"),
            rsa_key(RSA_B, "rsa-pkcs1v15-sha256"),
        ));
    }
    all
}

#[test]
fn each_key_type_verifies_its_own_signature_only() {
    for (key, other) in signers() {
        let name = format!("{}/{}", key.public().keytype(), key.public().scheme());
        let signed = root_signed(&[&key], 1);
        let good = envelope(&signed, &[&key]);
        let root = check_root(&good).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(root.keys[&key.keyid()].is_supported(), "{name}");

        // Another key's signature under this key's id.
        let canonical = cjson::to_vec(&signed).unwrap();
        let forged = json!({"signatures": [{"keyid": key.keyid(),
            "sig": hex_encode(&other.sign(&canonical))}], "signed": signed});
        let forged = serde_json::to_vec(&forged).unwrap();
        assert_eq!(
            check_root(&forged).err(),
            Some(signature_err(0, 1)),
            "{name}"
        );

        // The signed part changed after signing (a field added).
        let mut tampered: Value = serde_json::from_slice(&good).unwrap();
        tampered["signed"]["version"] = json!(2);
        let tampered = serde_json::to_vec(&tampered).unwrap();
        assert_eq!(
            check_root(&tampered).err(),
            Some(signature_err(0, 1)),
            "{name}"
        );

        // A signature of other bytes, and garbage of every length.
        let env = Envelope::parse(&good, Role::Root).unwrap();
        let sig = &env.signatures()[0].1;
        let pk = key.public();
        assert!(pk.verify(env.canonical(), sig), "{name}");
        assert!(!pk.verify(b"other bytes", sig), "{name}");
        for len in [0, 1, 63, 64, 65, 72, 256, 512] {
            assert!(
                !pk.verify(env.canonical(), &vec![0x30; len]),
                "{name} {len}"
            );
        }
    }
}

#[test]
fn keyid_is_the_sha256_of_the_canonical_key_object() {
    for (key, _) in signers() {
        assert_eq!(key.public().keyid(), key.keyid());
        // The key serialises to the object it was read from.
        assert_eq!(
            cjson::to_vec(&key.public().to_json()).unwrap(),
            cjson::to_vec(&key.public_json()).unwrap()
        );
    }
    // securesystemslib's key id for a known Ed25519 key.
    let k = ed(7);
    let text = format!(
        r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
        hex_encode(
            match &k {
                Signer::Ed25519(s) => s.verifying_key().to_bytes(),
                #[allow(unreachable_patterns)]
                _ => unreachable!(),
            }
            .as_slice()
        )
    );
    assert_eq!(k.keyid(), hex_encode(&Sha256::digest(text.as_bytes())));
}

#[cfg(feature = "ecdsa")]
#[test]
fn ecdsa_keys_and_signature_encodings() {
    let key = ec(3);
    // The deprecated keytype python-tuf still reads is read and written back.
    let mut old = key.public_json();
    old["keytype"] = json!("ecdsa-sha2-nistp256");
    let pk = PublicKey::from_json(&old, Role::Root).unwrap();
    assert!(pk.is_supported());
    assert_eq!(pk.keytype(), "ecdsa-sha2-nistp256");
    assert_eq!(pk.to_json(), old);
    // A P-384 scheme is another key type: parsed, never counted.
    let mut p384 = key.public_json();
    p384["scheme"] = json!("ecdsa-sha2-nistp384");
    assert!(
        !PublicKey::from_json(&p384, Role::Root)
            .unwrap()
            .is_supported()
    );
    // Signatures are DER (what python-tuf writes); a raw r||s is refused.
    let msg = b"canonical bytes";
    let raw: p256::ecdsa::Signature = match &key {
        Signer::Ecdsa(k) => p256::ecdsa::signature::Signer::sign(k, msg),
        _ => unreachable!(),
    };
    assert!(key.public().verify(msg, raw.to_der().as_bytes()));
    assert!(!key.public().verify(msg, &raw.to_bytes()));
    // A key that is not a P-256 PEM makes the metadata malformed.
    let mut bad = key.public_json();
    bad["keyval"]["public"] = json!("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    assert_eq!(
        PublicKey::from_json(&bad, Role::Targets),
        Err(TufError::malformed(
            Role::Targets,
            "ecdsa keyval.public is not a P-256 public key PEM"
        ))
    );
    #[cfg(feature = "rsa")]
    {
        // An RSA PEM listed as ECDSA.
        let rsa = rsa_key(RSA_A, "rsassa-pss-sha256");
        bad["keyval"]["public"] = rsa.public_json()["keyval"]["public"].clone();
        assert!(PublicKey::from_json(&bad, Role::Root).is_err());
    }
}

#[cfg(feature = "rsa")]
#[test]
fn rsa_schemes_are_not_interchangeable_and_sizes_are_bounded() {
    let pss = rsa_key(RSA_A, "rsassa-pss-sha256");
    let pkcs = rsa_key(RSA_A, "rsa-pkcs1v15-sha256");
    let msg = b"canonical bytes";
    assert!(pss.public().verify(msg, &pss.sign(msg)));
    assert!(pkcs.public().verify(msg, &pkcs.sign(msg)));
    // Same key, wrong scheme: refused both ways.
    assert!(!pss.public().verify(msg, &pkcs.sign(msg)));
    assert!(!pkcs.public().verify(msg, &pss.sign(msg)));
    // The same RSA key under both schemes is one key.
    assert!(pss.public().same_key(&pkcs.public()));
    // Other RSA schemes parse and never count.
    let mut sha512 = pss.public_json();
    sha512["scheme"] = json!("rsassa-pss-sha512");
    assert!(
        !PublicKey::from_json(&sha512, Role::Root)
            .unwrap()
            .is_supported()
    );
    // 1024-bit keys are refused.
    let mut small = pss.public_json();
    small["keyval"]["public"] = json!(RSA_1024_PUB);
    assert_eq!(
        PublicKey::from_json(&small, Role::Root),
        Err(TufError::malformed(
            Role::Root,
            "rsa key is not 2048 to 4096 bits long"
        ))
    );
    // An ECDSA PEM listed as RSA.
    #[cfg(feature = "ecdsa")]
    {
        let mut wrong = pss.public_json();
        wrong["keyval"]["public"] = ec(3).public_json()["keyval"]["public"].clone();
        assert!(PublicKey::from_json(&wrong, Role::Root).is_err());
    }
}

#[test]
fn a_threshold_counts_distinct_keys_across_key_types() {
    #[allow(unused_mut, clippy::useless_vec)]
    let mut mixed = vec![ed(1)];
    #[cfg(feature = "ecdsa")]
    mixed.push(ec(3));
    #[cfg(feature = "rsa")]
    {
        mixed.push(rsa_key(RSA_A, "rsassa-pss-sha256"));
        mixed.push(rsa_key(RSA_B, "rsa-pkcs1v15-sha256"));
    }
    let firsts: Vec<&Signer> = mixed.iter().collect();
    let n = u32::try_from(firsts.len()).unwrap();
    let signed = root_signed(&firsts, n);
    // Every key type signs: threshold met.
    let root = check_root(&envelope(&signed, &firsts)).unwrap();
    assert_eq!(root.root.threshold, n);
    // One short: refused, and the count says how many were valid.
    let fewer = envelope(&signed, &firsts[1..]);
    assert_eq!(check_root(&fewer).err(), Some(signature_err(n - 1, n)));

    // The same RSA key listed under both schemes is one key: a threshold
    // of two is not met by its two signatures.
    #[cfg(feature = "rsa")]
    {
        let pss = rsa_key(RSA_A, "rsassa-pss-sha256");
        let pkcs = rsa_key(RSA_A, "rsa-pkcs1v15-sha256");
        let signed = root_signed(&[&pss, &pkcs], 2);
        assert_eq!(
            check_root(&envelope(&signed, &[&pss, &pkcs])).err(),
            Some(signature_err(1, 2))
        );
    }

    // One key listed under two key ids (here: the same Ed25519 key) counts
    // once.
    let key = ed(9);
    let mut signed = root_signed(&[&key, &ed(10)], 2);
    let alias = "alias-of-key-9".to_string();
    signed["keys"][&alias] = key.public_json();
    signed["roles"]["root"]["keyids"] = json!([key.keyid(), alias]);
    let canonical = cjson::to_vec(&signed).unwrap();
    let sig = hex_encode(&key.sign(&canonical));
    let bytes = serde_json::to_vec(&json!({"signatures": [
        {"keyid": key.keyid(), "sig": sig}, {"keyid": alias, "sig": sig}], "signed": signed}))
    .unwrap();
    assert_eq!(check_root(&bytes).err(), Some(signature_err(1, 2)));

    // The same key id listed twice in a role, or signing twice: malformed.
    let mut twice = root_signed(&[&key], 1);
    twice["roles"]["root"]["keyids"] = json!([key.keyid(), key.keyid()]);
    let bytes = envelope(&twice, &[&key]);
    assert_eq!(
        check_root(&bytes).err(),
        Some(TufError::malformed(
            Role::Root,
            "a role lists a key id twice"
        ))
    );
    let signed = root_signed(&[&key], 1);
    let canonical = cjson::to_vec(&signed).unwrap();
    let sig = hex_encode(&key.sign(&canonical));
    let bytes = serde_json::to_vec(&json!({"signatures": [
        {"keyid": key.keyid(), "sig": sig}, {"keyid": key.keyid(), "sig": sig}], "signed": signed}))
    .unwrap();
    assert_eq!(
        check_root(&bytes).err(),
        Some(TufError::malformed(
            Role::Root,
            "two signatures carry the same key id"
        ))
    );
}

#[test]
fn unsupported_key_types_parse_but_never_count() {
    let key = ed(1);
    let mut signed = root_signed(&[&key], 1);
    let odd = json!({"keytype": "sphincs", "scheme": "sphincs-shake-256",
        "keyval": {"public": "00"}, "x-extra": [1, 2]});
    signed["keys"]["odd"] = odd.clone();
    signed["roles"]["root"]["keyids"] = json!(["odd"]);
    let canonical = cjson::to_vec(&signed).unwrap();
    let bytes = serde_json::to_vec(&json!({"signatures": [
        {"keyid": "odd", "sig": hex_encode(&key.sign(&canonical))}], "signed": signed}))
    .unwrap();
    assert_eq!(check_root(&bytes).err(), Some(signature_err(0, 1)));
    let env = Envelope::parse(&bytes, Role::Root).unwrap();
    let root = Root::parse(&env).unwrap();
    assert!(!root.keys["odd"].is_supported());
    assert_eq!(root.keys["odd"].to_json(), odd);
}

#[test]
fn malformed_keys_and_roles_say_what_is_wrong() {
    let key = ed(1);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "AB"}}),
            "ed25519 keyval.public is not 64 lower-case hex digits",
        ),
        (
            json!({"keytype": "ed25519", "scheme": "ed25519",
            "keyval": {"public": hex_encode(&[0xAB; 32]).to_uppercase()}}),
            "ed25519 keyval.public is not 64 lower-case hex digits",
        ),
        (
            json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {}}),
            "ed25519 key has no keyval.public",
        ),
        (
            json!({"scheme": "ed25519", "keyval": {}}),
            "a key has no keytype string",
        ),
        (
            json!({"keytype": "ed25519", "scheme": "ed25519"}),
            "a key has no keyval object",
        ),
        (json!("key"), "a key is not a JSON object"),
    ];
    for (k, what) in cases {
        let mut signed = root_signed(&[&key], 1);
        signed["keys"]["bad"] = k;
        let bytes = envelope(&signed, &[&key]);
        assert_eq!(
            check_root(&bytes).err(),
            Some(TufError::malformed(Role::Root, what)),
            "{what}"
        );
    }
    let mut signed = root_signed(&[&key], 1);
    signed["roles"]["root"]["threshold"] = json!(0);
    assert_eq!(
        check_root(&envelope(&signed, &[&key])).err(),
        Some(TufError::malformed(
            Role::Root,
            "a role's threshold is not an integer from 1 to 4294967295"
        ))
    );
    let mut signed = root_signed(&[&key], 1);
    signed["roles"].as_object_mut().unwrap().remove("snapshot");
    assert!(matches!(
        check_root(&envelope(&signed, &[&key])),
        Err(TufError::Malformed { .. })
    ));
    // The error reads as a sentence.
    assert_eq!(
        TufError::malformed(Role::Root, "a key has no keyval object").to_string(),
        "root metadata is malformed: a key has no keyval object"
    );
}

#[test]
fn every_role_round_trips_to_the_same_canonical_json() {
    let key = ed(1);
    let mut root = root_signed(&[&key], 1);
    root["x-ceremony"] = json!({"transcript": "abc"});
    #[cfg(feature = "ecdsa")]
    {
        let k = ec(3);
        root["keys"][k.keyid()] = k.public_json();
    }
    #[cfg(feature = "rsa")]
    {
        let k = rsa_key(RSA_A, "rsa-pkcs1v15-sha256");
        root["keys"][k.keyid()] = k.public_json();
    }
    let mut root_plain = root.clone();
    root_plain
        .as_object_mut()
        .unwrap()
        .remove("consistent_snapshot");
    let timestamp = json!({"_type": "timestamp", "spec_version": "1.0", "version": 7,
        "expires": EXPIRES, "meta": {"snapshot.json": {"version": 3, "length": 10,
        "hashes": {"sha256": "00ff"}, "x": 1}}});
    let snapshot = json!({"_type": "snapshot", "spec_version": "1.0.31", "version": 3,
        "expires": EXPIRES, "meta": {"targets.json": {"version": 2},
        "firmware.json": {"version": 1}}});
    let targets = json!({"_type": "targets", "spec_version": "1.0.31", "version": 2,
        "expires": EXPIRES, "targets": {"nl/1.0.0.nlfw": {"length": 5,
            "hashes": {"sha256": "ab", "sha512": "cd"},
            "custom": {"nightlatch": {"version": "1.0.0", "f": [1, {"a": null}]}}},
            "plain": {"length": 0, "hashes": {"sha256": "00"}, "unknown": true}},
        "delegations": {"keys": {key.keyid(): key.public_json()},
            "roles": [{"name": "firmware", "keyids": [key.keyid()], "threshold": 1,
                "terminating": true, "paths": ["nl/*"]},
                {"name": "hashed", "keyids": [], "threshold": 1, "terminating": false,
                "path_hash_prefixes": ["3"]}], "x-d": "y"}});
    let same = |a: Value, b: Value| {
        assert_eq!(
            String::from_utf8(cjson::to_vec(&a).unwrap()).unwrap(),
            String::from_utf8(cjson::to_vec(&b).unwrap()).unwrap()
        );
    };
    for r in [root, root_plain] {
        let parsed = Root::from_json(&r).unwrap();
        same(parsed.to_json(), r.clone());
        same(serde_json::to_value(&parsed).unwrap(), r.clone());
        let back: Root = serde_json::from_value(r).unwrap();
        assert_eq!(back, parsed);
    }
    let parsed = Timestamp::from_json(&timestamp).unwrap();
    same(serde_json::to_value(&parsed).unwrap(), timestamp);
    let parsed = Snapshot::from_json(&snapshot).unwrap();
    same(serde_json::to_value(&parsed).unwrap(), snapshot);
    let parsed = Targets::from_json(&targets, Role::Targets).unwrap();
    same(serde_json::to_value(&parsed).unwrap(), targets.clone());
    let back: Targets = serde_json::from_value(targets).unwrap();
    assert_eq!(back, parsed);

    // Built on the host from scratch: a signed envelope the same code
    // verifies.
    let mut t = Targets {
        header: Header::new(1, NOW + 86_400),
        targets: Default::default(),
        delegations: None,
        unrecognized: Default::default(),
    };
    t.targets
        .insert("a.bin".into(), TargetFile::from_data(b"abc", None));
    let mut env = Envelope::new(t.to_json(), Role::Targets).unwrap();
    let sig = key.sign(env.canonical());
    assert!(env.add_signature(key.keyid(), sig));
    let bytes = serde_json::to_vec(&env).unwrap();
    let env = Envelope::parse(&bytes, Role::Targets).unwrap();
    let keys: Keys = [(key.keyid(), key.public())].into_iter().collect();
    let role = RoleKeys {
        keyids: vec![key.keyid()],
        threshold: 1,
    };
    env.verify(&keys, &role, Role::Targets).unwrap();
    let read = Targets::parse(&env, Role::Targets).unwrap();
    assert_eq!(read, t);
    read.header.check_fresh(NOW, Role::Targets).unwrap();
    assert_eq!(
        read.header.check_fresh(NOW + 86_400, Role::Targets),
        Err(TufError::Expired {
            role: Role::Targets
        })
    );
    read.targets["a.bin"].verify(b"abc").unwrap();
}

#[test]
fn version_rules() {
    use rules::*;
    assert_eq!(check_next_root(1, 2), Ok(()));
    assert_eq!(
        check_next_root(2, 2),
        Err(TufError::Rollback {
            role: Role::Root,
            trusted: 2,
            offered: 2
        })
    );
    assert_eq!(
        check_next_root(2, 4),
        Err(TufError::RootVersionGap {
            expected: 3,
            got: 4
        })
    );
    assert_eq!(check_no_rollback(Role::Timestamp, 3, 3), Ok(()));
    assert!(check_no_rollback(Role::Timestamp, 3, 2).is_err());
    assert!(check_listed_version(Role::Snapshot, 3, 4).is_err());
    let snap = |v: u64| {
        Snapshot::from_json(
            &json!({"_type": "snapshot", "spec_version": "1.0", "version": 1,
            "expires": EXPIRES, "meta": {"targets.json": {"version": v}}}),
        )
        .unwrap()
    };
    assert_eq!(check_snapshot_rollback(&snap(2), &snap(3)), Ok(()));
    assert_eq!(
        check_snapshot_rollback(&snap(2), &snap(1)),
        Err(TufError::Rollback {
            role: Role::Targets,
            trusted: 2,
            offered: 1
        })
    );
    let meta = MetaFile {
        length: Some(3),
        hashes: Some(TargetFile::from_data(b"abc", None).hashes),
        ..MetaFile::new(1)
    };
    assert_eq!(check_meta_file(b"abc", &meta, Role::Snapshot), Ok(()));
    assert_eq!(
        check_meta_file(b"abd", &meta, Role::Snapshot),
        Err(TufError::MetaHashMismatch {
            role: Role::Snapshot
        })
    );
    assert_eq!(
        check_meta_file(b"abcd", &meta, Role::Snapshot),
        Err(TufError::MetaLengthMismatch {
            role: Role::Snapshot
        })
    );
}
