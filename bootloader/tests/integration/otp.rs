//! Failing closed (issue 16): what a lock does when its boot records are
//! erased, corrupted or rolled back, and when its STATE claims a swap the
//! bootloader never approved. Each attack is run with the OTP floors and,
//! where the records alone used to decide, without them — so the tests
//! show the hole the OTP closes, not only that the lock boots.

use bootloader::BootError;
use bootloader::envelope::{EnvelopeError, Version};
use bootloader::layout::SMALL;
use bootloader::otp::{OtpCounters, ThermometerCounter};
use bootloader::sim::{Cut, SimOtp};

use crate::common::*;

fn otp_value(lock: &Lock, c: ThermometerCounter) -> u32 {
    let mut otp: SimOtp = lock.otp.clone().unwrap();
    c.read(&mut otp).unwrap()
}

/// Install `env` through the app API, boot it on trial, confirm, and boot
/// again so the bootloader settles it.
fn install(lock: &mut Lock, env: &[u8]) {
    lock.install(env);
}

/// A lock on release 1.0.0 (counter 1) that installed 2.0.0 (counter 5),
/// then lost both copies of its boot records; an old, validly signed 1.0.0
/// is then put in DFU and marked for swap. Returns what the next boot did.
fn erased_records_then_old_image(otp: bool) -> (Lock, bootloader::BootReport) {
    let k = key(1);
    let old = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
    let new = envelope(&[&k], Version::new(2, 0, 0), 5, &payload(2, 9000));
    let mut lock = Lock::factory(SMALL, anchors_of(&[&k], 1), &old);
    if otp {
        lock = lock.with_otp();
    }
    lock.boot().unwrap();
    install(&mut lock, &new);
    assert_eq!(lock.boot().unwrap().min_security_counter, 5);
    lock.erase_records();
    lock.stage_unchecked(&old);
    let r = lock.boot().unwrap();
    (lock, r)
}

#[test]
fn erased_records_cannot_lower_the_minimum_when_it_is_in_otp() {
    let (lock, r) = erased_records_then_old_image(true);
    assert_eq!(
        otp_value(&lock, OtpCounters::REFERENCE.min_security_counter),
        5
    );
    assert!(r.records_lost);
    assert_eq!(r.min_security_counter, 5, "the OTP minimum, not 0");
    assert!(matches!(
        r.rejected_update,
        Some(EnvelopeError::SecurityCounterTooLow {
            image: 1,
            minimum: 5
        })
    ));
    assert!(!r.trial);
    assert_eq!(r.image.header().security_counter, 5);

    // The hole this closes: with the minimum in flash records only, the
    // same attack installs the old release.
    let (_, r) = erased_records_then_old_image(false);
    assert_eq!(r.min_security_counter, 0);
    assert!(r.trial);
    assert_eq!(r.image.header().security_counter, 1);
}

/// A lock whose anchors were rotated from {compromised} (set 1) to
/// {replacement} (set 2); then its records are rolled back to the copy
/// saved before the rotation, or erased.
fn rotated_then(otp: bool, attack: impl Fn(&Lock, &[u8])) -> (Lock, Result<u32, BootError>) {
    let (mut lock, before) = rotated_lock(SMALL, otp);
    attack(&lock, &before);
    lock.stage_unchecked(&signed_by_removed_key());
    let r = lock.boot().map(|r| r.image.header().security_counter);
    (lock, r)
}

#[test]
fn rolled_back_or_erased_records_never_bring_back_a_rotated_out_key() {
    let rollback = |l: &Lock, before: &[u8]| l.restore_records(before);
    let erase = |l: &Lock, _: &[u8]| l.erase_records();
    for (name, attack) in [
        ("rolled back", &rollback as &dyn Fn(&Lock, &[u8])),
        ("erased", &erase),
    ] {
        let (lock, r) = rotated_then(true, attack);
        assert_eq!(
            otp_value(&lock, OtpCounters::REFERENCE.anchors_version),
            2,
            "{name}"
        );
        assert_eq!(
            r,
            Err(BootError::AnchorsRevoked {
                required: 2,
                genesis: 1
            }),
            "{name}: nothing boots rather than trusting set 1 again"
        );
        // Without OTP the old set is back and the attacker's image runs.
        let (_, r) = rotated_then(false, attack);
        assert_eq!(r, Ok(9), "{name}: the hole without OTP");
    }
}

#[test]
fn records_lost_before_any_rotation_boot_under_genesis_with_the_otp_minimum() {
    let k = key(1);
    let old = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
    let new = envelope(&[&k], Version::new(1, 1, 0), 3, &payload(3, 9000));
    let mut lock = Lock::factory(SMALL, anchors_of(&[&k], 1), &old).with_otp();
    lock.boot().unwrap();
    install(&mut lock, &new);
    lock.erase_records();
    let r = lock.boot().unwrap();
    assert!(r.records_lost);
    assert_eq!(
        (r.anchors_version, r.min_security_counter),
        (1, 3),
        "genesis anchors are still allowed (never rotated), the minimum is the OTP's"
    );
    assert_eq!(r.image.header().security_counter, 3);
    // A later install settles into a fresh record.
    let next = envelope(&[&k], Version::new(1, 2, 0), 4, &payload(4, 9000));
    install(&mut lock, &next);
    let r = lock.boot().unwrap();
    assert!(!r.records_lost);
    assert_eq!(r.min_security_counter, 4);
}

/// Mark DFU for swap as a compromised app could, then forge the progress
/// words so the STATE claims the swap is already under way.
fn forge_swap_in_progress(lock: &Lock, env: &[u8]) {
    lock.stage_unchecked(env);
    let state = lock.config.layout.state.offset as usize;
    // Word 2: embassy-boot's first progress word (word 1, the validity
    // marker, stays erased): programmed, it reads as "the first step of the
    // swap is done", and embassy-boot carries on from there.
    lock.with_flash(|f| f.program_raw(state + 8, &[0, 0, 0, 0]));
}

#[test]
fn a_forged_swap_in_progress_state_installs_nothing() {
    for otp in [false, true] {
        let k = key(1);
        let running = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
        // Validly signed, counter above the minimum: only the approval is
        // missing, so the pending record (and the rise of the minimum it
        // brings) would be skipped.
        let other = envelope(&[&k], Version::new(1, 5, 0), 6, &payload(6, 9000));
        let mut lock = Lock::factory(SMALL, anchors_of(&[&k], 1), &running);
        if otp {
            lock = lock.with_otp();
        }
        lock.boot().unwrap();
        let active_before = lock.active_bytes();
        forge_swap_in_progress(&lock, &other);
        let r = lock.boot().unwrap();
        assert!(r.unapproved, "otp {otp}");
        assert!(!r.trial && !r.reverted);
        assert_eq!(r.image.header().payload_sha256, digest_of(&running));
        assert_eq!(lock.active_bytes(), active_before, "no page moved");
        // And it stays that way: the next boots are ordinary.
        let r = lock.boot().unwrap();
        assert!(!r.unapproved && !r.trial);
        assert_eq!(r.image.header().security_counter, 1);
        // A real install still works afterwards.
        install(&mut lock, &other);
        assert_eq!(lock.boot().unwrap().min_security_counter, 6);
    }
}

#[test]
fn a_swap_whose_approval_was_lost_mid_move_is_reverted_not_run() {
    let k = key(1);
    let old = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 20_000));
    let new = envelope(&[&k], Version::new(1, 1, 0), 2, &payload(2, 20_000));
    let mut lock = Lock::factory(SMALL, anchors_of(&[&k], 1), &old);
    lock.boot().unwrap();
    lock.stage_and_request(&new).unwrap();
    // Power lost well inside the page moves (the approval record is the
    // first two operations).
    lock.arm(Cut::After(12));
    assert!(lock.boot().is_err());
    lock.reboot();
    // ACTIVE is half old, half new; and the approval is gone.
    lock.erase_records();
    let r = lock.boot().unwrap();
    assert!(r.unapproved);
    assert!(!r.trial);
    assert_eq!(
        r.image.header().payload_sha256,
        digest_of(&old),
        "the move is finished and taken back: the approved-by-nobody image never runs"
    );
    let r = lock.boot().unwrap();
    assert_eq!(r.image.header().security_counter, 1);
    assert!(!r.trial);
}

#[test]
fn the_otp_ratchet_survives_a_power_cut_at_every_otp_program() {
    // Settling an install raises the OTP minimum before the record; cut
    // each OTP program of that raise (nothing lands, or half its bits).
    for n in 0..3 {
        for half in [false, true] {
            let k = key(1);
            let old = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
            let new = envelope(&[&k], Version::new(1, 1, 0), 30, &payload(3, 9000));
            let mut lock = Lock::factory(SMALL, anchors_of(&[&k], 1), &old).with_otp();
            lock.boot().unwrap();
            lock.stage_and_request(&new).unwrap();
            assert!(lock.boot().unwrap().trial);
            lock.updater().confirm().unwrap();
            lock.otp.as_mut().unwrap().cut_after(n, half);
            let first = lock.boot();
            lock.otp.as_mut().unwrap().reboot();
            let r = lock.boot().unwrap();
            assert_eq!(r.min_security_counter, 30, "cut {n} half {half}: {first:?}");
            assert_eq!(r.image.header().security_counter, 30);
            assert_eq!(
                otp_value(&lock, OtpCounters::REFERENCE.min_security_counter),
                30
            );
        }
    }
}
