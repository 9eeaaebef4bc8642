//! Every tampering is refused, and none panics: in memory (`verify_bytes`)
//! and on the lock (the bootloader refuses a bad swap request and boots the
//! current image).

use bootloader::envelope::{
    EnvelopeError, FORMAT_VERSION, HEADER_LEN, PREFIX_LEN, Policy, Prefix, SignatureEntry, Version,
    verify_bytes,
};
use bootloader::layout::SMALL;
use bootloader::{TrustAnchors, anchors::key_id};
use ed25519_dalek::Signer;

use crate::common::*;

fn policy(anchors: &TrustAnchors) -> Policy<'_> {
    static MODEL_NAME: std::sync::OnceLock<bootloader::HardwareModel> = std::sync::OnceLock::new();
    Policy {
        anchors,
        model: Some(MODEL_NAME.get_or_init(model)),
        min_security_counter: 3,
        max_payload_len: 1 << 20,
    }
}

fn good() -> (Vec<u8>, TrustAnchors) {
    let k = key(1);
    let env = envelope(&[&k], Version::new(2, 0, 1), 3, &payload(7, 5000));
    (env, anchors_of(&[&k], 1))
}

#[test]
fn the_untampered_envelope_verifies() {
    let (env, anchors) = good();
    let img = verify_bytes(&env, &policy(&anchors)).unwrap();
    assert_eq!(img.header().version, Version::new(2, 0, 1));
    assert_eq!(img.signers(), 1);
}

#[test]
fn every_header_and_signature_byte_flipped_is_refused() {
    let (env, anchors) = good();
    let p = policy(&anchors);
    for i in 0..PREFIX_LEN {
        for mask in [0x01u8, 0x80, 0xFF] {
            let mut t = env.clone();
            t[i] ^= mask;
            assert!(
                verify_bytes(&t, &p).is_err(),
                "byte {i} ^ {mask:#x} accepted"
            );
        }
    }
}

#[test]
fn payload_bytes_flipped_truncated_or_extended_are_refused() {
    let (env, anchors) = good();
    let p = policy(&anchors);
    for i in (PREFIX_LEN..env.len())
        .step_by(97)
        .chain([PREFIX_LEN, env.len() - 1])
    {
        let mut t = env.clone();
        t[i] ^= 0x01;
        assert_eq!(
            verify_bytes(&t, &p),
            Err(EnvelopeError::DigestMismatch),
            "payload byte {i}"
        );
    }
    for len in (0..env.len()).step_by(61) {
        assert!(verify_bytes(&env[..len], &p).is_err(), "truncated to {len}");
    }
    let mut longer = env.clone();
    longer.push(0);
    assert!(matches!(
        verify_bytes(&longer, &p),
        Err(EnvelopeError::LengthMismatch { .. })
    ));
}

#[test]
fn wrong_keys_model_counter_and_format_are_refused() {
    let k1 = key(1);
    let outsider = key(9);
    let anchors = anchors_of(&[&k1, &key(2)], 1);
    let p = policy(&anchors);
    let body = payload(3, 3000);

    // A key outside the anchors.
    let env = envelope(&[&outsider], Version::new(1, 0, 0), 3, &body);
    assert_eq!(
        verify_bytes(&env, &p),
        Err(EnvelopeError::ThresholdNotMet {
            valid: 0,
            required: 1
        })
    );

    // The wrong key claiming an anchor's key id.
    let h = header(MODEL, Version::new(1, 0, 0), 3, &body);
    let forged = SignatureEntry {
        key_id: key_id(&public(&k1)),
        signature: outsider.sign(&h.encode()).to_bytes(),
    };
    let mut env = Prefix::encode(&h, &[forged]).unwrap().to_vec();
    env.extend_from_slice(&body);
    assert!(matches!(
        verify_bytes(&env, &p),
        Err(EnvelopeError::ThresholdNotMet { .. })
    ));

    // Another hardware model, properly signed.
    let h = header("nl-other-board", Version::new(1, 0, 0), 3, &body);
    let env = envelope_with(&h, &[&k1], &body);
    assert_eq!(verify_bytes(&env, &p), Err(EnvelopeError::WrongModel));

    // A lower security counter, properly signed (rollback).
    let env = envelope(&[&k1], Version::new(9, 0, 0), 2, &body);
    assert_eq!(
        verify_bytes(&env, &p),
        Err(EnvelopeError::SecurityCounterTooLow {
            image: 2,
            minimum: 3
        })
    );

    // An unknown format version, properly signed.
    let h = header(MODEL, Version::new(1, 0, 0), 3, &body);
    let mut hb = h.encode();
    hb[4..6].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let mut env = Prefix::encode(
        &h,
        &[SignatureEntry {
            key_id: key_id(&public(&k1)),
            signature: k1.sign(&hb).to_bytes(),
        }],
    )
    .unwrap()
    .to_vec();
    env[..HEADER_LEN].copy_from_slice(&hb);
    env.extend_from_slice(&body);
    assert_eq!(
        verify_bytes(&env, &p),
        Err(EnvelopeError::UnsupportedFormat(FORMAT_VERSION + 1))
    );
}

#[test]
fn thresholds_count_distinct_anchor_keys() {
    let (k1, k2, k3) = (key(1), key(2), key(3));
    let anchors = anchors_of(&[&k1, &k2, &k3], 2);
    let p = policy(&anchors);
    let body = payload(1, 100);
    let one = envelope(&[&k1], Version::new(1, 0, 0), 3, &body);
    assert_eq!(
        verify_bytes(&one, &p),
        Err(EnvelopeError::ThresholdNotMet {
            valid: 1,
            required: 2
        })
    );
    let two = envelope(&[&k1, &k3], Version::new(1, 0, 0), 3, &body);
    assert_eq!(verify_bytes(&two, &p).unwrap().signers(), 2);
    // The same key twice is refused outright.
    let h = header(MODEL, Version::new(1, 0, 0), 3, &body);
    let s = SignatureEntry {
        key_id: key_id(&public(&k1)),
        signature: k1.sign(&h.encode()).to_bytes(),
    };
    assert_eq!(
        Prefix::encode(&h, &[s, s]),
        Err(EnvelopeError::DuplicateSignature)
    );
    let mut dup = two.clone();
    let second = HEADER_LEN + 4 + 96;
    dup.copy_within(HEADER_LEN + 4..second, second);
    assert_eq!(
        verify_bytes(&dup, &p),
        Err(EnvelopeError::DuplicateSignature)
    );
}

#[test]
fn a_huge_claimed_length_is_refused_before_reading() {
    let (env, anchors) = good();
    let mut t = env.clone();
    t[52..56].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        verify_bytes(&t, &policy(&anchors)),
        Err(EnvelopeError::PayloadTooLarge { .. })
    ));
}

#[test]
fn random_bytes_never_panic() {
    let (env, anchors) = good();
    let p = policy(&anchors);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..20_000 {
        let mut t = if round % 2 == 0 {
            env[..PREFIX_LEN + 64].to_vec()
        } else {
            vec![0; 1100]
        };
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % t.len();
            t[i] = (x >> 32) as u8;
        }
        let _ = Prefix::parse(&t);
        let _ = verify_bytes(&t, &p);
    }
}

#[test]
fn the_bootloader_refuses_a_tampered_request_and_boots_the_current_image() {
    let k = key(1);
    let old = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
    let new = envelope(&[&k], Version::new(1, 1, 0), 2, &payload(2, 9000));
    let header_and_sigs = (0..HEADER_LEN + 4 + 96).step_by(3);
    let payload_bytes = [PREFIX_LEN, PREFIX_LEN + 4500, new.len() - 1];
    for i in header_and_sigs.chain(payload_bytes) {
        let mut lock = Lock::factory(SMALL, anchors_of(&[&k], 1), &old);
        let before = lock.active_bytes();
        let mut bad = new.clone();
        bad[i] ^= 0x20;
        lock.stage_unchecked(&bad);
        let r = lock.boot().unwrap();
        assert!(
            r.rejected_update.is_some(),
            "byte {i}: tampered image approved"
        );
        assert!(!r.trial);
        assert_eq!(r.image.header().security_counter, 1);
        assert_eq!(lock.active_bytes(), before, "ACTIVE changed");
        // The request was cleared: the next boot is ordinary.
        let r = lock.boot().unwrap();
        assert_eq!(r.rejected_update, None);
        assert_eq!(
            lock.updater().firmware_state().unwrap(),
            embassy_boot::State::Boot
        );
    }
}
