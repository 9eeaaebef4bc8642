//! The agent's staging of a delta patch on the NOR simulator (issue 13): the
//! patch is downloaded whole into DFU's patch area and checked against the
//! SHA-256 the verified metadata lists before a single byte of it reaches
//! the delta applier. A patch that differs from the listed hash — even one
//! that would rebuild the right image — is refused before the applier
//! writes anything; a genuine patch is staged, and both its download and
//! its application resume after resets.
//!
//! The staging plan is written straight into the agent state, as a check-in
//! verified against the director and the image repository would leave it
//! (those checks have their own tests in `../tests/tests/`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use bootloader::TrustAnchors;
use bootloader::anchors::key_id;
use bootloader::boot::{BootConfig, Bootloader, SharedFlash};
use bootloader::delta::encode::{Control, EncodeOptions, apply_on_sim, encode};
use bootloader::delta::{HEADER_LEN, MAX_HEAD_LEN};
use bootloader::envelope::{HardwareModel, Header, PREFIX_LEN, Prefix, SignatureEntry, Version};
use bootloader::layout::{Layout, SMALL, SMALL_AB, Slot};
use bootloader::sim::{Cut, Erased, OpRecord, SimFlash};
use ed25519_dalek::{Signer, SigningKey};
use embassy_sync::blocking_mutex::Mutex;
use lock_app::agent::{
    self, Agent, AgentConfig, AgentError, Hardware, Net, NetError, Phase, Repo, SelfTestFailure,
    StageStatus, Staging, State, TargetRef,
};
use lock_app::tuf::{FetchError, MemoryStore, MetadataStore, hex_encode};
use sha2::{Digest, Sha256};

type Flash = SimFlash<4, 4096>;

const MODEL: &str = "nl-test";
const IMAGE_PATH: &str = "nl-test/v2.nlfw";
const PATCH_PATH: &str = "nl-test/v1-v2.nldp";
const LAYOUT: Layout = SMALL;

fn envelope(key: &SigningKey, version: Version, counter: u32, payload: &[u8]) -> Vec<u8> {
    let h = Header {
        model: HardwareModel::new(MODEL).unwrap(),
        version,
        security_counter: counter,
        payload_len: payload.len() as u32,
        payload_sha256: Sha256::digest(payload).into(),
    };
    let hb = h.encode();
    let sig = SignatureEntry {
        key_id: key_id(&key.verifying_key().to_bytes()),
        signature: key.sign(&hb).to_bytes(),
    };
    let mut out = Prefix::encode(&h, &[sig]).unwrap().to_vec();
    out.extend_from_slice(payload);
    out
}

/// Firmware-like bytes: v1, and v2 = v1 with every fifth byte changed (a
/// patch of several 4 KiB ranges).
fn payloads() -> (Vec<u8>, Vec<u8>) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    };
    let v1: Vec<u8> = (0..30_000).map(|_| next()).collect();
    let mut v2 = v1.clone();
    for i in (0..v2.len()).step_by(5) {
        v2[i] ^= next() | 1;
    }
    (v1, v2)
}

/// What the tests stage: two signed envelopes, the genuine patch between
/// them (4 KiB blocks, so the applier checkpoints every 4 KiB of output),
/// and a tampered patch: one byte of the body changed where the arithmetic
/// decoder does not look, so it still rebuilds v2 exactly, but its SHA-256
/// is not the listed one.
struct Release {
    key: SigningKey,
    v1: Vec<u8>,
    v2: Vec<u8>,
    patch: Vec<u8>,
    tampered: Vec<u8>,
}

fn release() -> Release {
    let key = SigningKey::from_bytes(&[9; 32]);
    let (p1, p2) = payloads();
    let v1 = envelope(&key, Version::new(1, 0, 0), 1, &p1);
    let v2 = envelope(&key, Version::new(1, 1, 0), 2, &p2);
    let controls = [Control {
        add: p2.len(),
        copy: 0,
        seek: 0,
    }];
    let opts = EncodeOptions {
        block_log2: 12,
        ..EncodeOptions::default()
    };
    let patch = encode(
        &p1,
        &p2,
        &controls,
        &v1[..PREFIX_LEN],
        &v2[..PREFIX_LEN],
        opts,
    )
    .unwrap();
    assert_eq!(apply_on_sim(&v1, &patch).unwrap(), v2);
    let mut tampered = patch.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert_ne!(Sha256::digest(&tampered), Sha256::digest(&patch));
    // Otherwise a valid patch for the base: it rebuilds v2 bit for bit.
    assert_eq!(apply_on_sim(&v1, &tampered).unwrap(), v2);
    assert!(patch.len() > MAX_HEAD_LEN + 4 * HEADER_LEN);
    Release {
        key,
        v1,
        v2,
        patch,
        tampered,
    }
}

fn target(path: &str, bytes: &[u8], version: &str, counter: u32) -> TargetRef {
    TargetRef {
        name: path.into(),
        length: bytes.len() as u64,
        sha256: hex_encode(&Sha256::digest(bytes)),
        path: path.into(),
        version: version.into(),
        security_counter: counter,
    }
}

/// The radio: serves target byte ranges, records them, and drops the
/// connection after `budget` range requests.
#[derive(Default)]
struct TestNet {
    files: BTreeMap<String, Vec<u8>>,
    budget: Option<u32>,
    ranges: Vec<(String, u64, u32)>,
}

impl Net for TestNet {
    fn check_in(&mut self, _: &str, _: &[u8], _: &str, _: u64) -> Result<Vec<u8>, NetError> {
        Err(NetError::Unreachable)
    }
    fn fetch_metadata(&mut self, _: Repo, _: &str, _: u64) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::NotFound)
    }
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        if let Some(b) = self.budget.as_mut() {
            if *b == 0 {
                return Err(FetchError::Other);
            }
            *b -= 1;
        }
        let file = self.files.get(path).ok_or(FetchError::NotFound)?;
        self.ranges.push((path.into(), offset, len));
        let start = (offset as usize).min(file.len());
        let end = (start + len as usize).min(file.len());
        Ok(file[start..end].to_vec())
    }
}

struct Board(bool);

impl Hardware for Board {
    fn now(&self) -> u64 {
        1_800_000_000
    }
    fn set_time(&mut self, _: u64) {}
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(7);
    }
    fn battery_percent(&self) -> u8 {
        90
    }
    fn self_test(&mut self) -> Result<(), SelfTestFailure> {
        if self.0 {
            Err(SelfTestFailure::Motor)
        } else {
            Ok(())
        }
    }
}

/// A lock running v1 whose agent has planned v2 through the patch.
struct Lock {
    flash: SharedFlash<Flash>,
    config: BootConfig,
    files: MemoryStore,
    net: TestNet,
    self_test_fails: bool,
}

impl Lock {
    fn new(r: &Release, served_patch: &[u8]) -> Self {
        Self::with_layout(r, served_patch, LAYOUT)
    }

    fn with_layout(r: &Release, served_patch: &[u8], layout: Layout) -> Self {
        let mut sim = Flash::new(layout.flash_size as usize, Erased::Ones);
        sim.program_raw(layout.active.offset as usize, &r.v1);
        let config = BootConfig {
            model: HardwareModel::new(MODEL).unwrap(),
            genesis: TrustAnchors::new(1, 1, &[r.key.verifying_key().to_bytes()]).unwrap(),
            layout,
        };
        let flash = Mutex::new(RefCell::new(sim));
        let mut buf = vec![0u8; 4096];
        Bootloader::new(&flash, config)
            .unwrap()
            .boot(&mut buf)
            .unwrap();
        let mut files = MemoryStore::default();
        files.store(agent::KEY_FILE, &[0x44; 32]).unwrap();
        let state = State {
            staging: Some(Staging {
                image: target(IMAGE_PATH, &r.v2, "1.1.0", 2),
                patch: Some(target(PATCH_PATH, &r.patch, "1.1.0", 0)),
                phase: Phase::Patch,
                offset: 0,
                patch_offset: 0,
                patch_started: false,
                policy: Default::default(),
                patch_fallback: None,
            }),
            ..State::default()
        };
        files
            .store(agent::STATE_FILE, &serde_json::to_vec(&state).unwrap())
            .unwrap();
        let mut net = TestNet::default();
        net.files.insert(IMAGE_PATH.into(), r.v2.clone());
        net.files.insert(PATCH_PATH.into(), served_patch.to_vec());
        Self {
            flash,
            config,
            files,
            net,
            self_test_fails: false,
        }
    }

    /// Reset: the bootloader runs.
    fn boot(&self) -> bootloader::BootReport {
        self.with_flash(|f| f.reboot());
        let mut buf = vec![0u8; 4096];
        Bootloader::new(&self.flash, self.config)
            .unwrap()
            .boot(&mut buf)
            .unwrap()
    }

    fn agent(&mut self) -> Agent<'_, Flash, &mut MemoryStore, &mut TestNet, Board> {
        let mut c = AgentConfig::new("lock-1");
        c.chunk = 4096;
        Agent::open(
            &self.flash,
            self.config,
            &mut self.files,
            &mut self.net,
            Board(self.self_test_fails),
            c,
        )
        .unwrap()
    }

    fn with_flash<R>(&self, f: impl FnOnce(&mut Flash) -> R) -> R {
        self.flash.lock(|c| f(&mut c.borrow_mut()))
    }

    fn raw(&self, offset: u32, len: u32) -> Vec<u8> {
        self.with_flash(|f| f.contents()[offset as usize..(offset + len) as usize].to_vec())
    }

    fn active(&self) -> Vec<u8> {
        self.raw(LAYOUT.active.offset, LAYOUT.active.size)
    }

    fn recorded(&self) -> Vec<OpRecord> {
        self.with_flash(|f| f.recorded().to_vec())
    }
}

fn round_up(n: u64) -> u32 {
    (n.div_ceil(u64::from(LAYOUT.sector)) * u64::from(LAYOUT.sector)) as u32
}

/// Flash operations that touch `[start, start + len)`.
fn touching(ops: &[OpRecord], start: u32, len: u32) -> Vec<OpRecord> {
    ops.iter()
        .copied()
        .filter(|o| o.offset < start + len && start < o.offset + o.len)
        .collect()
}

#[test]
fn patch_not_matching_its_listed_hash_never_reaches_the_applier() {
    let r = release();
    let mut lock = Lock::new(&r, &r.tampered);
    let active_before = lock.active();
    lock.with_flash(|f| f.record_ops());

    // Stage until the agent is done with the patch.
    let mut statuses = Vec::new();
    for _ in 0..64 {
        let mut a = lock.agent();
        let st = a.stage(1).unwrap();
        let phase = a.state().staging.as_ref().unwrap().phase;
        statuses.push(st);
        if phase != Phase::Patch {
            break;
        }
    }
    let a = lock.agent();
    let staging = a.state().staging.clone().unwrap();
    drop(a);
    assert_eq!(
        staging.patch_fallback.as_deref(),
        Some("patch_hash_mismatch"),
        "{statuses:?}"
    );
    assert_eq!(staging.phase, Phase::Full);

    // What the patch phase wrote: only the received bytes, in the patch
    // area at the top of DFU's image area. Nothing where the image is
    // rebuilt, no applier checkpoint, nothing in ACTIVE.
    let ops = lock.recorded();
    let dfu = LAYOUT.dfu;
    let image_area = round_up(r.v2.len() as u64);
    assert!(!ops.is_empty());
    assert_eq!(
        touching(&ops, dfu.offset, image_area),
        vec![],
        "DFU image area"
    );
    let scratch = dfu.offset + dfu.size - LAYOUT.sector;
    assert_eq!(
        touching(&ops, scratch, LAYOUT.sector),
        vec![],
        "checkpoints"
    );
    assert_eq!(
        touching(&ops, LAYOUT.active.offset, LAYOUT.active.size),
        vec![],
        "ACTIVE"
    );
    let patch_area = dfu.offset + LAYOUT.active.size - round_up(r.patch.len() as u64);
    assert!(
        ops.iter()
            .all(|o| o.offset >= patch_area && o.offset + o.len <= scratch),
        "{ops:?}"
    );
    assert_eq!(lock.active(), active_before);

    // The lock goes on with the full image and stages v2.
    let mut a = lock.agent();
    let mut st = a.stage(100).unwrap();
    while st != StageStatus::Staged {
        assert!(matches!(st, StageStatus::Downloading { .. }), "{st:?}");
        st = a.stage(100).unwrap();
    }
    drop(a);
    assert_eq!(lock.raw(dfu.offset, r.v2.len() as u32), r.v2);
    assert_eq!(lock.active(), active_before);
}

#[test]
fn genuine_patch_is_staged_and_both_its_download_and_its_application_resume() {
    let r = release();
    let mut lock = Lock::new(&r, &r.patch);
    let active_before = lock.active();
    let chunks = r.patch.len().div_ceil(4096) as u32;
    assert!(
        chunks >= 2,
        "the patch must span several ranges: {}",
        r.patch.len()
    );

    // The connection drops after the first range: a reset, then the
    // download resumes with a Range request from where it stopped.
    lock.net.budget = Some(1);
    assert_eq!(lock.agent().stage(100), Err(AgentError::Network));
    assert_eq!(
        lock.agent().state().staging.as_ref().unwrap().patch_offset,
        4096
    );
    lock.net.budget = None;
    lock.with_flash(|f| f.reboot());
    // Every range but the last, one per call: still downloading.
    for _ in 1..chunks - 1 {
        assert!(matches!(
            lock.agent().stage(1),
            Ok(StageStatus::Downloading { .. })
        ));
    }

    // The last range completes the download; the patch is checked and the
    // applier starts in the same call. Power is cut in the middle of it.
    lock.with_flash(|f| {
        f.record_ops();
        f.arm(Cut::After(24));
    });
    assert!(matches!(lock.agent().stage(1), Err(AgentError::Flash(_))));
    let staging = lock.agent().state().staging.clone().unwrap();
    assert!(staging.patch_started && staging.patch_offset == r.patch.len() as u64);
    let cut_ops = lock.recorded();
    let first_block_checkpoint = LAYOUT.dfu.offset + LAYOUT.dfu.size - LAYOUT.sector;
    assert!(
        touching(&cut_ops, first_block_checkpoint, LAYOUT.sector).len() >= 3,
        "the cut lands after a few checkpoints: {cut_ops:?}"
    );

    // Reset: the applier resumes from its checkpoint (DFU's first sectors
    // are not rebuilt again), nothing is downloaded again.
    lock.with_flash(|f| {
        f.reboot();
        f.record_ops();
    });
    let fetched_before = lock.net.ranges.len();
    assert_eq!(lock.agent().stage(1), Ok(StageStatus::Staged));
    assert_eq!(lock.net.ranges.len(), fetched_before);
    let resumed_ops = lock.recorded();
    assert_eq!(
        touching(&resumed_ops, LAYOUT.dfu.offset, 4096),
        vec![],
        "resumed, not restarted"
    );

    let a = lock.agent();
    let staging = a.state().staging.clone().unwrap();
    drop(a);
    assert_eq!(staging.phase, Phase::Staged);
    assert_eq!(staging.patch_fallback, None);
    assert_eq!(lock.raw(LAYOUT.dfu.offset, r.v2.len() as u32), r.v2);
    assert_eq!(lock.active(), active_before);
    // The patch, once, and not a byte of the image.
    let bytes: u64 = lock
        .net
        .ranges
        .iter()
        .map(|(p, _, l)| {
            assert_eq!(p, PATCH_PATH);
            u64::from(*l)
        })
        .sum();
    assert_eq!(bytes, r.patch.len() as u64);
    let offsets: Vec<u64> = lock.net.ranges.iter().map(|(_, o, _)| *o).collect();
    let expected: Vec<u64> = (0..u64::from(chunks)).map(|i| i * 4096).collect();
    assert_eq!(offsets, expected);
}

/// The agent's whole install in both boot modes: a patch staged into the
/// idle bank, the request, the trial boot, the self-test and confirm — and
/// a failed self-test that the bootloader reverts and the agent reports.
#[test]
fn the_agent_installs_confirms_and_reverts_in_swap_and_ab_modes() {
    let r = release();
    for layout in [SMALL, SMALL_AB] {
        for fails in [false, true] {
            let what = format!("{:?}, self-test fails: {fails}", layout.mode);
            let mut lock = Lock::with_layout(&r, &r.patch, layout);
            let running_before = lock.raw(layout.active.offset, r.v1.len() as u32);
            let mut status = lock.agent().stage(100);
            for _ in 0..10 {
                if status == Ok(StageStatus::Staged) {
                    break;
                }
                status = lock.agent().stage(100);
            }
            assert_eq!(status, Ok(StageStatus::Staged), "{what}");
            lock.agent().install().unwrap();
            let boot = lock.boot();
            assert!(boot.trial, "{what}");
            assert_eq!(boot.image.header().security_counter, 2);
            let expect_slot = match layout.mode {
                bootloader::layout::BootMode::Swap => Slot::A,
                bootloader::layout::BootMode::Ab => Slot::B,
            };
            assert_eq!(boot.slot, expect_slot, "{what}");
            lock.self_test_fails = fails;
            let outcome = lock.agent().after_boot().unwrap();
            let boot = lock.boot();
            if fails {
                assert!(
                    matches!(outcome, agent::BootOutcome::SelfTestFailed(_)),
                    "{what}: {outcome:?}"
                );
                assert!(boot.reverted && !boot.trial, "{what}");
                assert_eq!(boot.slot, Slot::A);
                assert_eq!(boot.image.header().security_counter, 1);
                assert_eq!(
                    lock.raw(layout.active.offset, r.v1.len() as u32),
                    running_before,
                    "{what}: the old image is whole"
                );
                let outcome = lock.agent().after_boot().unwrap();
                assert!(
                    matches!(outcome, agent::BootOutcome::Reverted { .. }),
                    "{what}: {outcome:?}"
                );
                let last = lock.agent().state().last_update.clone().unwrap();
                assert_eq!(last.outcome, agent::wire::Outcome::RolledBack, "{what}");
            } else {
                assert!(
                    matches!(outcome, agent::BootOutcome::Confirmed { .. }),
                    "{what}: {outcome:?}"
                );
                assert!(!boot.trial && !boot.reverted, "{what}");
                assert_eq!(boot.slot, expect_slot);
                assert_eq!(boot.min_security_counter, 2, "{what}");
                assert_eq!(lock.agent().running().unwrap().version, "1.1.0");
            }
        }
    }
}
