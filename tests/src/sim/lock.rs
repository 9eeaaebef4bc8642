//! `nightlatch-sim lock`: one simulated lock — the real `lock-app` agent and
//! `bootloader` on simulated flash — against a running `nightlatch-server`.
//!
//! The lock's state lives in `--state-dir`: `flash.bin` (the whole 4 MiB
//! flash, reference layout in the lock's boot mode — the agent's files,
//! device key, agent state and trusted metadata of both repositories, are in
//! its AGENT partition), `flash.otp.json` (the OTP rows the bootloader has
//! programmed: its anti-rollback minimum and anchor set version, which no
//! later state of the flash can lower) and `lock.json` (id, model, anchors,
//! boot mode). The first run provisions the lock; later runs continue where
//! it stopped (staging resumes with HTTP Range requests).
//!
//! The boot mode (`--boot swap|ab`) is chosen on the first run and saved in
//! `lock.json`: the two modes lay the flash out differently, so a saved
//! lock always runs in the mode it was made in. A later run without
//! `--boot` uses the saved mode; a later run with a different `--boot` is
//! refused (nothing is read as the other layout). A `lock.json` from before
//! the modes existed is a swap lock.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bootloader::{HardwareModel, TrustAnchors};
use clap::{Args, ValueEnum};
use lock_app::agent::{
    self, Agent, AgentConfig, AgentError, BootOutcome, CheckIn, Net, Repo, SelfTestFailure,
    StageStatus,
};
use lock_app::scheduler::{Decision, UsageProfile};
use lock_app::tuf::MetadataStore;
use serde::{Deserialize, Serialize};

use super::device::{Boot, Clock, Device, SimHardware};
use super::error::SimError;
use super::net::{HttpNet, Traffic};

/// Clock of the simulated lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockMode {
    /// Wall-clock time; waits really wait.
    Real,
    /// Virtual time shared with a server started with `--clock manual`:
    /// waits advance both clocks (needs --token with security-admin role).
    Virtual,
}

/// Run one simulated lock against a server.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// Server base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    pub server: String,
    /// Directory holding the lock's flash and files (created on first run).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Lock id (first run).
    #[arg(long)]
    pub id: Option<String>,
    /// Boot mode: `swap` (embassy-boot copies the update into ACTIVE) or
    /// `ab` (two slots, the bootloader maps the verified one). Chosen on
    /// the first run (default: swap) and saved; later runs use the saved
    /// mode, and refuse a different one.
    #[arg(long, value_enum)]
    pub boot: Option<Boot>,
    /// Factory firmware envelope written to ACTIVE (first run).
    #[arg(long)]
    pub firmware: Option<PathBuf>,
    /// Public key(s) (PEM/SPKI) of the firmware signing key(s): the
    /// bootloader's trust anchors (first run).
    #[arg(long = "anchor")]
    pub anchors: Vec<PathBuf>,
    /// Image repository root the lock trusts from manufacture (first run).
    /// Without it the lock takes `1.root.json` from the server (trust on
    /// first use: for simulations only).
    #[arg(long)]
    pub image_root: Option<PathBuf>,
    /// Director root the lock trusts from manufacture (first run); same
    /// default as --image-root.
    #[arg(long)]
    pub director_root: Option<PathBuf>,
    /// Register the lock with the server (needs --token, operator role).
    #[arg(long)]
    pub register: bool,
    /// Admin token (register; advancing a manual server clock).
    #[arg(long, env = "NIGHTLATCH_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Check-ins to make (each followed by staging and, when the scheduler
    /// says so, an install).
    #[arg(long, default_value_t = 1)]
    pub check_ins: u32,
    /// Keep checking in until this version runs confirmed (at most
    /// --check-ins times).
    #[arg(long)]
    pub until_version: Option<String>,
    /// Seconds between check-ins (real clock) or advanced (virtual clock).
    #[arg(long, default_value_t = 3600)]
    pub interval: u64,
    /// Clock mode.
    #[arg(long, value_enum, default_value_t = ClockMode::Real)]
    pub clock: ClockMode,
    /// With `--clock virtual`: where the lock's clock starts
    /// (`YYYY-MM-DDTHH:MM:SSZ` or Unix seconds; each run starts there, then
    /// follows the server's signed time). Default: now.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Make the self-test fail when this version runs (a bad release).
    #[arg(long)]
    pub fail_self_test_on: Option<String>,
    /// Print the final summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `lock.json`: what the lock was built with.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockFile {
    id: String,
    model: String,
    anchors: Vec<String>,
    threshold: u8,
    /// Boot mode the flash is laid out for (absent: swap, the only mode
    /// before A/B).
    #[serde(default)]
    boot: Boot,
    /// The lock's OTP is saved beside its flash (absent: made before the
    /// simulated locks had OTP; a missing OTP file then means a blank OTP,
    /// otherwise it is an error).
    #[serde(default)]
    otp: bool,
}

/// Final summary.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Lock id.
    pub id: String,
    /// Boot mode (saved with the lock).
    pub boot: Boot,
    /// Version running at the end.
    pub version: String,
    /// Check-ins made.
    pub check_ins: u32,
    /// Installs requested.
    pub installs: u32,
    /// Self-test failures.
    pub self_test_failures: u32,
    /// Bytes on air.
    pub traffic: Traffic,
    /// Flash erases and bytes written.
    pub flash_erases: u64,
    /// Flash bytes programmed.
    pub flash_bytes_written: u64,
    /// The anti-rollback minimum in the lock's OTP at the end.
    pub otp_min_security_counter: u32,
    /// The anchor set version in the lock's OTP at the end.
    pub otp_anchors_version: u32,
    /// Each check-in's bytes on air, and whether it carried the usage
    /// summary.
    pub check_in_log: Vec<CheckinBytes>,
}

/// One check-in on air.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckinBytes {
    /// Request bytes (line, headers, body).
    pub sent: u64,
    /// Response bytes (status line, headers, body).
    pub received: u64,
    /// The signed report carried the usage summary.
    pub usage: bool,
}

impl CheckinBytes {
    /// Both directions.
    pub fn total(&self) -> u64 {
        self.sent + self.received
    }
}

/// A check-in with the lock's usage summary when it is due (this lock has
/// no door: its profile is empty, and its summary says so), logged.
fn check_in<S: MetadataStore>(
    agent: &mut Agent<'_, super::device::Flash, S, &mut HttpNet, SimHardware>,
    summary: &mut Summary,
) -> Result<CheckIn, AgentError> {
    let before = agent.net.traffic;
    let result = agent.check_in_with_usage(&UsageProfile::new());
    let t = agent.net.traffic.since(&before);
    summary.check_in_log.push(CheckinBytes {
        sent: t.checkin_sent,
        received: t.checkin_received,
        usage: agent.sent_usage(),
    });
    result
}

fn lock_err(message: impl Into<String>) -> SimError {
    SimError::Lock {
        message: message.into(),
    }
}

fn admin(
    net: &HttpNet,
    token: &Option<String>,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, SimError> {
    let token = token
        .as_deref()
        .ok_or_else(|| lock_err(format!("{path} needs --token (or NIGHTLATCH_ADMIN_TOKEN)")))?;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let url = format!("{}{path}", net.base());
    let auth = format!("Bearer {token}");
    let req = match method {
        "POST" => agent.post(&url),
        _ => agent.put(&url),
    };
    let mut resp = req
        .header("authorization", &auth)
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .map_err(|e| SimError::Http {
            what: format!("{method} {path}"),
            detail: e.to_string(),
        })?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(SimError::Http {
            what: format!("{method} {path}"),
            detail: format!("HTTP {status}: {text}"),
        });
    }
    Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, SimError> {
    std::fs::read(path).map_err(|source| SimError::Io {
        what,
        path: path.to_owned(),
        source,
    })
}

impl LockArgs {
    /// Run.
    pub fn run(self) -> Result<(), SimError> {
        let summary = self.drive()?;
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&summary).unwrap_or_default()
            );
        } else {
            println!(
                "{}: running {} ({} boot) after {} check-in(s), {} install(s); {} bytes on air ({} check-in, {} metadata, {} firmware); {} flash erases, {} bytes written; OTP minimum {}",
                summary.id,
                summary.version,
                summary.boot,
                summary.check_ins,
                summary.installs,
                summary.traffic.total(),
                summary.traffic.checkin_sent + summary.traffic.checkin_received,
                summary.traffic.metadata_sent + summary.traffic.metadata_received,
                summary.traffic.target_sent + summary.traffic.target_received,
                summary.flash_erases,
                summary.flash_bytes_written,
                summary.otp_min_security_counter,
            );
        }
        Ok(())
    }

    /// Run and return the summary.
    pub fn drive(&self) -> Result<Summary, SimError> {
        std::fs::create_dir_all(&self.state_dir).map_err(|source| SimError::Io {
            what: "cannot create the state directory",
            path: self.state_dir.clone(),
            source,
        })?;
        let flash_path = self.state_dir.join("flash.bin");
        let lock_path = self.state_dir.join("lock.json");
        let mut net = HttpNet::new(&self.server);
        let clock = match self.clock {
            ClockMode::Real => Clock::real(),
            ClockMode::Virtual => Clock::virtual_at(match &self.start {
                Some(text) => super::fleet_cmd::parse_start(text)?,
                None => Clock::real().now(),
            }),
        };

        let (device, lock) = if flash_path.exists() {
            let lock: LockFile =
                serde_json::from_slice(&read(&lock_path, "cannot read lock.json")?)
                    .map_err(|e| lock_err(format!("lock.json: {e}")))?;
            if let Some(asked) = self.boot
                && asked != lock.boot
            {
                return Err(lock_err(format!(
                    "{} holds a lock made with --boot {}: its flash is laid out for that mode and cannot run as --boot {asked}; leave out --boot (the saved mode is used) or give a new --state-dir",
                    self.state_dir.display(),
                    lock.boot
                )));
            }
            if lock.otp && !Device::otp_path(&flash_path).exists() {
                return Err(lock_err(format!(
                    "{} is missing: the lock's OTP (its anti-rollback floor) was saved there; a lock without it is not this lock",
                    Device::otp_path(&flash_path).display()
                )));
            }
            let anchors = anchors_from_hex(&lock.anchors, lock.threshold)?;
            let model =
                HardwareModel::new(&lock.model).map_err(|e| lock_err(format!("model: {e}")))?;
            let layout = lock.boot.reference();
            (Device::load(&flash_path, layout, model, anchors)?, lock)
        } else {
            self.first_run(&mut net, &clock, &lock_path)?
        };
        device.save(&flash_path)?;
        let mut files = device.files()?;
        if self.register {
            let agent_pub = {
                let a = Agent::open(
                    &device.flash,
                    device.config,
                    &mut files,
                    &mut net,
                    SimHardware::new(clock.clone()),
                    AgentConfig::new(&lock.id),
                )?;
                a.public_key()
            };
            admin(
                &net,
                &self.token,
                "POST",
                "/admin/v1/devices",
                serde_json::json!({"id": lock.id, "hardware_model": lock.model,
                                   "public_key": hex::encode(agent_pub)}),
            )?;
            println!("{}: registered", lock.id);
        }

        let mut hw = SimHardware::new(clock.clone());
        if let Some(v) = &self.fail_self_test_on {
            hw.failing.push((v.clone(), SelfTestFailure::Motor));
        }
        let report = device.boot()?;
        hw.running = report.image.header().version.to_string();
        let mut summary = Summary {
            id: lock.id.clone(),
            boot: lock.boot,
            version: hw.running.clone(),
            check_ins: 0,
            installs: 0,
            self_test_failures: 0,
            traffic: Traffic::default(),
            flash_erases: 0,
            flash_bytes_written: 0,
            otp_min_security_counter: 0,
            otp_anchors_version: 0,
            check_in_log: Vec::new(),
        };
        let before = device.stats();
        let mut agent = Agent::open(
            &device.flash,
            device.config,
            &mut files,
            &mut net,
            hw,
            AgentConfig::new(&lock.id),
        )?;
        self.after_boot(&mut agent, &device, &mut summary)?;
        for round in 0..self.check_ins {
            if round > 0 {
                self.wait(&mut agent, self.interval)?;
            }
            summary.check_ins += 1;
            match check_in(&mut agent, &mut summary) {
                Ok(CheckIn::UpToDate) => println!("{}: check-in: up to date", lock.id),
                Ok(CheckIn::Withdrawn) => println!("{}: check-in: assignment withdrawn", lock.id),
                Ok(CheckIn::Assigned { target, patch }) => println!(
                    "{}: check-in: assigned {target}{}",
                    lock.id,
                    if patch { " (patch)" } else { "" }
                ),
                Err(AgentError::Network) => {
                    println!("{}: check-in: server unreachable", lock.id);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            self.stage_and_install(&mut agent, &device, &mut summary)?;
            device.save(&flash_path)?;
            let running = agent.running()?;
            if self
                .until_version
                .as_ref()
                .is_some_and(|v| *v == running.version && !running.trial)
            {
                // One more check-in reports the confirmed install.
                if agent
                    .state()
                    .last_update
                    .as_ref()
                    .is_some_and(|u| u.outcome == agent::wire::Outcome::Confirmed)
                    && round + 1 < self.check_ins
                {
                    summary.check_ins += 1;
                    check_in(&mut agent, &mut summary)?;
                }
                break;
            }
        }
        summary.version = agent.running()?.version;
        drop(agent);
        device.save(&flash_path)?;
        summary.traffic = net.traffic;
        let st = device.stats().since(&before);
        summary.flash_erases = st.erases;
        summary.flash_bytes_written = st.bytes_written;
        let floor = device.otp_floor()?;
        summary.otp_min_security_counter = floor.min_security_counter;
        summary.otp_anchors_version = floor.anchors_version;
        Ok(summary)
    }

    fn first_run(
        &self,
        net: &mut HttpNet,
        clock: &Clock,
        lock_path: &Path,
    ) -> Result<(Device, LockFile), SimError> {
        let id = self
            .id
            .clone()
            .ok_or_else(|| lock_err("the first run needs --id"))?;
        let firmware_path = self
            .firmware
            .as_ref()
            .ok_or_else(|| lock_err("the first run needs --firmware (the factory image)"))?;
        if self.anchors.is_empty() {
            return Err(lock_err(
                "the first run needs --anchor (the firmware signing public key)",
            ));
        }
        let mut keys = Vec::new();
        for a in &self.anchors {
            let k = nightlatch_repo::keys::load_public_key(a)
                .map_err(|e| lock_err(format!("--anchor {}: {e}", a.display())))?;
            keys.push(hex::encode(k.to_bytes()));
        }
        let anchors = anchors_from_hex(&keys, 1)?;
        let firmware = read(firmware_path, "cannot read the factory firmware")?;
        let boot = self.boot.unwrap_or_default();
        let device = Device::factory(boot.reference(), anchors, &firmware)?;
        let model = device.config.model.as_str().to_owned();
        let image_root = match &self.image_root {
            Some(p) => read(p, "cannot read the image root")?,
            None => net
                .fetch_metadata(Repo::Image, "1.root.json", 512_000)
                .map_err(|e| lock_err(format!("cannot fetch the image root: {e:?}")))?,
        };
        let director_root = match &self.director_root {
            Some(p) => read(p, "cannot read the director root")?,
            None => net
                .fetch_metadata(Repo::Director, "1.root.json", 512_000)
                .map_err(|e| lock_err(format!("cannot fetch the director root: {e:?}")))?,
        };
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        {
            let mut files = device.files()?;
            agent::provision(&mut files, &seed, &image_root, &director_root, clock.now())?;
        }
        let lock = LockFile {
            id,
            model,
            anchors: keys,
            threshold: 1,
            boot,
            otp: true,
        };
        std::fs::write(
            lock_path,
            serde_json::to_vec_pretty(&lock).unwrap_or_default(),
        )
        .map_err(|source| SimError::Io {
            what: "cannot write lock.json",
            path: lock_path.to_owned(),
            source,
        })?;
        println!(
            "{}: provisioned ({}, {} boot)",
            lock.id, lock.model, lock.boot
        );
        Ok((device, lock))
    }

    fn after_boot<S: MetadataStore, N: Net>(
        &self,
        agent: &mut Agent<'_, super::device::Flash, S, N, SimHardware>,
        device: &Device,
        summary: &mut Summary,
    ) -> Result<(), SimError> {
        loop {
            match agent.after_boot()? {
                BootOutcome::Normal => return Ok(()),
                BootOutcome::Confirmed { version } => {
                    println!(
                        "{}: running {version}, self-test passed, confirmed",
                        summary.id
                    );
                    return Ok(());
                }
                BootOutcome::Reverted { target } => {
                    println!("{}: {target} was reverted by the bootloader", summary.id);
                    return Ok(());
                }
                BootOutcome::SelfTestFailed(why) => {
                    summary.self_test_failures += 1;
                    println!(
                        "{}: self-test failed ({}); watchdog reset",
                        summary.id,
                        why.code()
                    );
                    let report = device.boot()?;
                    agent.hw.running = report.image.header().version.to_string();
                }
            }
        }
    }

    fn stage_and_install<S: MetadataStore>(
        &self,
        agent: &mut Agent<'_, super::device::Flash, S, &mut HttpNet, SimHardware>,
        device: &Device,
        summary: &mut Summary,
    ) -> Result<(), SimError> {
        let mut retries = 0;
        loop {
            match agent.stage(16) {
                Ok(StageStatus::Idle) => return Ok(()),
                Ok(StageStatus::Downloading { done, total }) => {
                    println!("{}: staging {done}/{total} bytes", summary.id);
                }
                Ok(StageStatus::Staged) => break,
                Ok(StageStatus::Failed(why)) => {
                    println!("{}: staging failed: {why}", summary.id);
                    return Ok(());
                }
                Err(AgentError::Network) if retries < 5 => {
                    retries += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(s) = &agent.state().staging
            && let Some(why) = &s.patch_fallback
        {
            println!(
                "{}: patch not usable ({why}); full image downloaded",
                summary.id
            );
        }
        println!("{}: staged and verified", summary.id);
        loop {
            let profile = UsageProfile::new();
            match agent.decide(&profile, true, None, 5_000) {
                Decision::InstallNow => break,
                Decision::WaitUntil(t) => {
                    let now = agent.hw.clock.now();
                    println!(
                        "{}: quiet-hours scheduler: install in {} s",
                        summary.id,
                        t.saturating_sub(now)
                    );
                    self.wait(agent, t.saturating_sub(now).max(1))?;
                    check_in(agent, summary)?;
                    summary.check_ins += 1;
                }
                Decision::Blocked(why) => {
                    println!("{}: install blocked: {why:?}", summary.id);
                    return Ok(());
                }
            }
        }
        agent.install()?;
        summary.installs += 1;
        println!("{}: installing; reset", summary.id);
        let report = device.boot()?;
        agent.hw.running = report.image.header().version.to_string();
        self.after_boot(agent, device, summary)?;
        // Report the outcome.
        summary.check_ins += 1;
        check_in(agent, summary)?;
        Ok(())
    }

    fn wait<S: MetadataStore, N: Net>(
        &self,
        agent: &mut Agent<'_, super::device::Flash, S, N, SimHardware>,
        secs: u64,
    ) -> Result<(), SimError> {
        match &agent.hw.clock {
            super::device::Clock::Real(_) => {
                std::thread::sleep(Duration::from_secs(secs));
                Ok(())
            }
            super::device::Clock::Virtual(_) => {
                let net = HttpNet::new(&self.server);
                admin(
                    &net,
                    &self.token,
                    "POST",
                    "/admin/v1/clock",
                    serde_json::json!({"advance_secs": secs}),
                )?;
                let now = agent.hw.clock.now();
                agent.hw.clock.set(now + secs);
                Ok(())
            }
        }
    }
}

fn anchors_from_hex(keys: &[String], threshold: u8) -> Result<TrustAnchors, SimError> {
    let mut raw = Vec::new();
    for k in keys {
        let b: [u8; 32] = hex::decode(k)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| lock_err("lock.json: bad anchor key"))?;
        raw.push(b);
    }
    TrustAnchors::new(1, threshold, &raw).map_err(|e| lock_err(format!("anchors: {e:?}")))
}
