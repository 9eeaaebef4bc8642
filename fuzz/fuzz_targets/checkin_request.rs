//! The server's first look at a check-in from the network
//! (`nightlatch_proto::wire::check_submission`, what
//! `update-server/src/checkin/parse.rs` runs before it reads any state):
//! arbitrary bytes as the `Nightlatch-Signature` header, the URL's device
//! id and the body must never panic, and whatever passes must hold to the
//! limits the server relies on. Input: `header \n path_id \n body`; a
//! missing first line means no header.

#![no_main]

use libfuzzer_sys::fuzz_target;
use lock_app::scheduler::summary::UsageSummary;
use nightlatch_proto::wire::{MAX_NONCE, MIN_NONCE, check_submission, parse_version};

fn usage(text: &str) -> Result<(), String> {
    UsageSummary::from_text(text)
        .map(drop)
        .map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let (Some(header), Some(path_id), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        let _ = check_submission("lock-1", data, None, usage);
        return;
    };
    let header = std::str::from_utf8(header).ok();
    let Ok(path_id) = std::str::from_utf8(path_id) else {
        return;
    };
    if let Ok(c) = check_submission(path_id, body, header, usage) {
        assert_eq!(c.req.device_id, path_id);
        assert!((MIN_NONCE..=MAX_NONCE).contains(&c.nonce.len()));
        assert!(c.counter >= 1);
        assert!(parse_version(&c.req.report.firmware.version).is_some());
        assert!(c.req.report.battery_percent.is_none_or(|b| b <= 100));
    }
});
