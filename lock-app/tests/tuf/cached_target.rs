//! A target the lock already holds with the listed length and hashes is not
//! downloaded again (python-tuf's `find_cached_target`); a held copy that
//! differs in any way is replaced by a checked download.

use std::cell::Cell;

use lock_app::tuf::{FetchError, Fetched, MemoryStore, MemoryTransport, TargetStore, Transport};

use crate::prelude::*;

/// A transport that counts the fetches made through it.
struct Counting<'a> {
    inner: MemoryTransport,
    fetches: &'a Cell<u32>,
}

impl Transport for Counting<'_> {
    fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        self.fetches.set(self.fetches.get() + 1);
        self.inner.fetch(path, max_len)
    }
}

/// Refresh, find FIRMWARE, and fetch it into `held`: what happened and how
/// many target fetches it took.
fn fetch_into(
    repo: &mut Repo,
    dev: &mut Device,
    held: &mut MemoryStore,
) -> (lock_app::tuf::Result<Fetched>, u32) {
    let fetches = Cell::new(0);
    let mut targets = Counting {
        inner: repo.target_store.clone(),
        fetches: &fetches,
    };
    let mut u = dev.updater(repo, Limits::default()).unwrap();
    u.refresh().unwrap();
    let info = u.target_info(FIRMWARE).unwrap().unwrap();
    let result = u.fetch_target(&mut targets, held, &info);
    (result, fetches.get())
}

#[test]
fn a_held_copy_with_the_listed_length_and_hashes_is_not_fetched_again() {
    let (mut repo, mut dev) = refreshed();
    let mut held = MemoryStore::default();
    assert_eq!(
        fetch_into(&mut repo, &mut dev, &mut held),
        (Ok(Fetched::Downloaded), 1)
    );
    assert_eq!(held.targets[FIRMWARE], repo.model_files[FIRMWARE]);
    // Again, and after a refresh to new metadata listing the same bytes:
    // no fetch.
    assert_eq!(
        fetch_into(&mut repo, &mut dev, &mut held),
        (Ok(Fetched::Held), 0)
    );
    repo.publish_all();
    assert_eq!(
        fetch_into(&mut repo, &mut dev, &mut held),
        (Ok(Fetched::Held), 0)
    );
}

#[test]
fn a_held_copy_that_differs_is_fetched_and_replaced() {
    let (mut repo, mut dev) = refreshed();
    let good = repo.model_files[FIRMWARE].clone();
    let mut flipped = good.clone();
    flipped[10] ^= 1;
    let mut short = good.clone();
    short.pop();
    let mut long = good.clone();
    long.push(0);
    for bad in [flipped, short, long, Vec::new()] {
        let mut held = MemoryStore::default();
        held.write_target(FIRMWARE, &bad).unwrap();
        assert_eq!(
            fetch_into(&mut repo, &mut dev, &mut held),
            (Ok(Fetched::Downloaded), 1)
        );
        assert_eq!(held.targets[FIRMWARE], good);
    }
    // A new release under the same name: the old copy no longer matches.
    let mut held = MemoryStore::default();
    assert_eq!(fetch_into(&mut repo, &mut dev, &mut held).1, 1);
    repo.model_files
        .insert(FIRMWARE.into(), b"NLFW firmware image 1.0.1".repeat(40));
    repo.publish_all();
    assert_eq!(
        fetch_into(&mut repo, &mut dev, &mut held),
        (Ok(Fetched::Downloaded), 1)
    );
    assert_eq!(held.targets[FIRMWARE], repo.model_files[FIRMWARE]);
}

#[test]
fn a_bad_download_is_not_written_over_the_held_copy() {
    let (mut repo, mut dev) = refreshed();
    let mut held = MemoryStore::default();
    held.write_target(FIRMWARE, b"stale").unwrap();
    for bytes in repo.target_store.files.values_mut() {
        bytes[0] ^= 0xff;
    }
    assert_eq!(
        fetch_into(&mut repo, &mut dev, &mut held),
        (Err(TufError::TargetHashMismatch), 1)
    );
    assert_eq!(held.targets[FIRMWARE], b"stale");
}
