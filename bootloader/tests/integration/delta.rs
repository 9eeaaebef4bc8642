//! Delta patches: round trips (corpus and synthetic), the streaming applier
//! on simulated flash, resume after power cuts, and hostile patches.

use bootloader::delta::apply::{Applier, Progress};
use bootloader::delta::encode::{Control, EncodeOptions, apply_on_sim, encode};
use bootloader::delta::model::Model;
use bootloader::delta::{BODY_OFFSET, DeltaError, HEADER_LEN};
use bootloader::envelope::{PREFIX_LEN, Version};

use crate::common::*;

/// bidiff controls for two payloads.
pub fn controls(old: &[u8], new: &[u8]) -> Vec<Control> {
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
        &new_env[..PREFIX_LEN],
        EncodeOptions::default(),
    )
    .unwrap()
}

pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/firmware-corpus")
}

pub fn corpus_pairs() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let d = corpus_dir();
    [
        ("nuki-hub-esp32/8.11.bin", "nuki-hub-esp32/8.12.bin"),
        ("nuki-hub-esp32/8.32.bin", "nuki-hub-esp32/8.33.bin"),
        (
            "micropython-esp8266/v1.9.4.bin",
            "micropython-esp8266/v1.10.bin",
        ),
    ]
    .iter()
    .map(|(o, n)| {
        let old =
            std::fs::read(d.join(o)).expect("firmware corpus beside the repository (../shared)");
        let new = std::fs::read(d.join(n)).unwrap();
        (format!("{o} -> {n}"), old, new)
    })
    .collect()
}

fn wrap(payload: &[u8], counter: u32) -> Vec<u8> {
    envelope(
        &[&key(1)],
        Version::new(1, counter as u16, 0),
        counter,
        payload,
    )
}

#[test]
fn delta_round_trips_the_firmware_corpus_on_the_host() {
    for (name, old, new) in corpus_pairs() {
        let (o, n) = (wrap(&old, 1), wrap(&new, 2));
        let p = patch(&o, &n);
        let (oo, nn) = (&o[PREFIX_LEN..], &n[PREFIX_LEN..]);
        let (_, st) = bootloader::delta::encode::encode_with_stats(
            oo,
            nn,
            &controls(oo, nn),
            &n[..PREFIX_LEN],
            EncodeOptions::default(),
        )
        .unwrap();
        println!("{st:.0?}");
        println!(
            "{name}: patch {} bytes = {:.2}% of {}",
            p.len(),
            100.0 * p.len() as f64 / new.len() as f64,
            new.len()
        );
        if std::env::var("NL_NO_APPLY").is_err() {
            assert_eq!(apply_on_sim(&o, &p).unwrap(), n, "{name}");
        }
    }
}
