//! `release list|show` over `GET /admin/v1/releases`.

use serde_json::Value;

use crate::Ctx;
use crate::cli::ReleaseCmd;
use crate::client::Query;
use crate::cmd::opt;
use crate::error::{CliError, CliResult};
use crate::output::{cell, text};

fn patches_text(r: &Value) -> String {
    let from: Vec<String> = r["patches"]
        .as_array()
        .map(|ps| ps.iter().map(|p| cell(p, "from_version")).collect())
        .unwrap_or_default();
    if from.is_empty() {
        "-".into()
    } else {
        format!("from {}", from.join(", "))
    }
}

/// `release …`.
pub fn run(ctx: &Ctx, c: ReleaseCmd) -> CliResult<()> {
    let client = ctx.client()?;
    match c {
        ReleaseCmd::List { model } => {
            let mut q: Query = Vec::new();
            opt(&mut q, "model", model);
            let v = client.get("/admin/v1/releases", &q)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx.out.table(&[
                "NAME",
                "MODEL",
                "VERSION",
                "COUNTER",
                "BYTES",
                "PATCHES",
                "PUBLISHED",
            ]);
            for r in v["releases"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(r, "name"),
                    cell(r, "hardware_model"),
                    cell(r, "version"),
                    cell(r, "security_counter"),
                    cell(r, "length"),
                    patches_text(r),
                    cell(r, "published_at"),
                ]);
            }
            ctx.out.print_table(&t)
        }
        ReleaseCmd::Show { name } => {
            // The release's model narrows the catalog read.
            let mut q: Query = Vec::new();
            opt(&mut q, "model", name.split_once('/').map(|(m, _)| m));
            let all = client.get("/admin/v1/releases", &q)?;
            let r = all["releases"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["name"].as_str() == Some(name.as_str()))
                .cloned()
                .ok_or_else(|| {
                    CliError::NotFound(format!(
                        "no published release {name} (see `nightlatch release list`)"
                    ))
                })?;
            if ctx.out.json {
                return ctx.out.json(&r);
            }
            let mut summary = r.clone();
            if let Value::Object(m) = &mut summary {
                m.remove("patches");
            }
            ctx.out.print_fields(&summary)?;
            let patches = r["patches"].as_array().cloned().unwrap_or_default();
            ctx.out.section(&format!("Patches ({})", patches.len()))?;
            let mut t = ctx.out.table(&["PATCH", "FROM", "BYTES"]);
            for p in &patches {
                t.add_row(vec![
                    cell(p, "name"),
                    cell(p, "from_version"),
                    text(&p["length"]),
                ]);
            }
            if patches.is_empty() {
                t.add_row(vec!["-".to_owned(), "-".into(), "-".into()]);
            }
            ctx.out.print_table(&t)
        }
    }
}
