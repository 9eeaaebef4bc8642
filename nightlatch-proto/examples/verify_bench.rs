//! Signature verification time per TUF key type, as the lock's client
//! verifies (`PublicKey::verify` over the canonical bytes of a targets
//! metadata file): median, min and max over N runs, in µs.
//!
//! `cargo run --release -p nightlatch-proto --example verify_bench [N]`
//! (default N = 200). Signing uses host keys (dev-dependencies); only the
//! verification is timed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use nightlatch_proto::cjson;
use nightlatch_proto::tuf::{PublicKey, Role, hex_encode};
use serde_json::{Value, json};

/// A targets `signed` object like one Nightlatch release lists (~1 KiB).
fn message() -> Vec<u8> {
    let mut targets = serde_json::Map::new();
    for v in 0..4 {
        targets.insert(
            format!("nl-lock-v2/1.{v}.0.nlfw"),
            json!({"length": 262_144 + v, "hashes": {"sha256": "ab".repeat(32)},
                "custom": {"nightlatch": {"kind": "firmware", "hardware_model": "nl-lock-v2",
                "version": format!("1.{v}.0"), "security_counter": 3}}}),
        );
    }
    let signed = json!({"_type": "targets", "spec_version": "1.0.31", "version": 7,
        "expires": "2030-01-01T00:00:00Z", "targets": targets});
    cjson::to_vec(&signed).unwrap()
}

fn rsa_public(private_pem: &str, scheme: &str) -> (rsa::RsaPrivateKey, Value) {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    let k = rsa::RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap();
    let pem = k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    (
        k,
        json!({"keytype": "rsa", "scheme": scheme, "keyval": {"public": pem}}),
    )
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let msg = message();
    let mut cases: Vec<(String, Value, Vec<u8>)> = Vec::new();

    let ed = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    cases.push((
        "ed25519".into(),
        json!({"keytype": "ed25519", "scheme": "ed25519",
            "keyval": {"public": hex_encode(ed.verifying_key().as_bytes())}}),
        ed25519_dalek::Signer::sign(&ed, &msg).to_bytes().to_vec(),
    ));

    {
        use p256::pkcs8::{EncodePublicKey, LineEnding};
        let ec = p256::ecdsa::SigningKey::from_bytes(&[7; 32].into()).unwrap();
        let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&ec, &msg);
        let pem = ec
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        cases.push((
            "ecdsa-sha2-nistp256".into(),
            json!({"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
                "keyval": {"public": pem}}),
            sig.to_der().as_bytes().to_vec(),
        ));
    }

    for (bits, pem) in [
        (2048, include_str!("../src/tuf/testdata/rsa-2048-a.key.pem")),
        (3072, include_str!("../src/tuf/testdata/rsa-3072.key.pem")),
    ] {
        use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
        let (k, public) = rsa_public(pem, "rsassa-pss-sha256");
        let sig = rsa::pss::SigningKey::<sha2::Sha256>::new(k.clone())
            .sign_with_rng(&mut rand_core::OsRng, &msg)
            .to_vec();
        cases.push((format!("rsa-{bits} rsassa-pss-sha256"), public, sig));
        let (k, public) = rsa_public(pem, "rsa-pkcs1v15-sha256");
        let sig = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k)
            .sign(&msg)
            .to_vec();
        cases.push((format!("rsa-{bits} rsa-pkcs1v15-sha256"), public, sig));
    }

    println!(
        "one signature over {} bytes of canonical JSON, N = {n}, µs",
        msg.len()
    );
    println!(
        "{:<30} {:>14} {:>9} {:>9} {:>16}",
        "key", "verify median", "min", "max", "parse key median"
    );
    for (name, public, sig) in cases {
        let key = PublicKey::from_json(&public, Role::Targets).unwrap();
        assert!(key.verify(&msg, &sig), "{name}");
        let verify = median_min_max(n, || {
            assert!(key.verify(std::hint::black_box(&msg), std::hint::black_box(&sig)));
        });
        let parse = median_min_max(n, || {
            std::hint::black_box(PublicKey::from_json(&public, Role::Targets).unwrap());
        });
        println!(
            "{name:<30} {:>14.1} {:>9.1} {:>9.1} {:>16.1}",
            verify.0, verify.1, verify.2, parse.0
        );
    }
}

/// Median, min and max of `n` timed runs of `f`, µs.
fn median_min_max(n: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[n / 2], times[0], times[n - 1])
}
