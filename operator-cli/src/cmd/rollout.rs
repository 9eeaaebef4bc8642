//! `rollout create|preview|list|show|devices|start|pause|resume|abort`.

use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::cli::{RolloutCmd, RolloutSpecArgs, TransitionArgs};
use crate::client::{Client, Query, segment};
use crate::cmd::{all_pages, opt, read_input};
use crate::error::{CliError, CliResult};
use crate::output::{Out, cell, text};

/// A share: `2%` or `0.02`, in (0, 1].
pub fn parse_share(what: &str, s: &str) -> CliResult<f64> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| CliError::usage(format!("{what} {s:?}: give a share as 2% or 0.02")))?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(CliError::usage(format!(
            "{what} {s:?}: must be above 0 and at most 100%"
        )));
    }
    Ok(v)
}

/// A wave `SHARE[:SOAK]` as the API takes it.
pub fn parse_wave(s: &str) -> CliResult<Value> {
    let (share, soak) = match s.split_once(':') {
        Some((a, b)) => (a, Some(b.trim())),
        None => (s, None),
    };
    let mut w = json!({ "share": parse_share("--wave", share)? });
    if let Some(soak) = soak {
        if soak.is_empty() {
            return Err(CliError::usage(format!(
                "--wave {s:?}: give the soak after the colon, e.g. 2%:1d"
            )));
        }
        w["min_soak"] = json!(soak);
    }
    Ok(w)
}

/// The body of `POST /admin/v1/rollouts` (and of the preview).
pub fn spec_body(a: &RolloutSpecArgs, create: bool) -> CliResult<Value> {
    if let Some(file) = &a.file {
        let text = read_input(file)?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::usage(format!("{}: not a JSON object: {e}", file.display())))?;
        if !v.is_object() {
            return Err(CliError::usage(format!(
                "{}: expected a JSON object (the rollout body)",
                file.display()
            )));
        }
        return Ok(v);
    }
    if !create && a.start {
        return Err(CliError::usage(
            "--start is for `rollout create`; a preview creates nothing",
        ));
    }
    let mut m = Map::new();
    m.insert("name".into(), json!(a.name));
    m.insert("target".into(), json!(a.target));
    if !a.from_versions.is_empty() {
        m.insert("from_versions".into(), json!(a.from_versions));
    }
    if !a.groups.is_empty() {
        m.insert("groups".into(), json!(a.groups));
    }
    if !a.waves.is_empty() {
        let waves = a
            .waves
            .iter()
            .map(|w| parse_wave(w))
            .collect::<CliResult<Vec<_>>>()?;
        m.insert("waves".into(), Value::Array(waves));
    }
    if let (Some(rate), Some(n)) = (&a.failure_rate, a.min_sample) {
        m.insert(
            "failure_threshold".into(),
            json!({"rate": parse_share("--failure-rate", rate)?, "min_sample": n}),
        );
    }
    if let Some(t) = &a.start_at {
        m.insert("start_at".into(), json!(t));
    }
    if let Some(t) = &a.deadline {
        m.insert("security_deadline".into(), json!(t));
    }
    if create && a.start {
        m.insert("start".into(), json!(true));
    }
    Ok(Value::Object(m))
}

fn path(id: &str) -> CliResult<String> {
    Ok(format!("/admin/v1/rollouts/{}", segment(id)?))
}

fn percent(v: &Value) -> String {
    match v.as_f64() {
        Some(f) => {
            let p = f * 100.0;
            if (p - p.round()).abs() < 1e-9 {
                format!("{}%", p.round())
            } else {
                format!("{p:.2}%")
            }
        }
        None => text(v),
    }
}

/// Rollout summary rows (`list` and the top of `show`).
fn print_rollout_list(out: &Out, v: &Value) -> CliResult<()> {
    let mut t = out.table(&[
        "ID", "NAME", "TARGET", "STATE", "WAVE", "OK", "FAILED", "CREATED",
    ]);
    for r in v["rollouts"].as_array().into_iter().flatten() {
        t.add_row(vec![
            cell(r, "id"),
            cell(r, "name"),
            cell(r, "target"),
            cell(r, "state"),
            cell(r, "current_wave"),
            cell(r, "successes"),
            cell(r, "failures"),
            cell(r, "created_at"),
        ]);
    }
    out.print_table(&t)
}

/// Statuses shown per wave, in this order when present; any other status
/// the server reports is appended.
pub const STATUS_ORDER: [&str; 6] = [
    "assigned",
    "staged",
    "installed",
    "confirmed",
    "failed",
    "rolled_back",
];

/// The status columns of a rollout's waves: [`STATUS_ORDER`] filtered to
/// what the server reports, then any others.
pub fn status_columns(r: &Value) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for w in r["waves"].as_array().into_iter().flatten() {
        if let Some(m) = w["devices"].as_object() {
            for k in m.keys() {
                if !seen.contains(k) {
                    seen.push(k.clone());
                }
            }
        }
    }
    let mut cols: Vec<String> = STATUS_ORDER
        .iter()
        .filter(|s| seen.iter().any(|k| k == *s))
        .map(|s| (*s).to_owned())
        .collect();
    for k in seen {
        if !cols.contains(&k) {
            cols.push(k);
        }
    }
    cols
}

/// The per-wave progress table of `GET /admin/v1/rollouts/{id}`.
pub fn waves_table(out: &Out, r: &Value) -> comfy_table::Table {
    let cols = status_columns(r);
    let mut headers: Vec<String> = vec!["WAVE".into(), "SHARE".into(), "STATE".into()];
    headers.extend(
        cols.iter()
            .map(|c| c.to_ascii_uppercase().replace('_', " ")),
    );
    headers.push("STARTED".into());
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = out.table(&refs);
    for w in r["waves"].as_array().into_iter().flatten() {
        let mut row = vec![cell(w, "index"), percent(&w["share"]), cell(w, "state")];
        for c in &cols {
            row.push(w["devices"][c.as_str()].as_i64().unwrap_or(0).to_string());
        }
        row.push(cell(w, "started_at"));
        t.add_row(row);
    }
    t
}

/// `rollout show` without `--watch`.
pub fn print_show(out: &Out, r: &Value) -> CliResult<()> {
    let mut summary = Map::new();
    for k in [
        "id",
        "name",
        "target",
        "state",
        "state_reason",
        "current_wave",
        "successes",
        "failures",
        "failure_threshold",
        "from_versions",
        "groups",
        "start_at",
        "security_deadline",
        "created_at",
        "created_by",
    ] {
        summary.insert(k.into(), r[k].clone());
    }
    out.print_fields(&Value::Object(summary))?;
    out.section("Waves")?;
    out.print_table(&waves_table(out, r))?;
    out.section("Fleet of the model by version")?;
    let mut t = out.table(&["VERSION", "LOCKS"]);
    for v in r["fleet_by_version"].as_array().into_iter().flatten() {
        t.add_row(vec![cell(v, "version"), cell(v, "count")]);
    }
    out.print_table(&t)
}

fn print_preview(out: &Out, v: &Value) -> CliResult<()> {
    let mut t = out.table(&[
        "WAVE",
        "SHARE",
        "STARTS",
        "ELIGIBLE",
        "NIGHTS (date: locks)",
        "UNSCHEDULED",
        "DOOR OPENINGS AT RISK",
    ]);
    for w in v["waves"].as_array().into_iter().flatten() {
        let nights: Vec<String> = w["nights"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| format!("{}: {}", cell(n, "date"), cell(n, "locks")))
            .collect();
        t.add_row(vec![
            cell(w, "index"),
            percent(&w["share"]),
            cell(w, "starts_at"),
            cell(w, "eligible"),
            if nights.is_empty() {
                "-".into()
            } else {
                nights.join(", ")
            },
            cell(w, "unscheduled"),
            cell(w, "expected_door_openings"),
        ]);
    }
    out.print_table(&t)?;
    eprintln!("{} eligible lock(s) in all", cell(v, "eligible"));
    Ok(())
}

fn transition(
    ctx: &Ctx,
    client: &Client,
    verb: &str,
    id: &str,
    reason: Option<&str>,
) -> CliResult<()> {
    let body = match reason {
        Some(r) => json!({ "reason": r }),
        None => json!({}),
    };
    let v = client.post(&format!("{}/{verb}", path(id)?), &body)?;
    if ctx.out.json {
        return ctx.out.json(&v);
    }
    eprintln!("rollout {id}: {verb} done, now {}", cell(&v, "state"));
    print_rollout_list(&ctx.out, &json!({ "rollouts": [v] }))
}

/// `rollout …`.
pub fn run(ctx: &Ctx, c: RolloutCmd) -> CliResult<()> {
    let client = ctx.client()?;
    match c {
        RolloutCmd::Create(a) => {
            let body = spec_body(&a, true)?;
            let v = client.post("/admin/v1/rollouts", &body)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            eprintln!(
                "created rollout {} ({}){}",
                cell(&v, "id"),
                cell(&v, "state"),
                if v["state"] == "draft" {
                    format!(
                        "; start it with `nightlatch rollout start {}`",
                        cell(&v, "id")
                    )
                } else {
                    String::new()
                }
            );
            print_rollout_list(&ctx.out, &json!({ "rollouts": [v] }))
        }
        RolloutCmd::Preview(a) => {
            let body = spec_body(&a, false)?;
            let v = client.post("/admin/v1/rollouts/preview", &body)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            print_preview(&ctx.out, &v)
        }
        RolloutCmd::List { limit } => {
            let mut q: Query = Vec::new();
            opt(&mut q, "limit", limit);
            let v = client.get("/admin/v1/rollouts", &q)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            print_rollout_list(&ctx.out, &v)
        }
        RolloutCmd::Show(a) => {
            if a.watch {
                return crate::watch::watch(ctx, &client, &a.id, a.interval);
            }
            let v = client.get(&path(&a.id)?, &Vec::new())?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            print_show(&ctx.out, &v)
        }
        RolloutCmd::Devices {
            id,
            status,
            limit,
            after,
            all,
        } => {
            let p = format!("{}/devices", path(&id)?);
            let mut q: Query = Vec::new();
            if !status.is_empty() {
                q.push(("status", status.join(",")));
            }
            opt(&mut q, "limit", limit);
            opt(&mut q, "after", after);
            let mut v = client.get(&p, &q)?;
            if all {
                v = all_pages(&client, &p, &q, "devices", v)?;
            }
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx
                .out
                .table(&["LOCK", "WAVE", "STATUS", "DELIVERY", "REASON", "UPDATED"]);
            for d in v["devices"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(d, "id"),
                    cell(d, "wave"),
                    cell(d, "status"),
                    cell(d, "delivery"),
                    cell(d, "reason"),
                    cell(d, "updated_at"),
                ]);
            }
            ctx.out.print_table(&t)?;
            if let Some(n) = v["next_after"].as_str() {
                eprintln!("more locks: --after {n} (or --all)");
            }
            Ok(())
        }
        RolloutCmd::Start(TransitionArgs { id, reason }) => {
            transition(ctx, &client, "start", &id, reason.as_deref())
        }
        RolloutCmd::Pause(TransitionArgs { id, reason }) => {
            transition(ctx, &client, "pause", &id, reason.as_deref())
        }
        RolloutCmd::Resume(TransitionArgs { id, reason }) => {
            transition(ctx, &client, "resume", &id, reason.as_deref())
        }
        RolloutCmd::Abort { id, reason } => {
            ctx.confirm(&format!(
                "Abort rollout {id} for good? Locks that have not installed will not get it"
            ))?;
            transition(ctx, &client, "abort", &id, Some(&reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_waves() {
        assert_eq!(parse_share("s", "2%").unwrap(), 0.02);
        assert_eq!(parse_share("s", "0.5").unwrap(), 0.5);
        assert_eq!(parse_share("s", "100%").unwrap(), 1.0);
        assert!(parse_share("s", "0").is_err());
        assert!(parse_share("s", "150%").is_err());
        assert!(parse_share("s", "abc").is_err());
        assert_eq!(
            parse_wave("2%:1d").unwrap(),
            json!({"share": 0.02, "min_soak": "1d"})
        );
        assert_eq!(parse_wave("1").unwrap(), json!({"share": 1.0}));
        assert!(parse_wave("2%:").is_err());
    }

    #[test]
    fn status_columns_follow_the_server() {
        let r = json!({"waves": [{"devices": {"assigned": 1, "confirmed": 2, "failed": 0,
            "installed": 0, "rolled_back": 0, "mystery": 1}}]});
        assert_eq!(
            status_columns(&r),
            vec![
                "assigned",
                "installed",
                "confirmed",
                "failed",
                "rolled_back",
                "mystery"
            ]
        );
        assert_eq!(percent(&json!(0.02)), "2%");
        assert_eq!(percent(&json!(0.125)), "12.50%");
    }
}
