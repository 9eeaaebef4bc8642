//! Trust anchor rotation: accepted only when signed by the current and the
//! new sets; afterwards images signed only by a removed key are refused.

use bootloader::TrustAnchors;
use bootloader::anchors::AnchorError;
use bootloader::envelope::{EnvelopeError, Version};
use bootloader::layout::SMALL;
use bootloader::updater::UpdateError;

use crate::common::*;

#[test]
fn rotation_rules() {
    let (old, new1, new2, stranger) = (key(1), key(2), key(3), key(4));
    let current = set(1, 1, &[&old]);
    let next = set(2, 2, &[&new1, &new2]);

    let ok = record(&next, &[&old, &new1, &new2]);
    assert_eq!(current.rotate(&ok), Ok(next));

    // Only the new keys: the current set did not approve.
    assert_eq!(
        current.rotate(&record(&next, &[&new1, &new2])),
        Err(AnchorError::CurrentThresholdNotMet {
            valid: 0,
            required: 1
        })
    );
    // Only the current key: the new set is not proven to be held.
    assert_eq!(
        current.rotate(&record(&next, &[&old])),
        Err(AnchorError::NewThresholdNotMet {
            valid: 0,
            required: 2
        })
    );
    // A stranger's signature counts for nothing.
    assert!(
        current
            .rotate(&record(&next, &[&stranger, &new1, &new2]))
            .is_err()
    );
    // Not newer.
    let same = set(1, 1, &[&new1]);
    assert!(matches!(
        current.rotate(&record(&same, &[&old, &new1])),
        Err(AnchorError::NotNewer { .. })
    ));
    // Any flipped byte is refused; truncation and garbage too.
    for i in 0..ok.len() {
        let mut t = ok.clone();
        t[i] ^= 0x04;
        assert!(current.rotate(&t).is_err(), "byte {i}");
    }
    for len in 0..ok.len() {
        assert!(current.rotate(&ok[..len]).is_err());
    }
    // Invalid sets are refused at construction.
    assert_eq!(
        TrustAnchors::new(1, 0, &[public(&old)]),
        Err(AnchorError::BadThreshold)
    );
    assert_eq!(
        TrustAnchors::new(1, 2, &[public(&old)]),
        Err(AnchorError::BadThreshold)
    );
    assert_eq!(
        TrustAnchors::new(1, 1, &[public(&old), public(&old)]),
        Err(AnchorError::DuplicateKey)
    );
    // The identity point is a weak key.
    let mut weak = [0u8; 32];
    weak[0] = 1;
    assert_eq!(
        TrustAnchors::new(1, 1, &[weak]),
        Err(AnchorError::InvalidKey)
    );
}

#[test]
fn a_rotated_lock_refuses_images_signed_only_by_the_removed_key() {
    let (compromised, replacement) = (key(1), key(2));
    // The running release is a transition release signed by both keys.
    let running = envelope(
        &[&compromised, &replacement],
        Version::new(1, 0, 0),
        1,
        &payload(1, 8000),
    );
    let mut lock = Lock::factory(SMALL, set(1, 1, &[&compromised]), &running);
    assert_eq!(lock.boot().unwrap().anchors_version, 1);

    let next = set(2, 1, &[&replacement]);
    let mut buf = vec![0u8; 4096];
    // Wrongly signed rotation: refused, anchors unchanged.
    let bad = record(&next, &[&replacement]);
    assert!(matches!(
        lock.updater().rotate_anchors(&bad, &mut buf),
        Err(UpdateError::Anchors(
            AnchorError::CurrentThresholdNotMet { .. }
        ))
    ));
    assert_eq!(lock.boot().unwrap().anchors_version, 1);

    lock.updater()
        .rotate_anchors(&record(&next, &[&compromised, &replacement]), &mut buf)
        .unwrap();
    assert_eq!(
        lock.boot().unwrap().anchors_version,
        2,
        "rotation persists across reset"
    );

    // An image signed only by the removed key: refused by the app API and by the bootloader.
    let evil = envelope(&[&compromised], Version::new(9, 0, 0), 9, &payload(9, 8000));
    assert!(matches!(
        lock.stage_and_request(&evil),
        Err(UpdateError::Image(EnvelopeError::ThresholdNotMet { .. }))
    ));
    lock.stage_unchecked(&evil);
    let r = lock.boot().unwrap();
    assert!(matches!(
        r.rejected_update,
        Some(EnvelopeError::ThresholdNotMet { .. })
    ));
    assert_eq!(r.image.header().security_counter, 1);

    // An image signed by the replacement key installs.
    let good = envelope(&[&replacement], Version::new(1, 1, 0), 2, &payload(2, 8000));
    lock.stage_and_request(&good).unwrap();
    let r = lock.boot().unwrap();
    assert!(r.trial);
    assert_eq!(r.image.header().security_counter, 2);
}

#[test]
fn rotation_that_would_orphan_the_running_image_is_refused() {
    let (old, new) = (key(1), key(2));
    let running = envelope(&[&old], Version::new(1, 0, 0), 1, &payload(1, 8000));
    let mut lock = Lock::factory(SMALL, set(1, 1, &[&old]), &running);
    lock.boot().unwrap();
    let mut buf = vec![0u8; 4096];
    let r = lock
        .updater()
        .rotate_anchors(&record(&set(2, 1, &[&new]), &[&old, &new]), &mut buf);
    assert!(matches!(
        r,
        Err(UpdateError::ActiveNotTrustedByNewAnchors(_))
    ));
    let r = lock.boot().unwrap();
    assert_eq!(r.anchors_version, 1);
}
