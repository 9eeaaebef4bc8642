//! The streaming delta applier on arbitrary patch bytes, in arbitrary chunks:
//! it must never panic, never write outside the DFU bank, and never rebuild
//! anything but the real target. Half the inputs are whole patches; the
//! other half keep a valid header and target prefix (so the ACTIVE digest
//! check passes) and fuzz the arithmetic-coded body.

#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use bootloader::anchors::{TrustAnchors, key_id};
use bootloader::boot::BootConfig;
use bootloader::delta::apply::{Applier, Progress};
use bootloader::delta::encode::{Control, EncodeOptions, encode};
use bootloader::delta::model::Model;
use bootloader::delta::{HEADER_LEN, PatchHeader};
use bootloader::envelope::{HardwareModel, Header, PREFIX_LEN, Prefix, SignatureEntry, Version};
use bootloader::layout::SMALL;
use bootloader::sim::{Erased, SimFlash};
use bootloader::updater::Updater;
use ed25519_dalek::{Signer, SigningKey};
use embassy_sync::blocking_mutex::Mutex;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

struct Fixture {
    old: Vec<u8>,
    new: Vec<u8>,
    patch: Vec<u8>,
    anchors: TrustAnchors,
}

fn envelope(key: &SigningKey, payload: &[u8], counter: u32) -> Vec<u8> {
    let h = Header {
        model: HardwareModel::new("nl-pico2w-r1").expect("model"),
        version: Version::new(1, 0, counter as u16),
        security_counter: counter,
        payload_len: payload.len() as u32,
        payload_sha256: Sha256::digest(payload).into(),
    };
    let s = SignatureEntry {
        key_id: key_id(&key.verifying_key().to_bytes()),
        signature: key.sign(&h.encode()).to_bytes(),
    };
    let mut e = Prefix::encode(&h, &[s]).expect("prefix").to_vec();
    e.extend_from_slice(payload);
    e
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = SigningKey::from_bytes(&[7; 32]);
        let old: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut new = old.clone();
        for i in (0..new.len()).step_by(101) {
            new[i] = new[i].wrapping_add(3);
        }
        let (o, n) = (envelope(&key, &old, 1), envelope(&key, &new, 2));
        let ctl = [Control { add: new.len(), copy: 0, seek: 0 }];
        let patch = encode(&old, &new, &ctl, &o[..PREFIX_LEN], &n[..PREFIX_LEN], EncodeOptions { block_log2: 12, max_chain: 8, ..Default::default() })
            .expect("patch");
        let anchors = TrustAnchors::new(1, 1, &[key.verifying_key().to_bytes()]).expect("anchors");
        Fixture { old: o, new: n, patch, anchors }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let fx = fixture();
    let patch = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let head: [u8; HEADER_LEN] = fx.patch[..HEADER_LEN].try_into().expect("header");
        let body = PatchHeader::decode(&head).expect("header").body_offset() as usize;
        let mut p = fx.patch[..body].to_vec();
        p[26..30].copy_from_slice(&(rest.len() as u32).to_le_bytes());
        p.extend_from_slice(rest);
        p
    };
    let mut sim = SimFlash::<4, 4096>::new(SMALL.flash_size as usize, Erased::Ones);
    sim.program_raw(SMALL.active.offset as usize, &fx.old);
    let before = sim.contents().to_vec();
    let flash = Mutex::new(RefCell::new(sim));
    let config = BootConfig {
        model: HardwareModel::new("nl-pico2w-r1").expect("model"),
        genesis: fx.anchors,
        layout: SMALL,
    };
    let mut up = Updater::new(&flash, config).expect("updater");
    let mut model = Box::new(Model::new());
    let chunk = 1 + usize::from(mode >> 1);
    let mut rebuilt = false;
    {
        let mut a = Applier::new(&mut up, &mut model).expect("applier");
        for c in patch.chunks(chunk) {
            match a.feed(c) {
                Ok(Progress::Rebuilt) => rebuilt = a.verify().is_ok(),
                Ok(Progress::NeedMore) => {}
                Err(_) => break,
            }
        }
    }
    let after = flash.lock(|f| f.borrow().contents().to_vec());
    let (d0, d1) = (SMALL.dfu.offset as usize, SMALL.dfu.end() as usize);
    assert!(before[..d0] == after[..d0] && before[d1..] == after[d1..], "wrote outside DFU");
    if rebuilt {
        assert_eq!(&after[d0..d0 + fx.new.len()], &fx.new[..], "verified something else");
    }
});
