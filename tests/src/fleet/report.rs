//! What a fleet run adds up to: the report and its parts.

use serde::Serialize;

use super::config::Policy;
use super::downtime::DowntimeSummary;
use super::engine::{DAY, Fleet};
use super::usage::Kind;
use crate::sim::device::Boot;

/// Things the report adds up.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Locks simulated.
    pub locks: usize,
    /// Virtual days run.
    pub virtual_days: f64,
    /// Policy.
    pub policy: Policy,
    /// Boot mode of every lock.
    pub boot: Boot,
    /// Share of locks running the newest assigned release, confirmed.
    pub updated_fraction: f64,
    /// Installs requested.
    pub installs: u64,
    /// Modelled downtime per install (typical timings; `fleet::downtime`):
    /// mean (s).
    pub downtime_mean_s: f64,
    /// 99th percentile (nearest rank) of the same (s).
    pub downtime_p99_s: f64,
    /// Longest (s).
    pub downtime_max_s: f64,
    /// The agent's configured downtime estimate (s) its scheduler plans
    /// with.
    pub downtime_estimate_secs: u64,
    /// Installs reverted by the bootloader.
    pub reverts: u64,
    /// Locks without a bootable image.
    pub bricked: u64,
    /// Entry attempts during an install's downtime.
    pub entry_attempts_hit: u64,
    /// Entry attempts in all.
    pub entry_attempts: u64,
    /// Entry attempts hit per 10,000 installs.
    pub hits_per_10k_installs: f64,
    /// Check-ins answered.
    pub check_ins: u64,
    /// Check-ins that carried a usage summary (the first, then on a
    /// material change or a day after the last).
    pub usage_reports: u64,
    /// Installs whose boot lost power part-way, all recovered.
    pub power_cuts_recovered: u64,
    /// Staged through a patch.
    pub patched: u64,
    /// Fell back from the patch to the full image.
    pub patch_fallbacks: u64,
    /// Locks whose battery blocked the install.
    pub battery_blocked: u64,
    /// Agent refusals (attacks, disagreements, network).
    pub refusals: u64,
    /// Locks by their most recent refusal.
    pub refusals_by_kind: std::collections::BTreeMap<String, u64>,
    /// Bytes on air, all locks.
    pub bytes_on_air: u64,
    /// Of those, firmware downloads (patches and full images, requests and
    /// responses).
    pub firmware_bytes_on_air: u64,
    /// Firmware bytes on air per lock that installed the new release.
    pub firmware_bytes_per_update: f64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// CPU seconds the process used (user and system, every thread: the
    /// locks, the load of the loopback network and the server).
    pub cpu_seconds: f64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
    /// Check-in batches the server committed (each one transaction and one
    /// signed time), when known.
    pub server_batches: u64,
    /// Check-ins per server batch, on average.
    pub server_batch_mean: f64,
    /// Flash contents held at the end (sectors other than erased ones,
    /// each held once however many locks share it): bytes.
    pub flash_held_bytes: u64,
    /// Of those, the bytes of sectors only one lock holds (its agent files,
    /// its boot state).
    pub flash_single_bytes: u64,
    /// Flash sectors only one lock held, packed between uses: bytes
    /// (included in neither figure above).
    pub flash_packed_bytes: u64,
    /// Locks per version.
    pub versions: std::collections::BTreeMap<String, u64>,
    /// Locks whose install was reverted (the first 100), and why.
    pub reverted: Vec<(String, String)>,
    /// Installs that hit an entry attempt (the first 100): who, and when
    /// in the lock's local time.
    pub hit_installs: Vec<HitInstall>,
}

/// An install that hit an entry attempt.
#[derive(Debug, Clone, Serialize)]
pub struct HitInstall {
    /// Lock id.
    pub lock: String,
    /// Usage profile.
    pub profile: Kind,
    /// Profile variant (0–9; see `fleet::usage`).
    pub variant: u8,
    /// Time zone.
    pub zone: &'static str,
    /// Local weekday and time the install started (`Sat 03:12`).
    pub local_start: String,
    /// Its modelled downtime (s).
    pub downtime_s: f64,
    /// Entry attempts it hit.
    pub attempts_hit: u64,
}

/// `Www HH:MM` of a local date and time.
fn weekday_time(t: &lock_app::scheduler::tz::LocalDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    format!(
        "{} {:02}:{:02}",
        DAYS[usize::from(t.weekday_mon % 7)],
        t.secs_of_day / 3600,
        t.secs_of_day % 3600 / 60
    )
}

/// User and system CPU seconds of this process so far, all threads
/// (`/proc/self/stat`, in Linux's fixed user tick of 1/100 s); 0 where that
/// cannot be read.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which may hold spaces; utime
            // and stime are the 14th and 15th fields of the whole line.
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some(ticks as f64 / 100.0)
        })
        .unwrap_or(0.0)
}

/// Peak resident set size (VmHWM) of this process.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

impl Fleet {
    /// The report so far.
    pub fn report(&self, newest: &std::collections::BTreeMap<String, String>) -> Report {
        let mut r = Report {
            locks: self.locks.len(),
            virtual_days: (self.now - self.start) as f64 / DAY as f64,
            policy: self.config.policy,
            boot: Boot::of(&self.config.layout),
            updated_fraction: 0.0,
            installs: 0,
            downtime_mean_s: 0.0,
            downtime_p99_s: 0.0,
            downtime_max_s: 0.0,
            downtime_estimate_secs: self.config.downtime_secs,
            reverts: 0,
            bricked: 0,
            entry_attempts_hit: 0,
            entry_attempts: 0,
            hits_per_10k_installs: 0.0,
            check_ins: 0,
            usage_reports: 0,
            power_cuts_recovered: 0,
            patched: 0,
            patch_fallbacks: 0,
            battery_blocked: 0,
            refusals: 0,
            refusals_by_kind: Default::default(),
            bytes_on_air: 0,
            firmware_bytes_on_air: 0,
            firmware_bytes_per_update: 0.0,
            wall_seconds: self.started.elapsed().as_secs_f64(),
            cpu_seconds: cpu_seconds(),
            peak_rss_bytes: peak_rss_bytes(),
            server_batches: 0,
            server_batch_mean: 0.0,
            flash_held_bytes: 0,
            flash_single_bytes: 0,
            flash_packed_bytes: 0,
            versions: Default::default(),
            hit_installs: Vec::new(),
            reverted: Vec::new(),
        };
        let mut updated = 0u64;
        let mut downtimes = Vec::new();
        for l in &self.locks {
            let l = l.lock().unwrap_or_else(|e| e.into_inner());
            let s = &l.stats;
            r.installs += s.installs;
            r.reverts += s.reverts;
            r.bricked += u64::from(s.bricked);
            r.entry_attempts_hit += s.hits;
            r.entry_attempts += s.attempts;
            for i in &s.install_log {
                downtimes.push(i.downtime_ns);
                if i.hits > 0 && r.hit_installs.len() < 100 {
                    r.hit_installs.push(HitInstall {
                        lock: l.id.clone(),
                        profile: l.kind,
                        variant: l.variant,
                        zone: l.tz_name,
                        local_start: weekday_time(&l.tz.local_date_time(i.at as i64)),
                        downtime_s: i.downtime_ns as f64 / 1e9,
                        attempts_hit: i.hits,
                    });
                }
            }
            r.flash_packed_bytes += l.device.flash.lock(|f| f.borrow().packed_bytes()) as u64;
            if let Some(why) = &s.last_revert
                && r.reverted.len() < 100
            {
                r.reverted.push((l.id.clone(), why.clone()));
            }
            r.check_ins += s.check_ins;
            r.usage_reports += s.usage_reports;
            r.power_cuts_recovered += s.power_cuts;
            r.patched += s.patched;
            r.patch_fallbacks += s.patch_fallbacks;
            r.battery_blocked += u64::from(s.battery_blocked);
            r.refusals += s.refusals;
            if let Some(k) = &s.last_refusal {
                *r.refusals_by_kind.entry(k.clone()).or_default() += 1;
            }
            r.bytes_on_air += s.traffic.total();
            r.firmware_bytes_on_air += s.traffic.target_sent + s.traffic.target_received;
            *r.versions
                .entry(format!("{} {}", l.model, l.running))
                .or_default() += 1;
            if newest.get(&l.model).is_some_and(|v| *v == l.running) {
                updated += 1;
            }
        }
        self.pool.prune();
        let held = self.pool.held();
        r.flash_held_bytes = held.bytes as u64;
        r.flash_single_bytes = (held.single * held.bytes / held.sectors.max(1)) as u64;
        r.updated_fraction = updated as f64 / self.locks.len().max(1) as f64;
        r.firmware_bytes_per_update = if updated == 0 {
            0.0
        } else {
            r.firmware_bytes_on_air as f64 / updated as f64
        };
        let d = DowntimeSummary::of(&mut downtimes);
        r.downtime_mean_s = d.mean_s;
        r.downtime_p99_s = d.p99_s;
        r.downtime_max_s = d.max_s;
        r.hits_per_10k_installs = if r.installs == 0 {
            0.0
        } else {
            r.entry_attempts_hit as f64 * 10_000.0 / r.installs as f64
        };
        r
    }
}

#[cfg(test)]
mod tests {
    use super::weekday_time;

    #[test]
    fn weekday_time_of_local_seconds() {
        let utc = lock_app::scheduler::tz::TzRule::parse("UTC0").unwrap();
        assert_eq!(weekday_time(&utc.local_date_time(0)), "Thu 00:00");
        // 2026-11-22 was a Sunday.
        let day = lock_app::scheduler::tz::days_from_civil(2026, 11, 22);
        let t = utc.local_date_time(day * 86_400 + 3 * 3600 + 12 * 60);
        assert_eq!(weekday_time(&t), "Sun 03:12");
        assert_eq!(weekday_time(&utc.local_date_time(-60)), "Wed 23:59");
    }
}
