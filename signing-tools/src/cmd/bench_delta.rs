//! `nightlatch-sign bench-delta DIR`: patch size, applier RAM and apply speed
//! on a corpus of consecutive firmware releases. Prints figures; never fails
//! on them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bootloader::delta::apply::{Applier, Progress};
use bootloader::delta::encode::sim_lock;
use bootloader::delta::model::Model;
use bootloader::delta::transform;
use bootloader::envelope::{HardwareModel, Header, PREFIX_LEN, Prefix, SignatureEntry, Version};
use clap::Args;
use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use nightlatch_repo::delta::NoProgress;
use nightlatch_repo::{Error, Result, fsio};

use crate::cmd::delta::{delta_error, make_checked};
use crate::stackmeter;

/// Arguments of `bench-delta`.
#[derive(Debug, Clone, Args)]
pub struct BenchDeltaArgs {
    /// Corpus directories: subfolders of raw images; pairs from each one's
    /// README.md table (`| dir/old -> new |`), else consecutive files per
    /// folder.
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One pair's figures.
#[derive(Debug, Serialize)]
pub struct PairFigures {
    /// `dir/old -> new`.
    pub pair: String,
    /// New raw image bytes.
    pub new_bytes: u64,
    /// Patch bytes (header, target's signed prefix and body).
    pub patch_bytes: u64,
    /// Patch ÷ new image.
    pub ratio: f64,
    /// The instruction-set transform the encoder chose.
    pub transform: String,
    /// Patch bytes with no transform (plain).
    pub plain_bytes: u64,
    /// Plain patch ÷ new image.
    pub plain_ratio: f64,
    /// Model state (static RAM on a device).
    pub ram_model_bytes: u64,
    /// Measured stack high-water mark of the applier (applier struct included).
    pub ram_stack_bytes: u64,
    /// Total applier RAM.
    pub ram_total_bytes: u64,
    /// Apply throughput on this host, MB/s of output, on the flash simulator.
    pub apply_mb_per_s: f64,
    /// Seconds to make the patch.
    pub make_seconds: f64,
    /// Published ratios for the same pair (from the corpus README), if found.
    pub reference: Vec<(String, f64)>,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Per pair.
    pub pairs: Vec<PairFigures>,
    /// Median of the ratios.
    pub median_ratio: f64,
    /// Median of the plain (no transform) ratios.
    pub median_plain_ratio: f64,
    /// Per published method: (method, pairs where our whole patch is
    /// smaller, pairs with a published figure).
    pub smaller_than: Vec<(String, usize, usize)>,
}

fn wrap(key: &SigningKey, payload: &[u8], counter: u32) -> Result<Vec<u8>> {
    let bad = |_| Error::Delta {
        what: "cannot wrap a corpus image".into(),
        reason: bootloader::delta::DeltaError::UnsupportedParameters,
        help: "corpus images must be under 4 GiB".into(),
    };
    let header = Header {
        model: HardwareModel::new("bench").map_err(|_| bad(()))?,
        version: Version::new(1, counter as u16, 0),
        security_counter: counter,
        payload_len: u32::try_from(payload.len()).map_err(|_| bad(()))?,
        payload_sha256: Sha256::digest(payload).into(),
    };
    let sig = SignatureEntry {
        key_id: bootloader::anchors::key_id(&key.verifying_key().to_bytes()),
        signature: key.sign(&header.encode()).to_bytes(),
    };
    let mut out = Prefix::encode(&header, &[sig])
        .map_err(|_| bad(()))?
        .to_vec();
    out.extend_from_slice(payload);
    Ok(out)
}

/// A pair to measure: name, old and new image, published (method, ratio)s.
type Pair = (String, PathBuf, PathBuf, Vec<(String, f64)>);

/// Pairs named in the corpus README's table, with their published ratios.
fn readme_pairs(dir: &Path) -> Vec<Pair> {
    let Ok(text) = std::fs::read_to_string(dir.join("README.md")) else {
        return vec![];
    };
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let mut pairs = vec![];
    for line in text
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" -> "))
    {
        let first = cells(line).into_iter().next().unwrap_or_default();
        let Some((old, new)) = first.split_once(" -> ") else {
            continue;
        };
        let Some((folder, old)) = old.rsplit_once('/') else {
            continue;
        };
        let (o, n) = (
            dir.join(folder).join(format!("{old}.bin")),
            dir.join(folder).join(format!("{new}.bin")),
        );
        if o.is_file() && n.is_file() {
            pairs.push((format!("{folder}/{old} -> {new}"), o, n, vec![]));
        }
    }
    // Rows of the results table: a method, then one "bytes (ratio%)" per pair.
    for line in text
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("%)"))
    {
        let c = cells(line);
        let Some(method) = c.first() else { continue };
        if !(method.starts_with("bidiff 1.0 + xz") || method.starts_with("detools hdiffpatch")) {
            continue;
        }
        for (i, cell) in c.iter().skip(1).enumerate() {
            let ratio = cell
                .split_once('(')
                .and_then(|(_, r)| r.split_once('%'))
                .and_then(|(r, _)| r.trim().parse::<f64>().ok());
            if let (Some(r), Some(p)) = (ratio, pairs.get_mut(i)) {
                p.3.push((method.clone(), r / 100.0));
            }
        }
    }
    pairs
}

/// Consecutive files (sorted by name) in each folder.
fn consecutive_pairs(dir: &Path) -> Result<Vec<Pair>> {
    let read = |d: &Path| {
        std::fs::read_dir(d).map_err(|source| Error::Read {
            path: d.to_path_buf(),
            source,
        })
    };
    let mut pairs = vec![];
    let mut folders: Vec<PathBuf> = read(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    for f in folders {
        let mut files: Vec<PathBuf> = read(&f)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "bin"))
            .collect();
        files.sort();
        for w in files.windows(2) {
            let name = |p: &Path| {
                p.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            let folder = f
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            pairs.push((
                format!("{folder}/{} -> {}", name(&w[0]), name(&w[1])),
                w[0].clone(),
                w[1].clone(),
                vec![],
            ));
        }
    }
    Ok(pairs)
}

/// Apply on the simulator through the device applier, in 1,460-byte chunks
/// (one TCP segment each); return (seconds, stack high-water mark).
fn measure_apply(old_env: Vec<u8>, patch: Vec<u8>) -> Result<(f64, u64)> {
    let (sim, config, _) = sim_lock(&old_env, &patch).map_err(|e| delta_error("bench setup", e))?;
    let setup = move || {
        let flash = Box::new(embassy_sync::blocking_mutex::Mutex::new(
            core::cell::RefCell::new(sim),
        ));
        let model = Box::new(Model::new());
        (flash, model, patch)
    };
    let work = move |(flash, mut model, patch): (
        Box<bootloader::boot::SharedFlash<_>>,
        Box<Model>,
        Vec<u8>,
    )| {
        let t = Instant::now();
        let mut up = bootloader::updater::Updater::new(&flash, config)
            .map_err(bootloader::delta::DeltaError::Update)?;
        let mut applier = Applier::new(&mut up, &mut model)?;
        let mut done = false;
        for chunk in patch.chunks(1460) {
            done = applier.feed(chunk)? == Progress::Rebuilt;
        }
        if !done {
            return Err(bootloader::delta::DeltaError::Truncated);
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let (r, stack) = stackmeter::measure(setup, work).map_err(|e| Error::Delta {
        what: format!("cannot run the measurement thread: {e}"),
        reason: bootloader::delta::DeltaError::Poisoned,
        help: "this is a bug in nightlatch-sign; please report it".into(),
    })?;
    let secs = r.map_err(|e| delta_error("the device applier failed", e))?;
    Ok((secs, stack as u64))
}

/// For each published method, on how many pairs our patch is smaller.
fn smaller_than(figures: &[PairFigures]) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = vec![];
    for f in figures {
        for (method, r) in &f.reference {
            let i = match out.iter().position(|o| &o.0 == method) {
                Some(i) => i,
                None => {
                    out.push((method.clone(), 0, 0));
                    out.len() - 1
                }
            };
            out[i].2 += 1;
            if f.ratio < *r {
                out[i].1 += 1;
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Run `bench-delta`.
pub fn run(args: &BenchDeltaArgs) -> Result<()> {
    let mut pairs = vec![];
    for dir in &args.dirs {
        let mut found = readme_pairs(dir);
        if found.is_empty() {
            found = consecutive_pairs(dir)?;
        }
        pairs.extend(found);
    }
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let mut figures = vec![];
    for (name, o, n, reference) in pairs {
        let old = fsio::read_limited(&o, u64::from(u32::MAX))?;
        let new = fsio::read_limited(&n, u64::from(u32::MAX))?;
        let (old_env, new_env) = (wrap(&key, &old, 1)?, wrap(&key, &new, 2)?);
        let made = make_checked(&old_env, &new_env, &NoProgress)
            .map_err(|e| delta_error(format!("pair {name}"), e))?;
        let (secs, stack) = measure_apply(old_env, made.patch.clone())?;
        let model = std::mem::size_of::<Model>() as u64;
        figures.push(PairFigures {
            pair: name,
            new_bytes: new.len() as u64,
            patch_bytes: made.patch.len() as u64,
            ratio: made.patch.len() as f64 / new.len() as f64,
            transform: transform::name(made.stats.transform).to_owned(),
            plain_bytes: made.stats.tried[0] as u64,
            plain_ratio: made.stats.tried[0] as f64 / new.len() as f64,
            ram_model_bytes: model,
            ram_stack_bytes: stack,
            ram_total_bytes: model + stack,
            apply_mb_per_s: (new.len() + PREFIX_LEN) as f64 / secs / 1e6,
            make_seconds: made.elapsed.as_secs_f64(),
            reference,
        });
    }
    let report = BenchReport {
        median_ratio: median(figures.iter().map(|f| f.ratio).collect()),
        median_plain_ratio: median(figures.iter().map(|f| f.plain_ratio).collect()),
        smaller_than: smaller_than(&figures),
        pairs: figures,
    };
    if args.json {
        return fsio::print_json(&report);
    }
    let mut out = format!(
        "{:<42} {:>10} {:>12} {:>7} {:>8} {:>7} {:>16} {:>10} {:>8}  {}\n",
        "pair",
        "new bytes",
        "patch bytes",
        "ratio",
        "chosen",
        "plain",
        "RAM (model+stack)",
        "apply MB/s",
        "make s",
        "published (same pair)"
    );
    for f in &report.pairs {
        let refs: Vec<String> = f
            .reference
            .iter()
            .map(|(m, r)| format!("{}: {:.2}%", m.split(',').next().unwrap_or(m), 100.0 * r))
            .collect();
        out.push_str(&format!(
            "{:<42} {:>10} {:>12} {:>6.2}% {:>8} {:>6.2}% {:>7} B ({}+{}) {:>10.1} {:>8.1}  {}\n",
            f.pair,
            f.new_bytes,
            f.patch_bytes,
            100.0 * f.ratio,
            f.transform,
            100.0 * f.plain_ratio,
            f.ram_total_bytes,
            f.ram_model_bytes,
            f.ram_stack_bytes,
            f.apply_mb_per_s,
            f.make_seconds,
            refs.join("; ")
        ));
    }
    out.push_str(&format!(
        "median ratio: {:.2}% over {} pairs (transforms off: {:.2}%)",
        100.0 * report.median_ratio,
        report.pairs.len(),
        100.0 * report.median_plain_ratio
    ));
    for (method, wins, of) in &report.smaller_than {
        out.push_str(&format!(
            "\nsmaller than {}: {wins} of {of} pairs (our whole patch, header and signatures included)",
            method.split(',').next().unwrap_or(method)
        ));
    }
    fsio::print(&out)
}
