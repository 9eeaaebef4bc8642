//! Freeze: expired metadata of any role, against the caller's time floor.

use crate::prelude::*;

fn frozen(role: Role) -> TufError {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let past = NOW - DAY;
    match role {
        Role::Root => {
            repo.root.expires = past;
            repo.meta
                .files
                .insert("1.root.json".into(), repo.root_bytes(&[&key(1)]));
            dev = Device::provisioned(&repo);
        }
        Role::Timestamp => repo.timestamp.expires = past,
        Role::Snapshot => repo.snapshot.expires = past,
        Role::Targets => repo.targets.expires = past,
        Role::Delegated => repo.model.expires = past,
    }
    repo.write();
    dev.fetch(&mut repo, FIRMWARE).unwrap_err()
}

#[test]
fn freeze_expired_metadata_of_every_role_is_refused() {
    for role in [
        Role::Root,
        Role::Timestamp,
        Role::Snapshot,
        Role::Targets,
        Role::Delegated,
    ] {
        assert_eq!(frozen(role), TufError::Expired { role }, "{role}");
    }
}

#[test]
fn expiry_is_checked_against_the_callers_time_floor() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    dev.now = NOW + 31 * DAY; // past every role's 30 days
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::Expired {
            role: Role::Timestamp
        })
    );
    // Exactly at the expiry instant counts as expired (as python-tuf).
    dev.now = repo.timestamp.expires;
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::Expired {
            role: Role::Timestamp
        })
    );
    dev.now = repo.timestamp.expires - 1;
    dev.refresh(&mut repo).unwrap();
}
