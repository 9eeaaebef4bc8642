//! `rollout show ID --watch`: wave progress every `--interval` seconds until
//! the rollout stops running.
//!
//! On a terminal the table is redrawn in place; otherwise one line is
//! printed per change (a log a pipeline can keep); with `--json`, one
//! compact JSON document (the API's answer) per change.
//!
//! The watch ends when the rollout is
//! * **paused** or **aborted** (exit 1: a pipeline waiting on it fails), or
//!   still a **draft** (exit 1: nothing to watch yet);
//! * **complete** (exit 0): its last wave is in force, at least one lock
//!   took part, no lock it assigned is still on its way (every one
//!   `confirmed`, `failed` or `rolled_back`), and — when the last wave takes
//!   every eligible lock (share 100 %, no group filter) — no lock of the
//!   model still runs a version it would update (older than the target and,
//!   if `from_versions` is set, one of them) other than the ones that
//!   failed it.

use std::time::Duration;

use serde_json::Value;

use crate::Ctx;
use crate::client::{Client, segment};
use crate::cmd::rollout::{status_columns, waves_table};
use crate::error::{CliError, CliResult};
use crate::output::{cell, write_stdout};

/// Statuses that end a lock's part in a rollout.
const DONE: [&str; 3] = ["confirmed", "failed", "rolled_back"];

/// Why a watch stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Every wave complete.
    Complete,
    /// Paused, with the reason.
    Paused(String),
    /// Aborted, with the reason.
    Aborted(String),
    /// Never started.
    Draft,
}

fn count(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn version(s: &str) -> Option<(u64, u64, u64)> {
    let mut it = s.split('.').map(|p| p.parse::<u64>().ok());
    let v = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(v)
}

/// Whether (and how) the watch of rollout `r` (`GET /admin/v1/rollouts/{id}`) ends.
pub fn finish(r: &Value) -> Option<Finish> {
    let reason = || cell(r, "state_reason");
    match r["state"].as_str() {
        Some("running") => {}
        Some("paused") => return Some(Finish::Paused(reason())),
        Some("aborted") => return Some(Finish::Aborted(reason())),
        Some("draft") => return Some(Finish::Draft),
        Some("completed" | "complete" | "done") => return Some(Finish::Complete),
        _ => return None,
    }
    let waves = r["waves"].as_array()?;
    let last = waves.len().checked_sub(1)?;
    if r["current_wave"].as_u64() != Some(last as u64) {
        return None;
    }
    let (mut total, mut done, mut failed) = (0, 0, 0);
    for w in waves {
        for (status, n) in w["devices"].as_object()?.iter() {
            let n = count(n);
            total += n;
            if DONE.contains(&status.as_str()) {
                done += n;
            }
            if status == "failed" || status == "rolled_back" {
                failed += n;
            }
        }
    }
    if total == 0 || done < total {
        return None;
    }
    let takes_all = waves[last]["share"].as_f64().is_some_and(|s| s >= 1.0)
        && r["groups"].as_array().is_none_or(Vec::is_empty);
    if takes_all {
        let target = r["target_version"].as_str().and_then(version)?;
        let from: Vec<&str> = r["from_versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let left: i64 = r["fleet_by_version"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| {
                v["version"].as_str().is_some_and(|s| {
                    version(s).is_some_and(|x| x < target) && (from.is_empty() || from.contains(&s))
                })
            })
            .map(|v| count(&v["count"]))
            .sum();
        if left > failed {
            return None;
        }
    }
    Some(Finish::Complete)
}

/// One line of progress: state, wave, and per wave the count per status.
pub fn progress_line(r: &Value) -> String {
    let cols = status_columns(r);
    let waves = r["waves"].as_array().map_or(0, Vec::len);
    let mut line = format!(
        "{} {} wave {}/{}",
        cell(r, "id"),
        cell(r, "state"),
        r["current_wave"]
            .as_u64()
            .map_or("-".into(), |w| w.to_string()),
        waves.saturating_sub(1)
    );
    for w in r["waves"].as_array().into_iter().flatten() {
        line.push_str(&format!(" | w{}", cell(w, "index")));
        for c in &cols {
            line.push_str(&format!(" {c}={}", count(&w["devices"][c.as_str()])));
        }
    }
    line
}

fn now_text() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Watch rollout `id`.
pub fn watch(ctx: &Ctx, client: &Client, id: &str, interval: f64) -> CliResult<()> {
    if !(interval.is_finite() && interval > 0.0 && interval <= 3600.0) {
        return Err(CliError::usage(
            "--interval must be above 0 and at most 3600 seconds",
        ));
    }
    let path = format!("/admin/v1/rollouts/{}", segment(id)?);
    let mut last = String::new();
    let mut drawn = 0usize;
    loop {
        let r = client.get(&path, &Vec::new())?;
        let line = progress_line(&r);
        let changed = line != last;
        if ctx.out.json {
            if changed {
                write_stdout(&format!("{r}\n"))?;
            }
        } else if ctx.out.tty {
            let waves = waves_table(&ctx.out, &r);
            let width = waves.width().map(usize::from).filter(|w| *w > 0);
            let table = waves.to_string();
            let text = format!(
                "{} · {} · {} · wave {} · ok {} · failed {}{}\n{table}\nupdated {}\n",
                cell(&r, "id"),
                cell(&r, "name"),
                cell(&r, "target"),
                cell(&r, "current_wave"),
                cell(&r, "successes"),
                cell(&r, "failures"),
                match r["state"].as_str() {
                    Some("running") => String::new(),
                    _ => format!(" · {}", cell(&r, "state")),
                },
                now_text()
            );
            // Up to the first line drawn last time, clear to the end, redraw.
            let clear = if drawn > 0 {
                format!("\x1b[{drawn}F\x1b[J")
            } else {
                String::new()
            };
            // Screen rows, counting lines the terminal wraps.
            drawn = text
                .lines()
                .map(|l| width.map_or(1, |w| l.chars().count().max(1).div_ceil(w)))
                .sum();
            write_stdout(&format!("{clear}{text}"))?;
        } else if changed {
            write_stdout(&format!("{} {line}\n", now_text()))?;
        }
        last = line;
        match finish(&r) {
            None => std::thread::sleep(Duration::from_secs_f64(interval)),
            Some(Finish::Complete) => {
                eprintln!(
                    "rollout {id} complete: {} confirmed, {} failed",
                    cell(&r, "successes"),
                    cell(&r, "failures")
                );
                return Ok(());
            }
            Some(Finish::Paused(why)) => {
                return Err(CliError::other(format!("rollout {id} is paused: {why}")));
            }
            Some(Finish::Aborted(why)) => {
                return Err(CliError::other(format!("rollout {id} was aborted: {why}")));
            }
            Some(Finish::Draft) => {
                return Err(CliError::other(format!(
                    "rollout {id} is a draft: start it with `nightlatch rollout start {id}`"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(state: &str, wave: u64, devices: Value, fleet: Value) -> Value {
        json!({"id": "ro-1", "state": state, "state_reason": "why", "current_wave": wave,
               "target_version": "2.0.0", "from_versions": [], "groups": [],
               "waves": [{"index": 0, "share": 0.5, "devices": {"assigned": 0, "confirmed": 1}},
                         {"index": 1, "share": 1.0, "devices": devices}],
               "fleet_by_version": fleet})
    }

    #[test]
    fn when_a_watch_ends() {
        let done =
            json!({"assigned": 0, "installed": 0, "confirmed": 2, "failed": 1, "rolled_back": 0});
        let fleet = json!([{"version": "1.0.0", "count": 1}, {"version": "2.0.0", "count": 3}]);
        assert_eq!(
            finish(&rollout("running", 1, done.clone(), fleet.clone())),
            Some(Finish::Complete)
        );
        // Not on the last wave yet.
        assert_eq!(
            finish(&rollout("running", 0, done.clone(), fleet.clone())),
            None
        );
        // A lock still on its way.
        let busy = json!({"assigned": 1, "confirmed": 2});
        assert_eq!(finish(&rollout("running", 1, busy, fleet.clone())), None);
        // More old locks left than failed ones: some have not checked in.
        let more = json!([{"version": "1.0.0", "count": 5}]);
        assert_eq!(finish(&rollout("running", 1, done.clone(), more)), None);
        assert_eq!(
            finish(&rollout("paused", 1, done.clone(), fleet.clone())),
            Some(Finish::Paused("why".into()))
        );
        assert_eq!(
            finish(&rollout("aborted", 0, done.clone(), fleet.clone())),
            Some(Finish::Aborted("why".into()))
        );
        assert_eq!(
            finish(&rollout("draft", 0, done, fleet)),
            Some(Finish::Draft)
        );
    }

    #[test]
    fn one_line_per_state() {
        let r = rollout(
            "running",
            1,
            json!({"assigned": 3, "confirmed": 0}),
            json!([]),
        );
        let l = progress_line(&r);
        assert!(l.starts_with("ro-1 running wave 1/1"), "{l}");
        assert!(l.contains("| w1 assigned=3 confirmed=0"), "{l}");
    }
}
