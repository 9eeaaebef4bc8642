//! `nightlatch-sim fleet` and `nightlatch-sim demo`.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::device::Boot;
use super::error::SimError;
use crate::fleet::{Faults, Fleet, FleetConfig, Policy, Report, Scenario, TEST_START};

const DAY: u64 = 86_400;

fn err(message: impl Into<String>) -> SimError {
    SimError::Lock {
        message: message.into(),
    }
}

/// Rehearse a rollout on a virtual fleet against a real server.
#[derive(Debug, Args)]
pub struct FleetArgs {
    /// Number of locks.
    #[arg(long, default_value_t = 1000)]
    pub locks: usize,
    /// Virtual days to run after the rollout starts.
    #[arg(long, default_value_t = 7.0)]
    pub days: f64,
    /// When locks install.
    #[arg(long, value_enum, default_value_t = Policy::QuietHours)]
    pub policy: Policy,
    /// Boot mode of every lock (reference board layout): `swap` copies the
    /// update into ACTIVE page by page; `ab` maps the verified slot.
    #[arg(long, value_enum, default_value_t = Boot::Swap)]
    pub boot: Boot,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hours between check-ins.
    #[arg(long, default_value_t = 4.0)]
    pub checkin_hours: f64,
    /// Probability that a firmware range request drops.
    #[arg(long, default_value_t = 0.02)]
    pub wifi_drop: f64,
    /// Share of locks whose power is cut during their install boot (the
    /// swap, or the A/B slot switch).
    #[arg(long, default_value_t = 0.01)]
    pub power_cut: f64,
    /// Share of locks with a dead battery.
    #[arg(long, default_value_t = 0.005)]
    pub dead_battery: f64,
    /// Share of locks with a skewed clock.
    #[arg(long, default_value_t = 0.05)]
    pub clock_skew: f64,
    /// Rollout waves (cumulative shares, canary first).
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.1,0.5,1.0")]
    pub waves: Vec<f64>,
    /// Soak time of each wave (e.g. `12h`).
    #[arg(long, default_value = "12h")]
    pub soak: String,
    /// Parallel HTTP connections (worker threads). More of them let the
    /// server batch more check-ins at once: 10,000 locks × 3 days took
    /// 182 s with 24 against 210 s with 8, and 10 % less CPU.
    #[arg(long, default_value_t = 24)]
    pub workers: usize,
    /// The agents' install downtime estimate, seconds: the quiet slot their
    /// scheduler looks for (and the fixed-window baseline's margin). Each
    /// install's actual downtime is modelled from what it did and reported.
    #[arg(long, default_value_t = 90)]
    pub downtime: u64,
    /// Keep the locks' agent files in memory instead of on their simulated
    /// flash (no sequential-storage work per check-in; the files of a lock
    /// on flash are what a real lock does, and the default).
    #[arg(long)]
    pub files_in_memory: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Firmware payloads (raw images) for the factory release 1.0.0 and the
    /// rolled-out 1.1.0, e.g. a real release pair:
    /// `--images ../shared/firmware-corpus/nuki-hub-esp32/8.11.bin,../shared/firmware-corpus/nuki-hub-esp32/8.12.bin`.
    /// Default: generated payloads of 200 KiB.
    #[arg(long, value_delimiter = ',', value_name = "OLD,NEW")]
    pub images: Vec<std::path::PathBuf>,
    /// Virtual start (`YYYY-MM-DDTHH:MM:SSZ`, Unix seconds, or `today` for
    /// today's 00:00 UTC). Default: Monday 2030-01-07 00:00 UTC, so a run
    /// gives the same figures whatever day it is run on.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
}

impl FleetArgs {
    /// Run and print the report.
    pub fn run(self) -> Result<(), SimError> {
        let report = self.simulate()?;
        print_report(&report, self.json);
        Ok(())
    }

    /// The virtual start: `--start`, else [`TEST_START`] (a fixed Monday).
    pub fn start_time(&self) -> Result<u64, SimError> {
        start_time(self.start.as_deref())
    }

    /// Run; the report.
    pub fn simulate(&self) -> Result<Report, SimError> {
        let t0 = self.start_time()?;
        let stage = |what: &str| {
            if !self.quiet && !self.json {
                eprintln!("{what}");
            }
        };
        stage("starting nightlatch-server (SQLite, local blobs, manual clock) on loopback…");
        let images = match self.images.as_slice() {
            [] => None,
            [old, new] => {
                let read = |p: &std::path::PathBuf| {
                    std::fs::read(p).map_err(|e| err(format!("--images {}: {e}", p.display())))
                };
                Some((read(old)?, read(new)?))
            }
            _ => return Err(err("--images takes two files: OLD,NEW")),
        };
        let scenario = Scenario::with_factory(
            &["nl-lock-v2"],
            t0,
            images.as_ref().map(|(old, _)| old.as_slice()),
        )
        .map_err(err)?;
        stage(&format!(
            "  key ceremony (UNSAFE dev keys, as `nightlatch-keys init --dev`): image and director roots in {}",
            scenario.server.data_dir.join("keys").display()
        ));
        stage("signing release 1.1.0, making patches from 1.0.0, publishing with the release key…");
        let release = match &images {
            Some((_, new)) => scenario.build_from("1.1.0", 2, new),
            None => scenario.build("1.1.0", 2, 1, &[]),
        }
        .map_err(err)?;
        scenario
            .publish(&release, Some(&scenario.factory))
            .map_err(err)?;
        if let (Some(old), Some(new)) = (
            scenario.factory.image("nl-lock-v2"),
            release.image("nl-lock-v2"),
        ) {
            let patch = crate::harness::patch(old, new).map_err(err)?;
            stage(&format!(
                "  nl-lock-v2 1.1.0: image {} bytes, patch from 1.0.0 {} bytes",
                new.len(),
                patch.len()
            ));
        }
        stage(&format!(
            "provisioning and registering {} locks ({} boot)…",
            self.locks, self.boot
        ));
        let config = FleetConfig {
            locks: self.locks,
            policy: self.policy,
            seed: self.seed,
            faults: Faults {
                wifi_drop: self.wifi_drop,
                power_cut_swap: self.power_cut,
                dead_battery: self.dead_battery,
                clock_skew: self.clock_skew,
            },
            checkin_interval: (self.checkin_hours * 3600.0) as u64,
            workers: self.workers,
            layout: self.boot.reference(),
            downtime_secs: self.downtime,
            files_on_flash: !self.files_in_memory,
            ..FleetConfig::default()
        };
        let mut fleet = Fleet::new(&scenario, config).map_err(err)?;
        let id = scenario
            .rollout(&release, "nl-lock-v2", &self.waves, &self.soak, 0.05, 20)
            .map_err(err)?;
        stage(&format!(
            "rollout {id} started: waves {:?}, soak {}",
            self.waves, self.soak
        ));
        let ticks = (self.days * DAY as f64 / 60.0) as u64;
        let pb = if self.quiet || self.json {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::new(ticks);
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} virtual {msg} [{bar:40}] {percent}% ({elapsed} wall)",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        };
        let start = fleet.now;
        let end = start + ticks * 60;
        let mut newest = BTreeMap::new();
        newest.insert("nl-lock-v2".to_owned(), release.version.clone());
        let mut next_day = start + DAY;
        while fleet.now < end {
            let step_end = (fleet.now + 3 * 3600).min(end);
            fleet.run_until(&scenario, step_end, None);
            pb.set_position((fleet.now - start) / 60);
            let r = fleet.report(&newest);
            if fleet.now >= next_day && !self.quiet && !self.json {
                let status = scenario.rollout_status(&id).map_err(err)?;
                let line = format!(
                    "day {:.0}: {:.1} % of locks on 1.1.0, {} installs ({:.2} s mean downtime, {} boot), {} reverts, {} entry attempts hit; rollout {}",
                    (fleet.now - start) as f64 / DAY as f64,
                    r.updated_fraction * 100.0,
                    r.installs,
                    r.downtime_mean_s,
                    r.boot,
                    r.reverts,
                    r.entry_attempts_hit,
                    status["state"].as_str().unwrap_or("?"),
                );
                if pb.is_hidden() {
                    eprintln!("{line}");
                } else {
                    pb.println(line);
                }
                next_day += DAY;
            }
            pb.set_message(format!(
                "day {:.1}, {:.1} % updated, {} installs",
                (fleet.now - start) as f64 / DAY as f64,
                r.updated_fraction * 100.0,
                r.installs
            ));
        }
        pb.finish_and_clear();
        let mut report = fleet.report(&newest);
        let batches = &scenario.server.state().metrics.checkin_batch;
        report.server_batches = batches.get_sample_count();
        report.server_batch_mean = batches.get_sample_sum() / report.server_batches.max(1) as f64;
        Ok(report)
    }
}

/// Print a report as a table or JSON.
pub fn print_report(r: &Report, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
        return;
    }
    let rows: Vec<(&str, String)> = vec![
        ("locks", r.locks.to_string()),
        ("virtual days", format!("{:.1}", r.virtual_days)),
        ("policy", format!("{:?}", r.policy)),
        ("boot mode", r.boot.to_string()),
        ("updated", format!("{:.2} %", r.updated_fraction * 100.0)),
        ("installs", r.installs.to_string()),
        (
            "downtime per install (modelled, typical)",
            format!(
                "mean {:.2} s, p99 {:.2} s, max {:.2} s (agent's estimate {} s)",
                r.downtime_mean_s, r.downtime_p99_s, r.downtime_max_s, r.downtime_estimate_secs
            ),
        ),
        ("reverts", r.reverts.to_string()),
        ("bricked", r.bricked.to_string()),
        (
            "entry attempts hit by an install",
            format!("{} of {}", r.entry_attempts_hit, r.entry_attempts),
        ),
        (
            "hits per 10,000 installs",
            format!("{:.1}", r.hits_per_10k_installs),
        ),
        ("check-ins", r.check_ins.to_string()),
        ("usage summaries sent", r.usage_reports.to_string()),
        ("staged via patch", r.patched.to_string()),
        (
            "patch → full image fallbacks",
            r.patch_fallbacks.to_string(),
        ),
        (
            "power cuts in an install boot, recovered",
            r.power_cuts_recovered.to_string(),
        ),
        (
            "installs held back by battery",
            r.battery_blocked.to_string(),
        ),
        ("bytes on air", r.bytes_on_air.to_string()),
        (
            "firmware bytes on air",
            format!(
                "{} ({:.0} per lock updated)",
                r.firmware_bytes_on_air, r.firmware_bytes_per_update
            ),
        ),
        ("wall seconds", format!("{:.1}", r.wall_seconds)),
        ("CPU seconds", format!("{:.1}", r.cpu_seconds)),
        (
            "server check-in batches",
            format!(
                "{} ({:.1} check-ins each)",
                r.server_batches, r.server_batch_mean
            ),
        ),
        (
            "peak RSS",
            format!("{:.0} MiB", r.peak_rss_bytes as f64 / 1048576.0),
        ),
        (
            "flash held at the end",
            format!(
                "{:.0} MiB in sectors ({:.0} MiB only one lock holds), {:.0} MiB packed; {:.1} KiB per lock",
                r.flash_held_bytes as f64 / 1048576.0,
                r.flash_single_bytes as f64 / 1048576.0,
                r.flash_packed_bytes as f64 / 1048576.0,
                (r.flash_single_bytes + r.flash_packed_bytes) as f64
                    / 1024.0
                    / r.locks.max(1) as f64
            ),
        ),
    ];
    let w = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
    for (v, n) in &r.versions {
        println!("{:<w$}  {n}", format!("running {v}"));
    }
    for (lock, why) in r.reverted.iter().take(10) {
        println!("{:<w$}  {lock}: {why}", "install reverted");
    }
    for h in r.hit_installs.iter().take(10) {
        println!(
            "{:<w$}  {} ({} {}, {}) at {} local, {:.1} s down: {} attempt(s)",
            "install that hit an entry",
            h.lock,
            h.profile.as_str(),
            h.variant,
            h.zone,
            h.local_start,
            h.downtime_s,
            h.attempts_hit
        );
    }
}

/// `--start`: a time, `today` (00:00 UTC), or by default [`TEST_START`].
fn start_time(text: Option<&str>) -> Result<u64, SimError> {
    match text {
        None => Ok(TEST_START),
        Some("today") => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            / DAY
            * DAY),
        Some(text) => parse_start(text),
    }
}

/// A `--start` time: `YYYY-MM-DDTHH:MM:SSZ` or Unix seconds.
pub(crate) fn parse_start(text: &str) -> Result<u64, SimError> {
    text.parse::<u64>()
        .ok()
        .or_else(|| lock_app::tuf::parse_utc(text))
        .ok_or_else(|| SimError::Time {
            option: "--start",
            text: text.to_owned(),
        })
}

/// The whole system on a small fleet, in about a minute: key ceremony (dev
/// keys), sign, patch, publish, a staged rollout on a few hundred simulated
/// locks over three virtual days, and the report.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of locks.
    #[arg(long, default_value_t = 300)]
    pub locks: usize,
    /// Virtual days.
    #[arg(long, default_value_t = 3.0)]
    pub days: f64,
    /// Boot mode of every lock (as `nightlatch-sim fleet --boot`).
    #[arg(long, value_enum, default_value_t = Boot::Swap)]
    pub boot: Boot,
    /// Virtual start, as `nightlatch-sim fleet --start` (default: Monday
    /// 2030-01-07 00:00 UTC, the same run every day).
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl DemoArgs {
    /// Run.
    pub fn run(self) -> Result<(), SimError> {
        eprintln!(
            "Nightlatch demo: a real nightlatch-server on loopback (SQLite, local files, manual clock), \
             {} simulated locks (the real lock agent and bootloader on simulated flash), {} virtual days.",
            self.locks, self.days
        );
        let args = FleetArgs {
            locks: self.locks,
            days: self.days,
            policy: Policy::QuietHours,
            boot: self.boot,
            seed: 7,
            checkin_hours: 4.0,
            wifi_drop: 0.02,
            power_cut: 0.02,
            dead_battery: 0.0,
            clock_skew: 0.05,
            waves: vec![0.02, 0.2, 0.6, 1.0],
            soak: "6h".into(),
            workers: 8,
            downtime: 90,
            files_in_memory: false,
            images: Vec::new(),
            json: self.json,
            quiet: false,
            start: self.start,
        };
        let report = args.simulate()?;
        if !self.json {
            eprintln!();
        }
        print_report(&report, self.json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{DAY, FleetArgs};
    use crate::fleet::TEST_START;
    use crate::sim::SimError;
    use crate::sim::device::Boot;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        fleet: FleetArgs,
    }

    fn start(args: &[&str]) -> Result<u64, SimError> {
        let cli = Cli::try_parse_from(std::iter::once("fleet").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        cli.fleet.start_time()
    }

    #[test]
    fn boot_is_swap_unless_ab_is_asked_for() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("fleet").chain(args.iter().copied()))
                .map(|c| c.fleet.boot)
        };
        assert_eq!(parse(&[]).unwrap(), Boot::Swap);
        assert_eq!(parse(&["--boot", "ab"]).unwrap(), Boot::Ab);
        assert_eq!(parse(&["--boot", "swap"]).unwrap(), Boot::Swap);
        assert!(parse(&["--boot", "xip"]).is_err());
        assert_eq!(Boot::Ab.reference().mode, bootloader::layout::BootMode::Ab);
        assert_eq!(
            Boot::Ab.reference().max_envelope(),
            Boot::Swap.reference().max_envelope()
        );
    }

    #[test]
    fn start_is_given_today_or_a_fixed_monday() {
        for given in ["2030-01-07T00:00:00Z", "1893974400"] {
            assert_eq!(start(&["--start", given]).unwrap(), TEST_START, "{given}");
        }
        assert_eq!(start(&[]).unwrap(), TEST_START);
        let today = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / DAY
            * DAY;
        let got = start(&["--start", "today"]).unwrap();
        // Unless midnight UTC passed between the two readings.
        assert!(got == today || got == today + DAY, "{got}");
        assert!(matches!(
            start(&["--start", "next monday"]),
            Err(SimError::Time {
                option: "--start",
                ..
            })
        ));
    }
}
