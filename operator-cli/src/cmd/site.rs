//! `site list|show|set`.

use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::SiteCmd;
use crate::client::segment;
use crate::error::{CliError, CliResult};
use crate::output::{Out, cell};

fn hhmm(t: &str) -> bool {
    let b = t.as_bytes();
    t.is_ascii()
        && b.len() == 5
        && b[2] == b':'
        && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && t[3..].parse::<u8>().is_ok_and(|m| m < 60)
}

/// `HH:MM-HH:MM` as `{start, end}`.
pub fn parse_window(s: &str) -> CliResult<Value> {
    let (a, b) = s
        .split_once('-')
        .map(|(a, b)| (a.trim(), b.trim()))
        .filter(|(a, b)| hhmm(a) && hhmm(b))
        .ok_or_else(|| {
            CliError::usage(format!(
                "--window {s:?}: give HH:MM-HH:MM in local time, e.g. 01:00-05:00 (or none)"
            ))
        })?;
    Ok(json!({ "start": a, "end": b }))
}

/// `YYYY-MM-DD,…` as a list.
pub fn parse_dates(s: &str) -> CliResult<Vec<String>> {
    let mut out = Vec::new();
    for d in s.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let b = d.as_bytes();
        let ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !ok {
            return Err(CliError::usage(format!(
                "--blackout: {d:?} is not a date YYYY-MM-DD"
            )));
        }
        out.push(d.to_owned());
    }
    Ok(out)
}

fn window_text(p: &Value) -> String {
    match (
        p["quiet_hours"]["start"].as_str(),
        p["quiet_hours"]["end"].as_str(),
    ) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "-".into(),
    }
}

fn print_policy(out: &Out, p: &Value) -> CliResult<()> {
    out.print_fields(&json!({
        "quiet_hours": window_text(p),
        "time_zone": p["time_zone"],
        "blackout_dates": p["blackout_dates"],
    }))
}

/// `site …`.
pub fn run(ctx: &Ctx, c: SiteCmd) -> CliResult<()> {
    let client = ctx.client()?;
    match c {
        SiteCmd::List => {
            let v = client.get("/admin/v1/sites", &Vec::new())?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx
                .out
                .table(&["SITE", "QUIET HOURS", "TIME ZONE", "BLACKOUT DATES"]);
            for s in v["sites"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(s, "site"),
                    window_text(&s["policy"]),
                    cell(s, "policy.time_zone"),
                    cell(s, "policy.blackout_dates"),
                ]);
            }
            ctx.out.print_table(&t)
        }
        SiteCmd::Show { site } => {
            let v = client.get(
                &format!("/admin/v1/sites/{}/policy", segment(&site)?),
                &Vec::new(),
            )?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            print_policy(&ctx.out, &v)
        }
        SiteCmd::Set {
            site,
            window,
            tz,
            blackout,
        } => {
            if window.is_none() && tz.is_none() && blackout.is_none() {
                return Err(CliError::usage(
                    "nothing to set: give --window, --tz and/or --blackout",
                ));
            }
            let path = format!("/admin/v1/sites/{}/policy", segment(&site)?);
            // Parse every flag before changing anything.
            let window = window
                .map(|w| {
                    if w == "none" {
                        Ok(Value::Null)
                    } else {
                        parse_window(&w)
                    }
                })
                .transpose()?;
            let blackout = blackout
                .map(|b| {
                    if b == "none" {
                        Ok(Vec::new())
                    } else {
                        parse_dates(&b)
                    }
                })
                .transpose()?;
            let mut p = client.get(&path, &Vec::new())?;
            if !p.is_object() {
                p = json!({});
            }
            if let Some(w) = window {
                p["quiet_hours"] = w;
            }
            if let Some(tz) = tz {
                p["time_zone"] = if tz == "none" { Value::Null } else { json!(tz) };
            }
            if let Some(b) = blackout {
                p["blackout_dates"] = json!(b);
            }
            if let Value::Object(m) = &mut p {
                m.retain(|_, v| !v.is_null());
            }
            let v = client.call(reqwest::Method::PUT, &path, &Vec::new(), Some(&p))?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            eprintln!("site {site}: install policy set");
            print_policy(&ctx.out, &v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_dates() {
        assert_eq!(
            parse_window("23:30-05:00").unwrap(),
            json!({"start": "23:30", "end": "05:00"})
        );
        assert!(parse_window("1:00-5:00").is_err());
        assert!(parse_window("01:00").is_err());
        assert!(parse_window("25:00-01:00").is_err());
        assert_eq!(
            parse_dates("2030-12-24, 2030-12-25").unwrap(),
            vec!["2030-12-24", "2030-12-25"]
        );
        assert!(parse_dates("24.12.2030").is_err());
    }
}
