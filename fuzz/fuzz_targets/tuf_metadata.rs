//! The lock's TUF client on metadata from the network: arbitrary bytes as a
//! trusted root, and as each next file of a real repository's chain (root
//! rotation, timestamp, snapshot, top-level and delegated targets), must
//! never panic. The fixture repository (`fuzz/fixtures/tuf`, made by
//! python-tuf) uses Ed25519, ECDSA P-256 and both RSA schemes, so mutated
//! files reach every key type's verification. Only the unmodified fixture
//! files may verify at their step; the first byte picks the step.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lock_app::tuf::TrustedSet;

const ROOT1: &[u8] = include_bytes!("../fixtures/tuf/1.root.json");
const ROOT2: &[u8] = include_bytes!("../fixtures/tuf/2.root.json");
const TIMESTAMP: &[u8] = include_bytes!("../fixtures/tuf/timestamp.json");
const SNAPSHOT: &[u8] = include_bytes!("../fixtures/tuf/1.snapshot.json");
const TARGETS: &[u8] = include_bytes!("../fixtures/tuf/1.targets.json");
const FIRMWARE: &[u8] = include_bytes!("../fixtures/tuf/1.firmware.json");

/// 2030-01-07T00:00:00Z: inside the fixture's validity.
const NOW: u64 = 1_893_888_000;

/// The chain in order; step `n` trusts files `0..n` and feeds the input as
/// file `n`.
const CHAIN: [&[u8]; 5] = [ROOT2, TIMESTAMP, SNAPSHOT, TARGETS, FIRMWARE];

fn apply(set: &mut TrustedSet, step: usize, bytes: &[u8]) -> bool {
    match step {
        0 => set.update_root(bytes).is_ok(),
        1 => set.update_timestamp(bytes).is_ok(),
        2 => set.update_snapshot(bytes, false).is_ok(),
        3 => set.update_targets(bytes, "targets", "root").is_ok(),
        _ => set.update_targets(bytes, "firmware", "targets").is_ok(),
    }
}

/// The trusted set after each prefix of the chain, verified once (the
/// fixture's RSA and ECDSA checks would otherwise dominate every run).
fn prefixes() -> &'static [TrustedSet] {
    static SETS: OnceLock<Vec<TrustedSet>> = OnceLock::new();
    SETS.get_or_init(|| {
        let Ok(mut set) = TrustedSet::new(ROOT1, NOW) else {
            panic!("the fixture's root 1 must be trusted");
        };
        let mut sets = vec![set.clone()];
        for (n, file) in CHAIN.iter().enumerate() {
            assert!(apply(&mut set, n, file), "fixture step {n} must verify");
            sets.push(set.clone());
        }
        sets
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(selector) % (CHAIN.len() + 1);
    if step == CHAIN.len() {
        // The input as the lock's first trusted root.
        if let Ok(set) = TrustedSet::new(input, NOW) {
            let _ = set.root();
        }
        return;
    }
    let mut set = prefixes()[step].clone();
    let accepted = apply(&mut set, step, input);
    if accepted {
        // Signatures cover canonical JSON of `signed`, so a different file
        // can verify only if it is the fixture or differs in ways the
        // signature does not cover (whitespace, signature order).
        let _ = set.root();
    }
});
