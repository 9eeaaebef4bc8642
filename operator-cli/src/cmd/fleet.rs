//! `fleet versions|below-minimum|minimums|set-minimum|stale`.

use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::FleetCmd;
use crate::client::{Query, segment};
use crate::cmd::opt;
use crate::error::{CliError, CliResult};
use crate::output::{Out, cell};

fn print_devices(out: &Out, v: &Value) -> CliResult<()> {
    let mut t = out.table(&["ID", "MODEL", "VERSION", "COUNTER", "LAST SEEN"]);
    for d in v["devices"].as_array().into_iter().flatten() {
        t.add_row(vec![
            cell(d, "id"),
            cell(d, "hardware_model"),
            cell(d, "firmware_version"),
            cell(d, "security_counter"),
            cell(d, "last_seen"),
        ]);
    }
    out.print_table(&t)?;
    eprintln!("{} lock(s)", v["devices"].as_array().map_or(0, Vec::len));
    Ok(())
}

/// `fleet …`.
pub fn run(ctx: &Ctx, c: FleetCmd) -> CliResult<()> {
    let client = ctx.client()?;
    match c {
        FleetCmd::Versions { model } => {
            let mut q: Query = Vec::new();
            opt(&mut q, "model", model);
            let v = client.get("/admin/v1/fleet/versions", &q)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx.out.table(&["MODEL", "VERSION", "LOCKS"]);
            for c in v["counts"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(c, "hardware_model"),
                    cell(c, "firmware_version"),
                    cell(c, "count"),
                ]);
            }
            ctx.out.print_table(&t)
        }
        FleetCmd::BelowMinimum {
            min_version,
            min_security_counter,
            model,
            limit,
        } => {
            let mut q: Query = Vec::new();
            opt(&mut q, "min_version", min_version);
            opt(&mut q, "min_security_counter", min_security_counter);
            opt(&mut q, "model", model);
            opt(&mut q, "limit", limit);
            let v = client.get("/admin/v1/fleet/below-minimum", &q)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            print_devices(&ctx.out, &v)
        }
        FleetCmd::Minimums => {
            let v = client.get("/admin/v1/fleet/minimums", &Vec::new())?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx
                .out
                .table(&["MODEL", "MIN VERSION", "MIN COUNTER", "SET AT", "SET BY"]);
            for m in v["minimums"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(m, "hardware_model"),
                    cell(m, "min_version"),
                    cell(m, "min_security_counter"),
                    cell(m, "set_at"),
                    cell(m, "set_by"),
                ]);
            }
            ctx.out.print_table(&t)
        }
        FleetCmd::SetMinimum {
            model,
            min_version,
            min_security_counter,
            clear,
        } => {
            if !clear && min_version.is_none() && min_security_counter.is_none() {
                return Err(CliError::usage(
                    "give --min-version and/or --min-security-counter, or --clear",
                ));
            }
            let v = client.call(
                reqwest::Method::PUT,
                &format!("/admin/v1/fleet/minimums/{}", segment(&model)?),
                &Vec::new(),
                Some(&json!({
                    "min_version": min_version, "min_security_counter": min_security_counter,
                })),
            )?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx.out.table(&["FIELD", "VALUE"]);
            for k in [
                "hardware_model",
                "min_version",
                "min_security_counter",
                "set_at",
                "set_by",
                "cleared",
            ] {
                if !v[k].is_null() {
                    t.add_row(vec![k.to_owned(), cell(&v, k)]);
                }
            }
            ctx.out.print_table(&t)
        }
        FleetCmd::Stale { days, limit } => {
            let mut q: Query = vec![("days", days.to_string())];
            opt(&mut q, "limit", limit);
            let v = client.get("/admin/v1/fleet/stale", &q)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            print_devices(&ctx.out, &v)
        }
    }
}
