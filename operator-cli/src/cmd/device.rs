//! `device list|show|history|revoke|import`.

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::{DeviceCmd, DeviceListArgs};
use crate::client::{Client, Query, segment};
use crate::cmd::{all_pages, opt, read_input};
use crate::error::{CliError, CliResult};
use crate::output::cell;

/// The locks of an import file: a JSON array, an object `{"devices": […]}`,
/// one object, or JSON lines (one object per line; blank lines skipped).
pub fn parse_import(text: &str) -> CliResult<Vec<Value>> {
    let devices = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(a)) => a,
        Ok(Value::Object(mut m)) => match m.remove("devices") {
            Some(Value::Array(a)) => a,
            Some(_) => return Err(CliError::usage("`devices` must be an array")),
            None => vec![Value::Object(m)],
        },
        Ok(_) => {
            return Err(CliError::usage(
                "expected JSON lines or a JSON array of locks",
            ));
        }
        Err(_) => {
            let mut out = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(line).map_err(|e| {
                    CliError::usage(format!("line {}: not a JSON object: {e}", i + 1))
                })?;
                out.push(v);
            }
            out
        }
    };
    if devices.is_empty() {
        return Err(CliError::usage("the file lists no locks"));
    }
    if let Some(i) = devices.iter().position(|d| !d.is_object()) {
        return Err(CliError::usage(format!(
            "lock {} is not an object {{id, hardware_model, public_key, site?, groups?}}",
            i + 1
        )));
    }
    Ok(devices)
}

fn list(ctx: &Ctx, client: &Client, a: DeviceListArgs) -> CliResult<()> {
    let mut q: Query = Vec::new();
    opt(&mut q, "prefix", a.prefix);
    opt(&mut q, "model", a.model);
    opt(&mut q, "version", a.version);
    opt(&mut q, "group", a.group);
    opt(&mut q, "site", a.site);
    opt(&mut q, "status", a.status);
    if let Some(days) = a.stale {
        if !(days.is_finite() && (0.0..36_500.0).contains(&days)) {
            return Err(CliError::usage("--stale must be between 0 and 36500 days"));
        }
        let before = SystemTime::now()
            .checked_sub(Duration::from_secs_f64(days * 86_400.0))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        q.push((
            "seen_before",
            humantime::format_rfc3339_millis(before).to_string(),
        ));
    }
    opt(&mut q, "limit", a.limit);
    opt(&mut q, "after", a.after);
    let path = "/admin/v1/devices";
    let mut v = client.get(path, &q)?;
    if a.all {
        v = all_pages(client, path, &q, "devices", v)?;
    }
    if ctx.out.json {
        return ctx.out.json(&v);
    }
    let devices = v["devices"].as_array().cloned().unwrap_or_default();
    let mut t = ctx.out.table(&[
        "ID",
        "MODEL",
        "VERSION",
        "SITE",
        "STATUS",
        "LAST SEEN",
        "ROLLOUT",
    ]);
    for d in &devices {
        t.add_row(vec![
            cell(d, "id"),
            cell(d, "hardware_model"),
            cell(d, "firmware.version"),
            cell(d, "site"),
            cell(d, "status"),
            cell(d, "last_seen"),
            cell(d, "rollout.id"),
        ]);
    }
    ctx.out.print_table(&t)?;
    let total = v["total"].as_u64().unwrap_or(0);
    let capped = v["total_capped"].as_bool().unwrap_or(false);
    if !a.all && (devices.len() as u64) < total {
        eprintln!(
            "{} of {}{} lock(s) shown; next page: --after {} (or --all)",
            devices.len(),
            total,
            if capped { "+" } else { "" },
            devices.last().map(|d| cell(d, "id")).unwrap_or_default()
        );
    }
    Ok(())
}

/// `device …`.
pub fn run(ctx: &Ctx, c: DeviceCmd) -> CliResult<()> {
    let client = ctx.client()?;
    match c {
        DeviceCmd::List(a) => list(ctx, &client, a),
        DeviceCmd::Show { id } => {
            let v = client.get(&format!("/admin/v1/devices/{}", segment(&id)?), &Vec::new())?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
        DeviceCmd::History { id, limit, before } => {
            let mut q: Query = Vec::new();
            opt(&mut q, "limit", limit);
            opt(&mut q, "before", before);
            let v = client.get(&format!("/admin/v1/devices/{}/history", segment(&id)?), &q)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx.out.table(&["AT", "EVENT", "DETAIL"]);
            for e in v["events"].as_array().into_iter().flatten() {
                t.add_row(vec![cell(e, "at"), cell(e, "kind"), cell(e, "detail")]);
            }
            ctx.out.print_table(&t)
        }
        DeviceCmd::Revoke { id, reason } => {
            let path = format!("/admin/v1/devices/{}/revoke", segment(&id)?);
            ctx.confirm(&format!(
                "Revoke lock {id}? Its check-ins will be refused from now on"
            ))?;
            let v = client.post(&path, &json!({ "reason": reason }))?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
        DeviceCmd::Import { file } => {
            let devices = parse_import(&read_input(&file)?)?;
            let n = devices.len();
            eprintln!("importing {n} lock(s) (all or none)…");
            let v = client.post("/admin/v1/devices/import", &json!({ "devices": devices }))?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_formats() {
        let line = r#"{"id":"a","hardware_model":"m","public_key":"k"}"#;
        assert_eq!(parse_import(line).unwrap().len(), 1);
        assert_eq!(
            parse_import(&format!("{line}\n\n{line}\n")).unwrap().len(),
            2
        );
        assert_eq!(parse_import(&format!("[{line},{line}]")).unwrap().len(), 2);
        assert_eq!(
            parse_import(&format!("{{\"devices\": [{line}]}}"))
                .unwrap()
                .len(),
            1
        );
        assert!(parse_import("[]").is_err());
        assert!(parse_import("[1]").is_err());
        let e = parse_import(&format!("{line}\nnot json\n")).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
