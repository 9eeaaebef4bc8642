//! Power-cut proof, after MCUboot's simulator (`run_perm_with_fails`): run a
//! whole update, cutting power after and in the middle of every flash
//! operation, reboot, let the lock carry on, and check that every boot starts
//! a verified image that is the old or the new one, and that the lock ends in
//! the right state.

use bootloader::boot::BootError;
use bootloader::envelope::Version;
use bootloader::layout::{Layout, SMALL};
use bootloader::sim::Cut;
use bootloader::updater::UpdateError;

use crate::common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Stage, request, swap, trial boot, self-test passes, confirm.
    Update,
    /// Stage, request, swap, trial boot, self-test fails: no confirm, revert.
    FailedTrial,
    /// Rotate the anchors from key 1 to key 2 (the running image is signed
    /// by both), then install an image signed by key 2 only and confirm.
    Rotation,
}

pub struct Images {
    old: Vec<u8>,
    new: Vec<u8>,
    rotation: Option<Vec<u8>>,
}

pub fn images(scenario: Scenario) -> Images {
    let (k1, k2) = (key(1), key(2));
    // 40 KiB + 1 KiB prefix: 11 of the 16 ACTIVE pages hold image bytes.
    let old_payload = payload(0x11, 40 * 1024);
    let new_payload = payload(0x22, 40 * 1024 + 123);
    match scenario {
        Scenario::Rotation => Images {
            old: envelope(&[&k1, &k2], Version::new(1, 0, 0), 1, &old_payload),
            new: envelope(&[&k2], Version::new(1, 1, 0), 2, &new_payload),
            rotation: Some(record(&set(2, 1, &[&k2]), &[&k1, &k2])),
        },
        _ => Images {
            old: envelope(&[&k1], Version::new(1, 0, 0), 1, &old_payload),
            new: envelope(&[&k1], Version::new(1, 1, 0), 2, &new_payload),
            rotation: None,
        },
    }
}

fn fresh(layout: Layout, img: &Images) -> Lock {
    Lock::factory(layout, anchors_of(&[&key(1)], 1), &img.old)
}

/// As [`fresh`], with the minimum and anchor version also in OTP when
/// `otp` (the reference board's configuration).
fn fresh_with(layout: Layout, img: &Images, otp: bool) -> Lock {
    let lock = fresh(layout, img);
    if otp { lock.with_otp() } else { lock }
}

fn lost(e: &UpdateError) -> bool {
    matches!(
        e,
        UpdateError::Flash(_) | UpdateError::Image(bootloader::EnvelopeError::Flash(_))
    )
}

/// Drive the lock until the scenario completes. Any power loss reboots it.
/// Returns whether the new image ran on trial, or the first violated invariant.
fn drive(lock: &mut Lock, img: &Images, scenario: Scenario) -> Result<bool, String> {
    let (old, new) = (digest_of(&img.old), digest_of(&img.new));
    let mut requested = false;
    let mut saw_trial = false;
    for _ in 0..40 {
        let report = match lock.boot() {
            Ok(r) => r,
            Err(_) if lock.dead() => {
                lock.reboot();
                continue;
            }
            Err(e) => return Err(format!("boot failed: {e}")),
        };
        let d = report.image.header().payload_sha256;
        if d != old && d != new {
            return Err("booted an image that is neither old nor new".into());
        }
        let is_new = d == new;
        if let Some(e) = report.rejected_update {
            return Err(format!("a valid update was rejected: {e}"));
        }
        // The application runs.
        let step: Result<bool, UpdateError> = match (scenario, is_new, report.trial) {
            (Scenario::Update | Scenario::Rotation, true, true) => {
                saw_trial = true;
                lock.updater().confirm().map(|_| false)
            }
            (Scenario::Update | Scenario::Rotation, true, false) => {
                if img.rotation.is_some() && report.anchors_version != 2 {
                    return Err(format!(
                        "new image runs under anchors {}",
                        report.anchors_version
                    ));
                }
                if report.min_security_counter != 2 {
                    return Err(format!(
                        "confirmed new image but minimum is {}",
                        report.min_security_counter
                    ));
                }
                return check_stable(lock, new, 2).map(|()| saw_trial);
            }
            (Scenario::FailedTrial, true, true) => {
                saw_trial = true;
                Ok(false) // self-test fails: reset without confirming
            }
            (Scenario::FailedTrial, true, false) => {
                return Err("unconfirmed image became permanent".into());
            }
            (_, false, true) => return Err("old image booted on trial".into()),
            (Scenario::FailedTrial, false, false) if requested => {
                if report.min_security_counter != 0 {
                    return Err("minimum rose without a confirm".into());
                }
                return check_stable(lock, old, 0).map(|()| saw_trial);
            }
            (_, false, false) => {
                let mut buf = vec![0u8; 4096];
                match &img.rotation {
                    Some(rec) if report.anchors_version < 2 => {
                        lock.updater().rotate_anchors(rec, &mut buf).map(|_| false)
                    }
                    _ => lock.stage_and_request(&img.new).map(|_| {
                        requested = true;
                        false
                    }),
                }
            }
        };
        match step {
            Ok(_) => {}
            Err(e) if lock.dead() && lost(&e) => {}
            Err(e) => return Err(format!("application step failed: {e}")),
        }
        lock.reboot();
    }
    Err("no final state after 40 boots".into())
}

/// One more reset must boot the same image, not on trial, same minimum.
fn check_stable(lock: &mut Lock, expect: [u8; 32], min: u32) -> Result<(), String> {
    lock.reboot();
    let r = lock.boot().map_err(|e| format!("final boot: {e}"))?;
    if r.image.header().payload_sha256 != expect || r.trial || r.min_security_counter != min {
        return Err(format!("unstable final state: {r:?}"));
    }
    let st = lock.updater().boot_state().map_err(|e| e.to_string())?;
    if st.pending.is_some() {
        return Err("pending install left behind".into());
    }
    Ok(())
}

/// Mutating flash operations and OTP programs of an uninterrupted run.
fn baseline(layout: Layout, img: &Images, scenario: Scenario, otp: bool) -> (u64, u64) {
    let mut lock = fresh_with(layout, img, otp);
    let before = lock.with_flash(|f| f.stats());
    let saw_trial = drive(&mut lock, img, scenario).expect("uninterrupted run");
    assert!(saw_trial, "{scenario:?}: the new image never ran on trial");
    let programs = lock.otp.as_ref().map_or(0, |o| o.programs());
    (
        lock.with_flash(|f| f.stats()).since(&before).mutating_ops(),
        programs,
    )
}

pub struct Sweep {
    pub survived: u64,
    pub total: u64,
    /// Cut points in OTP programs (included in `total`).
    pub otp_points: u64,
    pub failures: Vec<String>,
}

/// Cut power after, early in and half-way through every `stride`-th flash
/// operation of the scenario, and (with OTP) before and half-way through
/// every OTP row program.
pub fn sweep(layout: Layout, scenario: Scenario, stride: u64, otp: bool) -> Sweep {
    let img = images(scenario);
    let (ops, programs) = baseline(layout, &img, scenario, otp);
    let mut s = Sweep {
        survived: 0,
        total: 0,
        otp_points: 0,
        failures: vec![],
    };
    for n in 0..programs as u32 {
        for half in [false, true] {
            let mut lock = fresh_with(layout, &img, otp);
            if let Some(o) = &mut lock.otp {
                o.cut_after(n, half);
            }
            s.total += 1;
            s.otp_points += 1;
            match drive(&mut lock, &img, scenario) {
                Ok(_) => s.survived += 1,
                Err(e) => s
                    .failures
                    .push(format!("{scenario:?} OTP program {n} half {half}: {e}")),
            }
        }
    }
    for op in (1..=ops).step_by(stride as usize) {
        for cut in [Cut::After(op), Cut::During { op, done: 1 }, Cut::Midway(op)] {
            let mut lock = fresh_with(layout, &img, otp);
            lock.arm(cut);
            s.total += 1;
            match drive(&mut lock, &img, scenario) {
                Ok(_) => s.survived += 1,
                Err(e) => s.failures.push(format!("{scenario:?} {cut:?}: {e}")),
            }
        }
    }
    s
}

/// Run the sweeps of `cases` on `layout`, print each and the total, and
/// return (survived, total).
pub fn run_sweeps(layout: Layout, cases: &[(Scenario, bool)], stride: u64) -> (u64, u64) {
    let mut survived = 0;
    let mut total = 0;
    let mut failures = vec![];
    for &(scenario, otp) in cases {
        let s = sweep(layout, scenario, stride, otp);
        println!(
            "{:?} {scenario:?}{}: {} cut points ({} flash operations x after/torn-early/torn-midway{}), {} survived",
            layout.mode,
            if otp { " (OTP floors)" } else { "" },
            s.total,
            (s.total - s.otp_points) / 3,
            if otp {
                format!(", {} OTP programs x before/half-way", s.otp_points / 2)
            } else {
                String::new()
            },
            s.survived
        );
        survived += s.survived;
        total += s.total;
        failures.extend(s.failures);
    }
    println!(
        "{:?}: power-cut points survived: {survived} of {total}",
        layout.mode
    );
    for f in failures.iter().take(20) {
        println!("  {f}");
    }
    (survived, total)
}

#[test]
fn power_cut_at_every_flash_operation() {
    let (survived, total) = run_sweeps(
        SMALL,
        &[
            (Scenario::Update, false),
            (Scenario::FailedTrial, false),
            (Scenario::Update, true),
            (Scenario::FailedTrial, true),
            (Scenario::Rotation, true),
        ],
        1,
    );
    assert!(total > 600, "sweep too small: {total}");
    assert_eq!(survived, total);
}

#[test]
fn uninterrupted_runs_take_the_expected_paths() {
    let img = images(Scenario::Update);
    let mut lock = fresh(SMALL, &img);
    let r = lock.boot().unwrap();
    assert_eq!(r.image.header().security_counter, 1);
    assert!(!r.trial);
    lock.stage_and_request(&img.new).unwrap();
    let r = lock.boot().unwrap();
    assert!(r.trial, "new image boots on trial");
    assert_eq!(r.image.header().security_counter, 2);
    assert_eq!(
        r.min_security_counter, 0,
        "minimum must not rise before confirm"
    );
    // No confirm: reset reverts.
    let r = lock.boot().unwrap();
    assert!(r.reverted && !r.trial);
    assert_eq!(r.image.header().security_counter, 1);
    assert_eq!(r.min_security_counter, 0);
    // Try again and confirm.
    lock.stage_and_request(&img.new).unwrap();
    assert!(lock.boot().unwrap().trial);
    lock.updater().confirm().unwrap();
    let r = lock.boot().unwrap();
    assert!(!r.trial && !r.reverted);
    assert_eq!(r.min_security_counter, 2);
    // Now the old image is a rollback and is refused, even unverified by the app.
    lock.stage_unchecked(&img.old);
    let r = lock.boot().unwrap();
    assert!(matches!(
        r.rejected_update,
        Some(bootloader::EnvelopeError::SecurityCounterTooLow {
            image: 1,
            minimum: 2
        })
    ));
    assert_eq!(r.image.header().security_counter, 2);
    assert!(matches!(
        lock.stage_and_request(&img.old),
        Err(UpdateError::Image(
            bootloader::EnvelopeError::SecurityCounterTooLow { .. }
        ))
    ));
}

#[test]
fn staging_is_refused_while_a_trial_is_unconfirmed() {
    let img = images(Scenario::Update);
    let mut lock = fresh(SMALL, &img);
    lock.stage_and_request(&img.new).unwrap();
    assert!(lock.boot().unwrap().trial);
    assert_eq!(lock.stage(&img.new), Err(UpdateError::NotConfirmed));
}

#[test]
fn corrupted_active_with_no_way_back_is_not_booted() {
    let img = images(Scenario::Update);
    let mut lock = fresh(SMALL, &img);
    let at = lock.config.layout.active.offset as usize + 5000;
    lock.with_flash(|f| f.program_raw(at, &[0x00]));
    assert!(matches!(
        lock.boot(),
        Err(BootError::NoBootableImage(
            bootloader::EnvelopeError::DigestMismatch
        ))
    ));
}

/// The full sweep on the 4 MiB reference layout: the same 40 KiB images, but
/// embassy-boot swaps all 448 pages of ACTIVE, so every update has ~2,700
/// flash operations; one complete update per cut point, 24,570 in all
/// (about 3 minutes in release mode on 2 cores).
/// Run explicitly (set `NIGHTLATCH_STRIDE=k` to cut at every k-th operation):
/// `cargo test -p bootloader --release power_cut_reference -- --ignored --nocapture`.
#[test]
#[ignore = "long: full sweep on the reference layout"]
fn power_cut_reference_layout_every_kth_operation() {
    let stride = std::env::var("NIGHTLATCH_STRIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut survived = 0;
    let mut total = 0;
    for scenario in [Scenario::Update, Scenario::FailedTrial] {
        // The reference board keeps its floors in OTP.
        let s = sweep(bootloader::layout::REFERENCE, scenario, stride, true);
        for f in s.failures.iter().take(10) {
            println!("  {f}");
        }
        survived += s.survived;
        total += s.total;
    }
    println!(
        "reference layout, every operation with stride {stride}: power-cut points survived: {survived} of {total}"
    );
    assert_eq!(survived, total);
}
