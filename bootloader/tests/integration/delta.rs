//! Delta patches: round trips (generated firmware-like releases and synthetic
//! cases), the streaming applier on simulated flash, resume after power cuts,
//! and hostile patches. Nothing here reads outside the repository.

use bootloader::delta::apply::{Applier, Progress};
use bootloader::delta::encode::{Control, EncodeOptions, apply_on_sim, encode};
use bootloader::delta::model::Model;
use bootloader::delta::{DeltaError, HEADER_LEN, PatchHeader};
use bootloader::envelope::{PREFIX_LEN, Version};
use bootloader::sim::XorShift as Rng;

use crate::common::*;

/// bidiff controls for two payloads (bidiff needs both non-empty).
pub fn controls(old: &[u8], new: &[u8]) -> Vec<Control> {
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
    bidiff::diff(old, new, &Default::default(), |m| tr.translate(m)).unwrap();
    tr.close().unwrap();
    out
}

/// A patch between two envelopes.
pub fn patch(old_env: &[u8], new_env: &[u8]) -> Vec<u8> {
    let (old, new) = (&old_env[PREFIX_LEN..], &new_env[PREFIX_LEN..]);
    encode(
        old,
        new,
        &controls(old, new),
        &old_env[..PREFIX_LEN],
        &new_env[..PREFIX_LEN],
        EncodeOptions::default(),
    )
    .unwrap()
}

/// Where the body starts.
fn body_offset(p: &[u8]) -> usize {
    let h: [u8; HEADER_LEN] = p[..HEADER_LEN].try_into().unwrap();
    PatchHeader::decode(&h).unwrap().body_offset() as usize
}

fn wrap(payload: &[u8], counter: u32) -> Vec<u8> {
    envelope(
        &[&key(1)],
        Version::new(1, counter as u16, 0),
        counter,
        payload,
    )
}

/// One piece of a generated function.
#[derive(Clone)]
enum Piece {
    /// Instruction bytes.
    Code(Vec<u8>),
    /// A 32-bit absolute address of another function (by index), as
    /// literal pools and call tables hold them.
    Ptr(usize),
    /// A 32-bit absolute address of a string (by index).
    Str(usize),
}

/// A firmware-like image: functions of instruction-like bytes (a small opcode
/// vocabulary, register fields, short immediates) with absolute pointers to
/// other functions and to strings, then a string table. Inserting or
/// removing a function moves everything after it, so every pointer past it
/// changes: the relocation churn that makes real release pairs hard to diff
/// and that the `../shared/firmware-corpus` pairs show. Generated, so the
/// tests need nothing outside the repository.
#[derive(Clone)]
struct Firmware {
    functions: Vec<Vec<Piece>>,
    strings: Vec<Vec<u8>>,
}

const LOAD_ADDRESS: u32 = 0x400D_0000;

impl Firmware {
    fn function(rng: &mut Rng, functions: usize, strings: usize) -> Vec<Piece> {
        // Opcodes of a made-up 2- and 3-byte ISA; a few dominate, as in code.
        const OPS: [u8; 16] = [
            0x06, 0x0C, 0x1C, 0x20, 0x21, 0x22, 0x28, 0x29, 0x32, 0x38, 0x3D, 0x42, 0x56, 0x66,
            0x82, 0xC0,
        ];
        let mut out = vec![];
        let mut code = vec![0x36, 0x41, 0x00]; // prologue
        for _ in 0..16 + rng.below(240) {
            match rng.below(24) {
                0 => {
                    out.push(Piece::Code(std::mem::take(&mut code)));
                    out.push(Piece::Ptr(rng.below(functions)));
                }
                1 => {
                    out.push(Piece::Code(std::mem::take(&mut code)));
                    out.push(Piece::Str(rng.below(strings)));
                }
                r => {
                    let op = OPS[(r * r + rng.below(3)) % OPS.len()];
                    code.push(op);
                    code.push((rng.below(8) as u8) << 4 | rng.below(4) as u8);
                    if op & 1 == 0 {
                        code.push(rng.below(32) as u8 * 4);
                    }
                }
            }
        }
        code.extend_from_slice(&[0x1D, 0xF0]); // return
        out.push(Piece::Code(code));
        out
    }

    fn string(rng: &mut Rng) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "lock", "bolt", "check-in", "update", "failed", "retry", "battery", "motor", "door",
            "open", "closed", "ble", "key", "%d", "%s", "timeout",
        ];
        let mut s: Vec<u8> = b"nl: ".to_vec();
        for i in 0..2 + rng.below(6) {
            if i > 0 {
                s.push(b' ');
            }
            s.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
        }
        s.push(0);
        s
    }

    fn new(seed: u64, functions: usize, strings: usize) -> Self {
        let mut rng = Rng(seed);
        Self {
            functions: (0..functions)
                .map(|_| Self::function(&mut rng, functions, strings))
                .collect(),
            strings: (0..strings).map(|_| Self::string(&mut rng)).collect(),
        }
    }

    /// The next release: `inserted` new functions and `edited` changed ones
    /// at random places, `removed` functions dropped (pointers to them now
    /// point at their successor), and a few strings changed.
    fn release(&self, seed: u64, inserted: usize, edited: usize, removed: usize) -> Self {
        let mut rng = Rng(seed);
        let mut next = self.clone();
        let (f, s) = (self.functions.len(), self.strings.len());
        for _ in 0..edited {
            let i = rng.below(next.functions.len());
            next.functions[i] = Self::function(&mut rng, f, s);
        }
        for _ in 0..inserted {
            let at = rng.below(next.functions.len());
            let body = Self::function(&mut rng, f, s);
            next.functions.insert(at, body);
        }
        for _ in 0..removed {
            let at = rng.below(next.functions.len());
            next.functions.remove(at);
        }
        let n = next.functions.len();
        for piece in next.functions.iter_mut().flatten() {
            if let Piece::Ptr(i) = piece {
                *i = (*i).min(n - 1);
            }
        }
        for _ in 0..s / 20 {
            let i = rng.below(s);
            next.strings[i] = Self::string(&mut rng);
        }
        next
    }

    fn bytes(&self) -> Vec<u8> {
        let size = |p: &Piece| match p {
            Piece::Code(c) => c.len(),
            Piece::Ptr(_) | Piece::Str(_) => 4,
        };
        let mut at = vec![];
        let mut len = 0;
        for f in &self.functions {
            at.push(len);
            len += f.iter().map(size).sum::<usize>();
            len = len.next_multiple_of(4);
        }
        let mut str_at = vec![];
        for s in &self.strings {
            str_at.push(len);
            len += s.len();
        }
        let address = |offset: usize| (LOAD_ADDRESS + offset as u32).to_le_bytes();
        let mut out = Vec::with_capacity(len);
        for f in &self.functions {
            for p in f {
                match p {
                    Piece::Code(c) => out.extend_from_slice(c),
                    Piece::Ptr(i) => out.extend_from_slice(&address(at[*i])),
                    Piece::Str(i) => out.extend_from_slice(&address(str_at[*i])),
                }
            }
            out.resize(out.len().next_multiple_of(4), 0);
        }
        for s in &self.strings {
            out.extend_from_slice(s);
        }
        out
    }
}

/// Release pairs of generated firmware (name, old, new, largest patch ÷ new
/// image accepted): a point release (a few edits, one new function; 330 KB)
/// and a feature release (dozens of edits, new and removed functions; 1.6 MB).
/// Measured: 4.99% and 6.99%; every pointer past an inserted function
/// changes, so most of each patch is add bytes, as on real firmware.
/// Figures on the real corpus come from the benchmark:
/// `nightlatch-sign bench-delta ../shared/firmware-corpus`.
fn firmware_like_releases() -> Vec<(&'static str, Vec<u8>, Vec<u8>, f64)> {
    let small = Firmware::new(0x5EED_0001, 800, 300);
    let large = Firmware::new(0x5EED_0002, 4000, 1500);
    vec![
        (
            "point release",
            small.bytes(),
            small.release(11, 1, 3, 0).bytes(),
            0.08,
        ),
        (
            "feature release",
            large.bytes(),
            large.release(12, 25, 60, 8).bytes(),
            0.10,
        ),
    ]
}

/// Every patch rebuilds its target byte for byte on the simulated lock, and
/// is a small fraction of the image.
#[test]
fn delta_round_trips_firmware_like_releases() {
    for (name, old, new, most) in firmware_like_releases() {
        let (o, n) = (wrap(&old, 1), wrap(&new, 2));
        let (oo, nn) = (&o[PREFIX_LEN..], &n[PREFIX_LEN..]);
        let (p, st) = bootloader::delta::encode::encode_with_stats(
            oo,
            nn,
            &controls(oo, nn),
            &o[..PREFIX_LEN],
            &n[..PREFIX_LEN],
            EncodeOptions::default(),
        )
        .unwrap();
        let ratio = p.len() as f64 / new.len() as f64;
        println!("{st:.0?}");
        println!(
            "{name}: {} -> {} bytes, patch {} bytes = {:.2}%",
            old.len(),
            new.len(),
            p.len(),
            100.0 * ratio
        );
        assert_ne!(old, new, "{name}");
        assert_eq!(apply_on_sim(&o, &p).unwrap(), n, "{name}");
        assert!(
            ratio < most,
            "{name}: patch is {:.2}% of the image",
            100.0 * ratio
        );
    }
}

/// Synthetic payloads: (name, old, new).
fn synthetic() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let base = payload(3, 150_000);
    let mut edited = base.clone();
    // Scattered byte edits, an insertion and a deletion.
    for i in (0..edited.len()).step_by(997) {
        edited[i] = edited[i].wrapping_add(4);
    }
    edited.splice(40_000..40_000, payload(9, 3000));
    edited.drain(90_000..92_000);
    vec![
        ("empty to empty", vec![], vec![]),
        ("empty to something", vec![], payload(5, 5000)),
        ("something to empty", payload(5, 5000), vec![]),
        ("identical", base.clone(), base.clone()),
        ("unrelated", payload(1, 70_000), payload(2, 80_000)),
        ("old longer", base.clone(), base[..100_000].to_vec()),
        ("old shorter", base[..100_000].to_vec(), edited.clone()),
        ("edited", base.clone(), edited),
    ]
}

#[test]
fn delta_round_trips_synthetic_cases() {
    for (name, old, new) in synthetic() {
        let (o, n) = (wrap(&old, 1), wrap(&new, 2));
        let p = patch(&o, &n);
        assert_eq!(apply_on_sim(&o, &p).unwrap(), n, "{name}");
    }
}

/// A patch carries only the signature entries its target uses, coded
/// against the base's prefix, and the applier puts the padding back: the
/// rebuilt envelope is the signed one, for one signature, every slot used,
/// and a target signed by other keys than its base.
#[test]
fn patches_carry_only_the_signatures_their_target_uses() {
    let old = payload(3, 40_000);
    let mut new = old.clone();
    new[1000] ^= 1;
    let o = wrap(&old, 1);
    let keys: Vec<_> = (1..=8).map(key).collect();
    for n_keys in [1usize, 2, 8] {
        let signers: Vec<_> = keys.iter().take(n_keys).collect();
        let n = envelope(&signers, Version::new(1, 2, 0), 2, &new);
        let p = patch(&o, &n);
        let code = body_offset(&p) - HEADER_LEN;
        // Same key as the base: only the changed header fields (version,
        // counter, digest) and the 64-byte signature are literals. Each
        // further key adds its key id and signature.
        let most = 2 + 36 + 8 + 96 * n_keys;
        assert!(code <= most, "{n_keys} signatures: {code} > {most} bytes");
        assert!(code >= 64 * n_keys, "{n_keys} signatures: {code} bytes");
        assert_eq!(usize::from(p[7] & 0x0F), n_keys);
        assert_eq!(apply_on_sim(&o, &p).unwrap(), n, "{n_keys} signatures");
    }
    // Base signed by two keys, target by one: the base's second entry is
    // not padding, and the rebuilt prefix must still be the target's.
    let o2 = envelope(&[&keys[0], &keys[1]], Version::new(1, 5, 0), 1, &old);
    let n1 = envelope(&[&keys[0]], Version::new(1, 2, 0), 2, &new);
    let p = patch(&o2, &n1);
    assert_eq!(apply_on_sim(&o2, &p).unwrap(), n1);
    let (_, rebuilt, _) = bootloader::delta::target_prefix(&p, &o2[..PREFIX_LEN]).unwrap();
    assert_eq!(rebuilt[..], n1[..PREFIX_LEN]);
    // The head is relative to that base envelope: against an envelope of
    // the same payload signed by another key it rebuilds another prefix
    // (whose signature then fails on the lock).
    let o3 = envelope(&[&keys[1]], Version::new(1, 5, 0), 1, &old);
    let (_, other, _) = bootloader::delta::target_prefix(&p, &o3[..PREFIX_LEN]).unwrap();
    assert_ne!(other[..], n1[..PREFIX_LEN]);
}

/// Where a delta test's lock starts: swap mode, or A/B running from slot B
/// (so the patch's base is B and its output A: nothing assumes slot A).
#[derive(Clone, Copy, Debug)]
enum Start {
    Swap,
    AbFromB,
}

impl Start {
    fn lock(self, image: &[u8]) -> Lock {
        let anchors = anchors_of(&[&key(1)], 1);
        match self {
            Self::Swap => Lock::factory(mid_layout(), anchors, image),
            Self::AbFromB => {
                Lock::factory_in_slot(mid_layout_ab(), anchors, bootloader::layout::Slot::B, image)
            }
        }
    }
}

/// [`mid_layout`] in A/B mode.
fn mid_layout_ab() -> bootloader::layout::Layout {
    bootloader::layout::Layout::new_ab(mid_sizes())
}

/// A lock with room for 200 KiB-class images (ACTIVE 256 KiB).
fn mid_layout() -> bootloader::layout::Layout {
    bootloader::layout::Layout::new(mid_sizes())
}

fn mid_sizes() -> bootloader::layout::Sizes {
    bootloader::layout::Sizes {
        flash_size: 1024 * 1024,
        sector: 4096,
        write_size: 4,
        bootloader: 8192,
        state: 8192,
        active: 256 * 1024,
        credentials: 16 * 1024,
        agent: 16 * 1024,
    }
}

fn pair_for_device() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (_, old, new) = synthetic().pop().unwrap();
    let (o, n) = (wrap(&old, 1), wrap(&new, 2));
    let p = patch(&o, &n);
    (o, n, p)
}

/// Feed `patch` from `from` in chunks whose sizes cycle through `sizes`.
fn feed(
    a: &mut Applier<'_, '_, Flash>,
    patch: &[u8],
    from: usize,
    sizes: &[usize],
) -> Result<Progress, DeltaError> {
    let mut at = from;
    let mut i = 0;
    let mut last = Progress::NeedMore;
    while at < patch.len() {
        let n = sizes[i % sizes.len()].min(patch.len() - at);
        last = a.feed(&patch[at..at + n])?;
        at += n;
        i += 1;
    }
    Ok(last)
}

#[test]
fn the_device_applier_streams_any_chunk_size_and_the_lock_installs_the_result() {
    let (o, n, p) = pair_for_device();
    let whole = [p.len()];
    let cases = [&[1usize][..], &[7, 1, 300], &[1460], &[65_536], &whole]
        .map(|sizes| (Start::Swap, sizes))
        .into_iter()
        .chain([(Start::AbFromB, &[1460usize][..])]);
    for (start, sizes) in cases {
        let mut lock = start.lock(&o);
        lock.boot().unwrap();
        let active = lock.running_bytes();
        let staging = lock.staging_offset();
        let mut model = Box::new(Model::new());
        let mut up = lock.updater();
        let mut a = Applier::new(&mut up, &mut model).unwrap();
        assert_eq!(
            feed(&mut a, &p, 0, sizes).unwrap(),
            Progress::Rebuilt,
            "{sizes:?}"
        );
        let img = a.verify().unwrap();
        assert_eq!(img.header().security_counter, 2);
        let _ = a;
        let got = lock.raw(staging, n.len());
        assert_eq!(got, n, "DFU holds the target bit for bit ({start:?})");
        assert_eq!(lock.running_bytes(), active, "ACTIVE untouched");
        let mut buf = vec![0u8; 4096];
        up.request_install(&mut buf).unwrap();
        let _ = up;
        let r = lock.boot().unwrap();
        assert!(r.trial);
        assert_eq!(r.image.header().payload_sha256, digest_of(&n));
    }
}

#[test]
fn wrong_base_is_a_distinct_error_and_writes_nothing() {
    let (_, n, p) = pair_for_device();
    let other = wrap(&payload(99, 150_000), 1);
    let lock = Lock::factory(mid_layout(), anchors_of(&[&key(1)], 1), &other);
    let before = lock.with_flash(|f| f.stats());
    let mut model = Box::new(Model::new());
    let mut up = lock.updater();
    let mut a = Applier::new(&mut up, &mut model).unwrap();
    assert_eq!(a.feed(&p), Err(DeltaError::BaseMismatch));
    assert_eq!(a.feed(&p[..10]), Err(DeltaError::Poisoned));
    let _ = a;
    let after = lock.with_flash(|f| f.stats());
    assert_eq!(
        after.mutating_ops(),
        before.mutating_ops(),
        "nothing written"
    );
    assert_ne!(lock.raw(lock.config.layout.dfu.offset, 16), n[..16]);
}

/// Apply a hostile patch on a fresh lock. It must fail cleanly, or (when the
/// damage did not change what decodes, e.g. a flipped bit of the coder's final
/// padding) rebuild exactly the real target; nothing else is ever
/// installable, and ACTIVE and everything outside DFU stay as they were.
fn outcome(p: &[u8]) -> Result<(), DeltaError> {
    let (o, n, _) = pair_for_device();
    let mut lock = Lock::factory(mid_layout(), anchors_of(&[&key(1)], 1), &o);
    lock.boot().unwrap();
    let l = lock.config.layout;
    let outside = |lock: &Lock| {
        let all = lock.raw(0, l.flash_size as usize);
        let mut v = all[..l.dfu.offset as usize].to_vec();
        v.extend_from_slice(&all[l.dfu.end() as usize..]);
        v
    };
    let before = outside(&lock);
    let mut model = Box::new(Model::new());
    let err = {
        let mut up = lock.updater();
        let mut a = Applier::new(&mut up, &mut model).unwrap();
        let r = feed(&mut a, p, 0, &[333]);
        match r {
            Err(e) => Err(e),
            Ok(Progress::NeedMore) => Err(a.finish().unwrap_err()),
            Ok(Progress::Rebuilt) => a.verify().map(|_| ()),
        }
    };
    if err.is_ok() {
        let dfu = lock.raw(l.dfu.offset, n.len());
        assert_eq!(
            dfu, n,
            "a damaged patch verified as something other than the target"
        );
    }
    assert_eq!(outside(&lock), before, "flash outside DFU changed");
    assert_eq!(
        lock.updater().firmware_state().unwrap(),
        embassy_boot::State::Boot
    );
    let r = lock.boot().unwrap();
    assert_eq!(r.image.header().security_counter, 1);
    err
}

fn refused(p: &[u8]) -> DeltaError {
    outcome(p).expect_err("a damaged patch was accepted")
}

#[test]
fn corrupted_truncated_and_oversized_patches_are_refused_cleanly() {
    let (_, _, p) = pair_for_device();
    let body = body_offset(&p);
    // Corrupted body bytes.
    for at in [body, body + 5, body + 1000, p.len() / 2, p.len() - 1] {
        let mut t = p.clone();
        t[at] ^= 0x10;
        if let Err(e) = outcome(&t) {
            assert!(
                matches!(e, DeltaError::Corrupt(_) | DeltaError::TargetDigestMismatch),
                "byte {at}: {e:?}"
            );
        }
    }
    // Mostly the damage is caught (not all of the last four bytes matter).
    let caught = (body..p.len() - 4)
        .step_by(1009)
        .filter(|&at| {
            let mut t = p.clone();
            t[at] ^= 0x10;
            outcome(&t).is_err()
        })
        .count();
    assert_eq!(caught, (body..p.len() - 4).step_by(1009).count());
    // Corrupted prefix code: a literal (the signature or the digest no
    // longer verifies), a run length, or its length in the header.
    for at in [
        HEADER_LEN,
        HEADER_LEN + 1,
        HEADER_LEN + 5,
        HEADER_LEN + 60,
        body - 1,
    ] {
        let mut t = p.clone();
        t[at] ^= 0x01;
        refused(&t);
    }
    for delta in [-1i32, 1] {
        let mut t = p.clone();
        let c = u16::from_le_bytes([t[24], t[25]]) as i32 + delta;
        t[24..26].copy_from_slice(&(c as u16).to_le_bytes());
        refused(&t);
    }
    for c in [0u16, 1025, u16::MAX] {
        let mut t = p.clone();
        t[24..26].copy_from_slice(&c.to_le_bytes());
        assert_eq!(refused(&t), DeltaError::BadHeader, "code length {c}");
    }
    // Truncated anywhere.
    for len in [
        0,
        20,
        HEADER_LEN,
        HEADER_LEN + 50,
        body,
        body + 100,
        p.len() - 1,
    ] {
        let e = refused(&p[..len]);
        assert!(
            matches!(e, DeltaError::Truncated | DeltaError::Corrupt(_)),
            "len {len}: {e:?}"
        );
    }
    // A header claiming huge lengths.
    let mut t = p.clone();
    t[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(refused(&t), DeltaError::TargetTooLarge { .. }));
    let mut t = p.clone();
    t[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(refused(&t), DeltaError::BaseMismatch);
    // Another base digest.
    let mut t = p.clone();
    t[12] ^= 1;
    assert_eq!(refused(&t), DeltaError::BaseMismatch);
    // A target length that is not the signed one.
    let mut t = p.clone();
    t[20] ^= 1;
    refused(&t);
    // An unknown transform; no signatures, more than the envelope holds, or
    // more than the prefix code covers.
    let mut t = p.clone();
    t[7] |= 0xF0;
    assert_eq!(refused(&t), DeltaError::UnsupportedParameters);
    for n in [0u8, 9] {
        let mut t = p.clone();
        t[7] = (t[7] & 0xF0) | n;
        assert_eq!(refused(&t), DeltaError::BadHeader, "{n} signatures");
    }
    let mut t = p.clone();
    t[7] = (t[7] & 0xF0) | 2;
    assert!(matches!(
        refused(&t),
        DeltaError::BadTargetPrefix(_) | DeltaError::Corrupt(_)
    ));
    let mut t = p.clone();
    t[26..30].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        refused(&t),
        DeltaError::Truncated | DeltaError::Corrupt(_)
    ));
    // Trailing bytes.
    let mut t = p.clone();
    t.extend_from_slice(&[0; 10]);
    assert_eq!(refused(&t), DeltaError::TrailingData);
    // Not a patch at all.
    assert_eq!(refused(&[0xEE; 2000]), DeltaError::BadMagic);
}

/// Cut power at flash operation `cut` of an apply, reboot, resume (or start
/// over without a checkpoint) and check the result. Returns whether the
/// resume used a checkpoint.
fn cut_and_resume(
    start: Start,
    o: &[u8],
    n: &[u8],
    p: &[u8],
    cut: bootloader::sim::Cut,
) -> Result<bool, String> {
    let mut lock = start.lock(o);
    lock.boot().unwrap();
    let active = lock.running_bytes();
    let staging = lock.staging_offset();
    lock.arm(cut);
    let mut model = Box::new(Model::new());
    {
        let mut up = lock.updater();
        let mut a = Applier::new(&mut up, &mut model).unwrap();
        match feed(&mut a, p, 0, &[1460]) {
            Ok(Progress::Rebuilt) => return Err("power cut never happened".into()),
            Ok(Progress::NeedMore) => return Err("incomplete".into()),
            Err(_) if lock.dead() => {}
            Err(e) => return Err(format!("unexpected error {e:?}")),
        }
    }
    lock.reboot();
    let mut up = lock.updater();
    let resumed;
    let r = match Applier::resume(&mut up, &mut model) {
        Ok(mut a) => {
            resumed = true;
            let from = a.patch_offset() as usize;
            feed(&mut a, p, from, &[1460]).map(|r| (r, a.verify()))
        }
        Err(DeltaError::NoCheckpoint) => {
            resumed = false;
            let mut a = Applier::new(&mut up, &mut model).unwrap();
            feed(&mut a, p, 0, &[1460]).map(|r| (r, a.verify()))
        }
        Err(e) => return Err(format!("resume failed: {e:?}")),
    };
    match r {
        Ok((Progress::Rebuilt, Ok(_))) => {}
        other => return Err(format!("after resume: {other:?}")),
    }
    let _ = up;
    if lock.raw(staging, n.len()) != n {
        return Err("DFU differs from the target".into());
    }
    if lock.running_bytes() != active {
        return Err("ACTIVE changed".into());
    }
    Ok(resumed)
}

fn apply_sweep(start: Start, stride: usize) -> (usize, usize, Vec<String>) {
    let (o, n, p) = pair_for_device();
    apply_sweep_of(start, stride, &o, &n, &p)
}

fn apply_sweep_of(
    start: Start,
    stride: usize,
    o: &[u8],
    n: &[u8],
    p: &[u8],
) -> (usize, usize, Vec<String>) {
    // Baseline: which operations are there, and which write checkpoints?
    let mut lock = start.lock(o);
    lock.boot().unwrap();
    let staging_end = lock.staging_offset() + lock.config.layout.dfu.size;
    lock.with_flash(|f| f.record_ops());
    let mut model = Box::new(Model::new());
    {
        let mut up = lock.updater();
        let mut a = Applier::new(&mut up, &mut model).unwrap();
        assert_eq!(feed(&mut a, p, 0, &[1460]).unwrap(), Progress::Rebuilt);
    }
    let l = lock.config.layout;
    let scratch = staging_end - l.sector;
    let ops = lock.with_flash(|f| f.recorded().to_vec());
    let checkpoint_ops: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.erase && r.offset >= scratch)
        .map(|(i, _)| i + 1)
        .collect();
    assert!(
        checkpoint_ops.len() >= 3,
        "{} checkpoint writes",
        checkpoint_ops.len()
    );
    let first_block_checkpoint = checkpoint_ops[1]; // [0] is the header record
    let mut points: Vec<usize> = (1..=ops.len()).step_by(stride).collect();
    for &c in &checkpoint_ops {
        points.extend([c - 1, c, c + 1]);
    }
    points.sort_unstable();
    points.dedup();
    let (mut ok, mut total, mut failures) = (0, 0, vec![]);
    for &op in points.iter().filter(|&&op| op >= 1 && op <= ops.len()) {
        for cut in [
            bootloader::sim::Cut::After(op as u64),
            bootloader::sim::Cut::Midway(op as u64),
        ] {
            total += 1;
            match cut_and_resume(start, o, n, p, cut) {
                Ok(resumed) if op > first_block_checkpoint && !resumed => {
                    failures.push(format!("{cut:?}: restarted from zero despite a checkpoint"))
                }
                Ok(_) => ok += 1,
                Err(e) => failures.push(format!("{cut:?}: {e}")),
            }
        }
    }
    println!(
        "delta apply ({start:?}): {} flash operations, {} checkpoint writes; power-cut points survived: {ok} of {total}",
        ops.len(),
        checkpoint_ops.len()
    );
    (ok, total, failures)
}

/// CI-sized: every 9th flash operation of the apply, plus the operations
/// around every checkpoint write, each cut after and half-way through.
#[test]
fn power_cut_during_delta_apply_resumes_to_the_exact_image() {
    for start in [Start::Swap, Start::AbFromB] {
        let (ok, total, failures) = apply_sweep(start, 9);
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(ok, total);
    }
}

/// Every flash operation of the apply. Run explicitly:
/// `cargo test -p bootloader --release power_cut_delta_full -- --ignored --nocapture`.
#[test]
#[ignore = "long: every flash operation of a delta apply"]
fn power_cut_delta_full_sweep() {
    for start in [Start::Swap, Start::AbFromB] {
        let (ok, total, failures) = apply_sweep(start, 1);
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(ok, total);
    }
}

/// A code-like image for `t`'s instruction set: random bytes with a call
/// every 16 bytes to one of the function starts (every 256 bytes), and the
/// next release with a 256-byte function inserted at 32 KiB, every call
/// re-pointed at its callee's new place.
fn code_release(t: u8) -> (Vec<u8>, Vec<u8>) {
    use bootloader::delta::transform::{Insn, THUMB2, XTENSA};
    let mut x = 0x9E37_79B9u32 ^ u32::from(t);
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    const LEN: usize = 64 * 1024;
    const AT: usize = 32 * 1024;
    const INS: usize = 256;
    let mut old: Vec<u8> = (0..LEN).map(|_| rnd() as u8).collect();
    let mut new = old[..AT].to_vec();
    new.extend((0..INS).map(|_| rnd() as u8));
    new.extend_from_slice(&old[AT..]);
    let moved = |p: usize| if p >= AT { p + INS } else { p };
    for pc in (0..LEN - 4).step_by(16) {
        let callee = (rnd() as usize % (LEN / 256)) * 256;
        let (insn, opcode) = match t {
            XTENSA => (Insn::XtensaCall, 0x25u8), // CALL8
            THUMB2 => (Insn::ThumbBranch, 0),
            _ => unreachable!(),
        };
        let mut w = match t {
            XTENSA => [opcode, 0, 0, 0],
            _ => [0x00, 0xF0, 0x00, 0xF8], // BL
        };
        insn.set_field(&mut w, insn.field_for(opcode, pc as i64, callee as i64));
        let n = insn.width();
        old[pc..pc + n].copy_from_slice(&w[..n]);
        let f = insn.field_for(opcode, moved(pc) as i64, moved(callee) as i64);
        insn.set_field(&mut w, f);
        new[moved(pc)..moved(pc) + n].copy_from_slice(&w[..n]);
    }
    (old, new)
}

/// Every transform rebuilds every image exactly, whatever instruction set
/// the image really has (only the size differs); on code of its own
/// instruction set a transform makes a smaller patch than plain, and
/// the encoder left to choose picks it.
#[test]
fn transforms_round_trip_on_any_instruction_set() {
    use bootloader::delta::transform::{ALL, THUMB2, XTENSA, name};
    let data = synthetic().pop().unwrap();
    let images = [
        ("xtensa code", XTENSA, code_release(XTENSA)),
        ("thumb-2 code", THUMB2, code_release(THUMB2)),
        ("data", 0, (data.1, data.2)),
    ];
    for (what, isa, (old, new)) in images {
        let (o, n) = (wrap(&old, 1), wrap(&new, 2));
        let (oo, nn) = (&o[PREFIX_LEN..], &n[PREFIX_LEN..]);
        let ctl = controls(oo, nn);
        let mut sizes = [0usize; 3];
        for t in ALL {
            let opts = EncodeOptions {
                transform: Some(t),
                ..EncodeOptions::default()
            };
            let p = encode(oo, nn, &ctl, &o[..PREFIX_LEN], &n[..PREFIX_LEN], opts).unwrap();
            assert_eq!(p[7] >> 4, t);
            assert_eq!(apply_on_sim(&o, &p).unwrap(), n, "{what} with {}", name(t));
            sizes[usize::from(t)] = p.len();
        }
        println!("{what}: {sizes:?} (plain, xtensa, thumb2)");
        let best = encode(
            oo,
            nn,
            &ctl,
            &o[..PREFIX_LEN],
            &n[..PREFIX_LEN],
            EncodeOptions::default(),
        )
        .unwrap();
        assert_eq!(best.len(), *sizes.iter().min().unwrap(), "{what}");
        if isa != 0 {
            let (own, plain) = (sizes[usize::from(isa)], sizes[0]);
            // The 256 inserted random bytes cost the same either way.
            assert!(
                own * 10 < plain * 9,
                "{what}: {own} bytes with its transform, {plain} plain"
            );
            assert_eq!(best[7] >> 4, isa, "{what}");
        }
    }
}

/// A transform patch survives power cuts like a plain one: resume from a
/// checkpoint (models, including the learned target moves, restart at each
/// block) rebuilds the exact image, in both boot modes.
#[test]
fn power_cut_during_a_transform_patch_resumes_exactly() {
    use bootloader::delta::transform::THUMB2;
    let (old, new) = code_release(THUMB2);
    let (o, n) = (wrap(&old, 1), wrap(&new, 2));
    let (oo, nn) = (&o[PREFIX_LEN..], &n[PREFIX_LEN..]);
    let opts = EncodeOptions {
        block_log2: 13,
        ..EncodeOptions::default()
    };
    let p = encode(
        oo,
        nn,
        &controls(oo, nn),
        &o[..PREFIX_LEN],
        &n[..PREFIX_LEN],
        opts,
    )
    .unwrap();
    assert_eq!(p[7] >> 4, THUMB2);
    for start in [Start::Swap, Start::AbFromB] {
        let (ok, total, failures) = apply_sweep_of(start, 7, &o, &n, &p);
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(ok, total);
    }
}
