//! Envelope parsing and verification on arbitrary bytes must never panic.
//! What parses must re-encode to the same bytes; what verifies must have the
//! exact length its header claims (only the unmodified, validly signed seeds
//! can verify). The same bytes also go to the rotation-record parser and to
//! in-flash verification on the simulator.

#![no_main]

use std::sync::OnceLock;

use bootloader::anchors::TrustAnchors;
use bootloader::envelope::{HardwareModel, Policy, Prefix, verify_bytes, verify_in_flash};
use bootloader::sim::{Erased, SimFlash};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use libfuzzer_sys::fuzz_target;

fn anchors() -> &'static TrustAnchors {
    static A: OnceLock<TrustAnchors> = OnceLock::new();
    A.get_or_init(|| {
        // The public key of the seed corpus's signing key (all-0x07 secret).
        let public = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes();
        TrustAnchors::new(1, 1, &[public]).expect("valid anchor")
    })
}

fuzz_target!(|data: &[u8]| {
    let model = HardwareModel::new("nl-pico2w-r1").expect("valid model");
    let policy = Policy {
        anchors: anchors(),
        model: Some(&model),
        min_security_counter: 0,
        max_payload_len: 64 * 1024,
    };
    if let Ok(p) = Prefix::parse(data) {
        // Whatever parses must re-encode to the same prefix bytes.
        let again = Prefix::encode(&p.header, p.signatures()).expect("re-encode");
        assert_eq!(&again[..], &data[..again.len()]);
    }
    if let Ok(img) = verify_bytes(data, &policy) {
        assert_eq!(u64::from(img.header().payload_len) + 1024, data.len() as u64);
    }
    let _ = anchors().rotate(data);

    let mut flash = SimFlash::<4, 4096>::new(72 * 1024, Erased::Ones);
    let n = data.len().min(flash.capacity()) & !3;
    if n > 0 {
        let _ = flash.write(0, &data[..n]);
    }
    let mut buf = [0u8; 4096];
    let _ = verify_in_flash(&mut flash, &mut buf, &policy);
});
