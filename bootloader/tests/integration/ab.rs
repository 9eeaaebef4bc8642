//! A/B mode (issue 16): the install maps a slot instead of copying one.
//! Power cuts at every flash and OTP operation, the attacks on records and
//! STATE, images that do not belong in a slot, and the execution window.

use bootloader::boot::named_slot_byte;
use bootloader::envelope::{EnvelopeError, PREFIX_LEN, Version};
use bootloader::layout::{BootMode, REFERENCE_AB, SMALL_AB, Slot};
use bootloader::sim::xip::XipWindow;
use bootloader::updater::UpdateError;

use crate::common::*;
use crate::power_cut::{Scenario, run_sweeps};

/// Install `env` through the app API; the slot it runs from.
fn install(lock: &mut Lock, env: &[u8]) -> Slot {
    lock.install(env).slot
}

/// What an attacker with flash access does: put `env` into `slot`, mark the
/// request with embassy-boot's magic and name `named` (or nothing).
fn forge_request(lock: &Lock, env: &[u8], slot: Slot, named: Option<Slot>) {
    let l = lock.config.layout;
    let p = l.slot(slot);
    lock.with_flash(|f| {
        embedded_storage::nor_flash::NorFlash::erase(f, p.offset, p.end()).unwrap();
        f.program_raw(p.offset as usize, env);
    });
    lock.mark_updated_raw();
    if let Some(n) = named {
        let at = l.state.offset as usize + 8;
        lock.with_flash(|f| f.program_raw(at, &[named_slot_byte(n); 4]));
    }
}

#[test]
fn power_cut_at_every_flash_and_otp_operation_in_ab_mode() {
    let (survived, total) = run_sweeps(
        SMALL_AB,
        &[
            (Scenario::Update, false),
            (Scenario::FailedTrial, false),
            (Scenario::Update, true),
            (Scenario::FailedTrial, true),
            (Scenario::Rotation, true),
        ],
        1,
    );
    assert!(total > 300, "sweep too small: {total}");
    assert_eq!(survived, total);
}

/// The same on the 4 MiB reference A/B layout. Run explicitly:
/// `cargo test -p bootloader --release power_cut_reference_ab -- --ignored --nocapture`.
#[test]
#[ignore = "long: full sweep on the reference A/B layout"]
fn power_cut_reference_ab_layout_every_operation() {
    let (survived, total) = run_sweeps(
        REFERENCE_AB,
        &[
            (Scenario::Update, true),
            (Scenario::FailedTrial, true),
            (Scenario::Rotation, true),
        ],
        1,
    );
    assert_eq!(survived, total);
}

#[test]
fn an_install_maps_the_other_slot_and_copies_nothing() {
    let k = key(1);
    let v1 = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 30_000));
    let v2 = envelope(&[&k], Version::new(1, 1, 0), 2, &payload(2, 30_000));
    let v3 = envelope(&[&k], Version::new(1, 2, 0), 3, &payload(3, 30_000));
    let mut lock = Lock::factory(SMALL_AB, anchors_of(&[&k], 1), &v1).with_otp();
    assert_eq!(lock.config.layout.mode, BootMode::Ab);
    let r = lock.boot().unwrap();
    assert_eq!((r.slot, r.trial), (Slot::A, false));

    // Staging writes slot B; the running slot A is never touched.
    let a_before = lock.running_bytes();
    lock.stage_and_request(&v2).unwrap();
    assert_eq!(lock.raw(lock.config.layout.dfu.offset, v2.len()), v2);
    let before = lock.with_flash(|f| f.stats());
    let r = lock.boot().unwrap();
    let cost = lock.with_flash(|f| f.stats()).since(&before);
    assert_eq!((r.slot, r.trial), (Slot::B, true), "{r:?}");
    assert_eq!(r.min_security_counter, 0, "no rise before the confirm");
    // One record write at install time, into the sector the request
    // erased beforehand: no erase, nothing written in a slot.
    assert_eq!(cost.sectors_erased, 0, "{cost:?}");
    assert!(cost.bytes_written < 512, "{cost:?}");

    // The execution window shows slot B's image.
    let mut w = XipWindow::for_layout(&lock.config.layout);
    w.map(&lock.config.layout, r.slot);
    let mut head = vec![0u8; 64];
    w.read(&lock.flash, w.base, &mut head).unwrap();
    assert_eq!(head, v2[..64]);

    // No confirm: the next reset maps A again, at the price of one record
    // write and one STATE erase (the trial image prepared the record
    // sector, as the lock agent does before its self-test).
    lock.updater().prepare_records().unwrap();
    let before = lock.with_flash(|f| f.stats());
    let r = lock.boot().unwrap();
    let cost = lock.with_flash(|f| f.stats()).since(&before);
    assert_eq!((r.slot, r.trial, r.reverted), (Slot::A, false, true));
    assert_eq!(cost.sectors_erased, 1, "{cost:?}");
    assert_eq!(lock.running_bytes(), a_before);
    let r = lock.boot().unwrap();
    assert!(!r.reverted && !r.trial, "the revert is reported once");

    // Again, confirmed: B becomes the confirmed slot, the minimum rises.
    assert_eq!(install(&mut lock, &v2), Slot::B);
    let r = lock.boot().unwrap();
    assert_eq!((r.slot, r.min_security_counter), (Slot::B, 2));
    // The next install goes into A (the base of a delta is B).
    assert_eq!(lock.staging_offset(), lock.config.layout.active.offset);
    assert_eq!(install(&mut lock, &v3), Slot::A);
    assert_eq!(lock.boot().unwrap().min_security_counter, 3);
}

#[test]
fn confirm_then_a_new_request_without_a_reset_promotes_then_installs() {
    let k = key(1);
    let v1 = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
    let v2 = envelope(&[&k], Version::new(1, 1, 0), 2, &payload(2, 9000));
    let v3 = envelope(&[&k], Version::new(1, 2, 0), 3, &payload(3, 9000));
    let mut lock = Lock::factory(SMALL_AB, anchors_of(&[&k], 1), &v1);
    lock.boot().unwrap();
    lock.stage_and_request(&v2).unwrap();
    assert!(lock.boot().unwrap().trial);
    lock.updater().confirm().unwrap();
    // Still running v2 from B: the next image is staged into A.
    lock.stage_and_request(&v3).unwrap();
    let r = lock.boot().unwrap();
    assert_eq!((r.slot, r.trial), (Slot::A, true));
    assert_eq!(r.image.header().security_counter, 3);
    assert_eq!(r.min_security_counter, 2, "v2 was confirmed on the way");
}

#[test]
fn records_lost_the_otp_still_refuses_an_older_image_and_the_newer_slot_boots() {
    let k = key(1);
    let old = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
    let new = envelope(&[&k], Version::new(2, 0, 0), 5, &payload(2, 9000));
    let mut lock = Lock::factory(SMALL_AB, anchors_of(&[&k], 1), &old).with_otp();
    lock.boot().unwrap();
    assert_eq!(install(&mut lock, &new), Slot::B);
    // Records erased, then a forged request for the old image in A.
    lock.erase_records();
    forge_request(&lock, &old, Slot::A, Some(Slot::A));
    let r = lock.boot().unwrap();
    assert!(r.records_lost);
    assert_eq!(r.min_security_counter, 5, "the OTP minimum");
    assert_eq!(
        r.slot,
        Slot::B,
        "the slot that verifies with the higher counter"
    );
    assert_eq!(r.image.header().security_counter, 5);
    assert!(matches!(
        r.rejected_update,
        Some(EnvelopeError::SecurityCounterTooLow {
            image: 1,
            minimum: 5
        })
    ));
    // Records corrupted (one bit of each copy) behave the same.
    let l = lock.config.layout.boot_records;
    lock.with_flash(|f| {
        f.program_raw(l.offset as usize + 100, &[0x00]);
        f.program_raw(l.offset as usize + 4096 + 100, &[0x00]);
    });
    let r = lock.boot().unwrap();
    assert_eq!((r.slot, r.min_security_counter), (Slot::B, 5));
}

#[test]
fn rolled_back_or_erased_records_never_bring_back_a_rotated_out_key_in_ab_mode() {
    for erase in [false, true] {
        let (mut lock, before) = rotated_lock(SMALL_AB, true);
        // With the records intact, an image signed by the removed key only
        // is refused and the lock keeps its image.
        let evil = signed_by_removed_key();
        let idle = lock.updater().running_slot().unwrap().other();
        forge_request(&lock, &evil, idle, Some(idle));
        let r = lock.boot().unwrap();
        assert!(r.rejected_update.is_some(), "{r:?}");
        assert_eq!(r.image.header().security_counter, 2);
        // Records rolled back to set 1, or erased: nothing boots rather than
        // trusting set 1 again.
        if erase {
            lock.erase_records();
        } else {
            lock.restore_records(&before);
        }
        forge_request(&lock, &evil, idle, Some(idle));
        assert_eq!(
            lock.boot(),
            Err(bootloader::BootError::AnchorsRevoked {
                required: 2,
                genesis: 1
            })
        );
    }
}

#[test]
fn requests_the_bootloader_did_not_approve_change_nothing() {
    let k = key(1);
    let running = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
    let other = envelope(&[&k], Version::new(1, 5, 0), 6, &payload(6, 9000));
    for named in [None, Some(Slot::A)] {
        let mut lock = Lock::factory(SMALL_AB, anchors_of(&[&k], 1), &running).with_otp();
        lock.boot().unwrap();
        let before = lock.running_bytes();
        // A validly signed image in B, and a request that names no slot
        // (embassy-boot's magic alone) or the running one.
        forge_request(&lock, &other, Slot::B, named);
        let r = lock.boot().unwrap();
        assert!(r.unapproved, "{named:?}");
        assert_eq!((r.slot, r.trial), (Slot::A, false));
        assert_eq!(r.image.header().security_counter, 1);
        assert_eq!(lock.running_bytes(), before);
        let r = lock.boot().unwrap();
        assert!(!r.unapproved && !r.trial, "the request was cleared");
        // A real install still works.
        assert_eq!(install(&mut lock, &other), Slot::B);
    }
}

#[test]
fn an_image_too_large_for_its_slot_is_refused_and_the_lock_keeps_booting() {
    let k = key(1);
    let running = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
    let l = SMALL_AB;
    // One byte more than a slot may hold (the slot less its scratch sector).
    let big = envelope(
        &[&k],
        Version::new(1, 1, 0),
        2,
        &payload(2, (l.max_envelope() as usize - PREFIX_LEN) + 1),
    );
    assert!(big.len() <= l.active.size as usize);
    let mut lock = Lock::factory(l, anchors_of(&[&k], 1), &running);
    lock.boot().unwrap();
    // The application cannot stage it ...
    assert_eq!(lock.stage(&big), Err(UpdateError::OutOfRange));
    // ... and written behind its back, the bootloader refuses it.
    forge_request(&lock, &big, Slot::B, Some(Slot::B));
    let r = lock.boot().unwrap();
    assert!(matches!(
        r.rejected_update,
        Some(EnvelopeError::PayloadTooLarge { .. })
    ));
    assert_eq!((r.slot, r.image.header().security_counter), (Slot::A, 1));
    assert!(!lock.boot().unwrap().trial);
}

#[test]
fn a_trial_slot_corrupted_after_the_confirm_is_not_promoted() {
    let k = key(1);
    let v1 = envelope(&[&k], Version::new(1, 0, 0), 1, &payload(1, 9000));
    let v2 = envelope(&[&k], Version::new(1, 1, 0), 2, &payload(2, 9000));
    let mut lock = Lock::factory(SMALL_AB, anchors_of(&[&k], 1), &v1);
    lock.boot().unwrap();
    lock.stage_and_request(&v2).unwrap();
    assert!(lock.boot().unwrap().trial);
    lock.updater().confirm().unwrap();
    let at = lock.config.layout.dfu.offset as usize + 5000;
    lock.with_flash(|f| f.program_raw(at, &[0x00]));
    let r = lock.boot().unwrap();
    assert_eq!((r.slot, r.min_security_counter), (Slot::A, 0));
    assert_eq!(r.image.header().security_counter, 1);
}

#[test]
fn records_lost_with_two_good_slots_the_newer_runs_on_trial_and_can_be_reverted() {
    let k = key(1);
    let v = |n: u8| {
        envelope(
            &[&k],
            Version::new(1, n.into(), 0),
            n.into(),
            &payload(n, 9000),
        )
    };
    let mut lock = Lock::factory(SMALL_AB, anchors_of(&[&k], 1), &v(1)).with_otp();
    lock.boot().unwrap();
    assert_eq!(install(&mut lock, &v(2)), Slot::B);
    assert_eq!(install(&mut lock, &v(3)), Slot::A);
    // 4 fails its self-test and is reverted: B holds it, A (3) is confirmed.
    lock.stage_and_request(&v(4)).unwrap();
    assert!(lock.boot().unwrap().trial);
    assert!(lock.boot().unwrap().reverted);
    // The records are lost: both slots verify (4 >= the OTP minimum 3).
    lock.erase_records();
    let r = lock.boot().unwrap();
    assert!(r.records_lost);
    assert_eq!((r.slot, r.trial), (Slot::B, true), "{r:?}");
    assert_eq!(r.image.header().security_counter, 4);
    assert_eq!(r.min_security_counter, 3);
    // It fails its self-test again: back to 3, confirmed.
    let r = lock.boot().unwrap();
    assert!(r.reverted);
    assert_eq!((r.slot, r.image.header().security_counter), (Slot::A, 3));
    let r = lock.boot().unwrap();
    assert_eq!((r.slot, r.trial), (Slot::A, false));
    // Had it passed, a confirm would have promoted it: records lost again.
    lock.erase_records();
    assert!(lock.boot().unwrap().trial);
    lock.updater().confirm().unwrap();
    let r = lock.boot().unwrap();
    assert_eq!(
        (r.slot, r.trial, r.min_security_counter),
        (Slot::B, false, 4)
    );
}
