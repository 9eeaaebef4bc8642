//! `nightlatch-loadgen`: plays N locks checking in with real Ed25519
//! signatures against a running nightlatch-server over HTTP, and measures
//! check-ins per second and latency (p50/p99), then repository download
//! throughput. A benchmark: it prints numbers, it does not pass or fail.
//!
//! Request bodies and signatures are made before the clock starts, so the
//! generator's own signing does not compete with the server for the CPU
//! during the measured phase (on a 2-core machine both share the cores).
//!
//! ```sh
//! nightlatch-loadgen --server http://127.0.0.1:8080 --token-file DIR/admin-token \
//!     --locks 10000 --rounds 5 --concurrency 256 \
//!     --download /repo/targets/nl-lock-v2/<sha256>.1.0.0.nlfw
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;
use sha2::{Digest, Sha256};
use update_server::wire::{
    BootState, CheckinRequest, Firmware, Report, b64, checkin_message, signature_header,
};

/// Check-in and download load against a nightlatch-server.
#[derive(Debug, Parser)]
#[command(name = "nightlatch-loadgen", version, about)]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Admin token (operator or above) to register the locks.
    #[arg(long, env = "NIGHTLATCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the admin token (e.g. DATA/admin-token).
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
    /// Simulated locks.
    #[arg(long, default_value_t = 10_000)]
    locks: usize,
    /// Measured check-ins per lock (after one unmeasured warm-up check-in each).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Lock id prefix (use a new one per run, or --skip-register).
    #[arg(long, default_value = "load")]
    prefix: String,
    /// Hardware model of the locks.
    #[arg(long, default_value = "nl-lock-v2")]
    model: String,
    /// Firmware version the locks report.
    #[arg(long, default_value = "1.0.0")]
    version: String,
    /// The locks are already registered.
    #[arg(long)]
    skip_register: bool,
    /// A target path to download repeatedly (e.g. /repo/targets/m/<sha>.1.0.0.nlfw).
    #[arg(long)]
    download: Option<String>,
    /// Downloads of that target.
    #[arg(long, default_value_t = 200)]
    download_requests: usize,
    /// Metadata requests (timestamp.json) for the static-file figure.
    #[arg(long, default_value_t = 50_000)]
    metadata_requests: usize,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// The server's process id (same machine): its CPU time during the
    /// timed check-ins is read from `/proc` and printed per check-in, with
    /// the generator's own (a database in another process is in neither).
    #[arg(long)]
    server_pid: Option<u32>,
}

/// User + system CPU time of process `pid` ("self" for this one), from
/// `/proc/PID/stat`; `None` where it cannot be read.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime and stime are the 12th and 13th after it.
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux the generator runs on.
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The system allocator spends a sixth of a busy server's time in malloc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Prepared {
    path: String,
    bodies: Vec<(Bytes, String)>,
}

fn lock_key(id: &str) -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(format!("loadgen:{id}").as_bytes()).into())
}

fn prepare(args: &Args, counter_base: u64) -> Vec<Prepared> {
    (0..args.locks)
        .map(|i| {
            let id = format!("{}-{i:06}", args.prefix);
            let key = lock_key(&id);
            let bodies = (0..=args.rounds as u64)
                .map(|r| {
                    let nonce: [u8; 16] =
                        Sha256::digest(format!("{id}/{r}/{counter_base}").as_bytes())[..16]
                            .try_into()
                            .unwrap_or([0; 16]);
                    let req = CheckinRequest {
                        device_id: id.clone(),
                        counter: counter_base + r + 1,
                        nonce: b64::encode(nonce),
                        director_targets_version: if r == 0 { 0 } else { 1 },
                        report: Report {
                            hardware_model: args.model.clone(),
                            firmware: Firmware {
                                version: args.version.clone(),
                                security_counter: 1,
                            },
                            boot_state: BootState::Confirmed,
                            last_update: None,
                            battery_percent: Some(77),
                            time_zone: Some("Europe/Berlin".into()),
                            usage: None,
                        },
                    };
                    let body = serde_json::to_vec(&req).unwrap_or_default();
                    let sig = signature_header(&key.sign(&checkin_message(&body)));
                    (Bytes::from(body), sig)
                })
                .collect();
            Prepared {
                path: format!("/v1/devices/{id}/check-in"),
                bodies,
            }
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Debug, Default)]
struct Phase {
    ok: usize,
    errors: std::collections::BTreeMap<String, usize>,
    latencies: Vec<Duration>,
    wall: Duration,
}

async fn run_checkins(
    client: &reqwest::Client,
    base: &str,
    locks: &Arc<Vec<Prepared>>,
    round: std::ops::Range<usize>,
    concurrency: usize,
) -> Phase {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..concurrency.min(locks.len()).max(1) {
        let client = client.clone();
        let base = base.to_owned();
        let locks = Arc::clone(locks);
        let round = round.clone();
        tasks.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            // This task owns locks t, t+C, …: one check-in per lock in flight.
            for r in round {
                for lock in locks.iter().skip(t).step_by(concurrency) {
                    let (body, sig) = &lock.bodies[r];
                    let t0 = Instant::now();
                    let resp = client
                        .post(format!("{base}{}", lock.path))
                        .header("nightlatch-signature", sig)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let outcome = match resp {
                        Ok(resp) => {
                            let status = resp.status();
                            match resp.bytes().await {
                                Ok(_) if status.is_success() => Ok(()),
                                Ok(_) => Err(status.as_u16().to_string()),
                                Err(e) => Err(format!("body: {e}")),
                            }
                        }
                        Err(e) => Err(format!("send: {}", chain(&e.without_url()))),
                    };
                    phase.latencies.push(t0.elapsed());
                    match outcome {
                        Ok(()) => phase.ok += 1,
                        Err(e) => *phase.errors.entry(e).or_default() += 1,
                    }
                }
            }
            phase
        }));
    }
    let mut all = Phase::default();
    for t in tasks {
        if let Ok(p) = t.await {
            all.ok += p.ok;
            all.latencies.extend(p.latencies);
            for (k, v) in p.errors {
                *all.errors.entry(k).or_default() += v;
            }
        }
    }
    all.wall = start.elapsed();
    all.latencies.sort();
    all
}

/// An error and its causes, one line (reqwest's own text leaves them out).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn run_gets(
    client: &reqwest::Client,
    url: &str,
    requests: usize,
    concurrency: usize,
) -> (usize, u64, Duration) {
    let start = Instant::now();
    let per = requests.div_ceil(concurrency.max(1));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut n, mut bytes) = (0usize, 0u64);
            for _ in 0..per {
                if let Ok(r) = client.get(&url).send().await
                    && r.status().is_success()
                    && let Ok(b) = r.bytes().await
                {
                    n += 1;
                    bytes += b.len() as u64;
                }
            }
            (n, bytes)
        }));
    }
    let (mut n, mut bytes) = (0, 0);
    for t in tasks {
        if let Ok((a, b)) = t.await {
            n += a;
            bytes += b;
        }
    }
    (n, bytes, start.elapsed())
}

async fn register(client: &reqwest::Client, args: &Args, token: &str) -> anyhow::Result<()> {
    let devices: Vec<serde_json::Value> = (0..args.locks)
        .map(|i| {
            let id = format!("{}-{i:06}", args.prefix);
            json!({"id": id, "hardware_model": args.model, "public_key": hex::encode(lock_key(&id).verifying_key().as_bytes())})
        })
        .collect();
    for chunk in devices.chunks(10_000) {
        let r = client
            .post(format!("{}/admin/v1/devices/import", args.server))
            .bearer_auth(token)
            .json(&json!({ "devices": chunk }))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!(
                "registering locks: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))?
                .trim()
                .to_owned(),
        ),
        _ => None,
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        // Below the server's idle keep-alive limit (`http.header_read_timeout`,
        // 10 s by default): reqwest keeps idle connections 90 s, and one the
        // server has closed meanwhile fails when reused.
        .pool_idle_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()?;
    if !args.skip_register {
        let token = token
            .as_deref()
            .context("registering locks needs --token or --token-file")?;
        let t = Instant::now();
        register(&client, &args, token).await?;
        eprintln!("registered {} locks in {:.1?}", args.locks, t.elapsed());
    }
    // Counters continue from wall-clock milliseconds so reruns with
    // --skip-register are never refused as replays.
    let counter_base = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
    )
    .unwrap_or(0)
        * 1000;
    let t = Instant::now();
    let locks = Arc::new(prepare(&args, counter_base));
    eprintln!(
        "signed {} check-ins in {:.1?} (before the clock starts)",
        args.locks * (args.rounds + 1),
        t.elapsed()
    );
    let warm = run_checkins(&client, &args.server, &locks, 0..1, args.concurrency).await;
    eprintln!(
        "warm-up (first check-in of each lock: director metadata signed): {} ok, {:?} errors, {:.0}/s",
        warm.ok,
        warm.errors,
        warm.ok as f64 / warm.wall.as_secs_f64()
    );
    let server_pid = args.server_pid.map(|p| p.to_string());
    let cpu_before = (server_pid.as_deref().and_then(cpu_time), cpu_time("self"));
    let measured = run_checkins(
        &client,
        &args.server,
        &locks,
        1..args.rounds + 1,
        args.concurrency,
    )
    .await;
    let per_checkin = |before: Option<Duration>, after: Option<Duration>| {
        let spent = after?.checked_sub(before?)?;
        (measured.ok > 0).then(|| spent.as_secs_f64() * 1e6 / measured.ok as f64)
    };
    let server_us = per_checkin(cpu_before.0, server_pid.as_deref().and_then(cpu_time));
    let loadgen_us = per_checkin(cpu_before.1, cpu_time("self"));
    let rate = measured.ok as f64 / measured.wall.as_secs_f64();
    let (p50, p99, max) = (
        percentile(&measured.latencies, 0.50),
        percentile(&measured.latencies, 0.99),
        measured.latencies.last().copied().unwrap_or_default(),
    );
    let meta_url = format!("{}/repo/metadata/timestamp.json", args.server);
    let (meta_n, _, meta_wall) = run_gets(&client, &meta_url, args.metadata_requests, 64).await;
    let download = match &args.download {
        Some(path) => {
            let (n, bytes, wall) = run_gets(
                &client,
                &format!("{}{path}", args.server),
                args.download_requests,
                8,
            )
            .await;
            Some((n, bytes, wall))
        }
        None => None,
    };
    let result = json!({
        "locks": args.locks,
        "concurrency": args.concurrency,
        "checkins_ok": measured.ok,
        "checkin_errors": measured.errors,
        "checkins_per_second": rate.round(),
        "latency_ms": {
            "p50": p50.as_secs_f64() * 1000.0,
            "p99": p99.as_secs_f64() * 1000.0,
            "max": max.as_secs_f64() * 1000.0,
        },
        "server_cpu_us_per_checkin": server_us,
        "loadgen_cpu_us_per_checkin": loadgen_us,
        "first_checkins_per_second": (warm.ok as f64 / warm.wall.as_secs_f64()).round(),
        "metadata_requests_per_second": (meta_n as f64 / meta_wall.as_secs_f64()).round(),
        "download": download.map(|(n, bytes, wall)| json!({
            "requests": n,
            "bytes": bytes,
            "mib_per_second": bytes as f64 / wall.as_secs_f64() / (1024.0 * 1024.0),
        })),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "check-ins      {} ok in {:.2?} with {} connections: {rate:.0}/s",
            measured.ok, measured.wall, args.concurrency
        );
        println!(
            "latency        p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
        if !measured.errors.is_empty() {
            println!("errors         {:?}", measured.errors);
        }
        match (server_us, loadgen_us) {
            (Some(s), Some(l)) => {
                println!("CPU            server {s:.0} us, generator {l:.0} us per timed check-in")
            }
            (None, Some(l)) => println!("CPU            generator {l:.0} us per timed check-in"),
            _ => {}
        }
        println!(
            "first check-in {:.0}/s (director metadata signed per lock)",
            warm.ok as f64 / warm.wall.as_secs_f64()
        );
        println!(
            "metadata GET   {:.0}/s (timestamp.json, 64 connections)",
            meta_n as f64 / meta_wall.as_secs_f64()
        );
        if let Some((n, bytes, wall)) = download {
            println!(
                "target GET     {n} downloads, {:.1} MiB/s (8 connections)",
                bytes as f64 / wall.as_secs_f64() / (1024.0 * 1024.0)
            );
        }
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nightlatch-loadgen: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nightlatch-loadgen: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
