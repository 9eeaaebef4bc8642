//! `audit list|export` (security-admin).

use std::io::Write;

use crate::Ctx;
use crate::cli::{AuditCmd, AuditFilter};
use crate::client::Query;
use crate::cmd::{all_pages, opt};
use crate::error::{CliError, CliResult};
use crate::output::cell;

fn query(f: AuditFilter) -> Query {
    let mut q: Query = Vec::new();
    opt(&mut q, "actor", f.actor);
    opt(&mut q, "token_id", f.token_id);
    opt(&mut q, "action", f.action);
    opt(&mut q, "since", f.since);
    opt(&mut q, "until", f.until);
    opt(&mut q, "after", f.after);
    opt(&mut q, "limit", f.limit);
    q
}

/// stdout for a streamed download: a closed pipe ends the process quietly.
struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::io::stdout().lock().write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            r => r,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match std::io::stdout().lock().flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            r => r,
        }
    }
}

/// `audit …`.
pub fn run(ctx: &Ctx, c: AuditCmd) -> CliResult<()> {
    let client = ctx.client()?;
    let path = "/admin/v1/audit";
    match c {
        AuditCmd::List { filter, all } => {
            let q = query(filter);
            let mut v = client.get(path, &q)?;
            if all {
                v = all_pages(&client, path, &q, "entries", v)?;
            }
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx
                .out
                .table(&["ID", "AT", "ACTOR", "ROLE", "ACTION", "SUBJECT", "DETAIL"]);
            let entries = v["entries"].as_array().cloned().unwrap_or_default();
            for e in &entries {
                t.add_row(vec![
                    cell(e, "id"),
                    cell(e, "at"),
                    cell(e, "actor"),
                    cell(e, "role"),
                    cell(e, "action"),
                    cell(e, "subject"),
                    cell(e, "detail"),
                ]);
            }
            ctx.out.print_table(&t)?;
            if let (false, Some(n)) = (all, v["next_after"].as_str()) {
                eprintln!(
                    "{} entries shown; next page: --after {n} (or --all)",
                    entries.len()
                );
            }
            Ok(())
        }
        AuditCmd::Export { filter, output } => {
            let q = query(filter);
            if ctx.out.json {
                // JSON: every matching entry, page by page.
                let first = client.get(path, &q)?;
                let v = all_pages(&client, path, &q, "entries", first)?;
                let text = serde_json::to_string_pretty(&v)
                    .map_err(|e| CliError::other(format!("cannot encode JSON: {e}")))?;
                return match &output {
                    Some(p) => std::fs::write(p, format!("{text}\n"))
                        .map_err(|e| CliError::other(format!("cannot write {}: {e}", p.display()))),
                    None => ctx.out.json(&v),
                };
            }
            let export = "/admin/v1/audit/export";
            let headers = match &output {
                Some(p) => {
                    let mut f = std::fs::File::create(p).map_err(|e| {
                        CliError::other(format!("cannot create {}: {e}", p.display()))
                    })?;
                    let h = client.download(export, &q, &mut f)?;
                    f.sync_all().map_err(|e| {
                        CliError::other(format!("cannot write {}: {e}", p.display()))
                    })?;
                    eprintln!("audit log written to {}", p.display());
                    h
                }
                None => client.download(export, &q, &mut Stdout)?,
            };
            if headers
                .get("x-nightlatch-truncated")
                .is_some_and(|v| v == "true")
            {
                eprintln!(
                    "warning: the export stopped at its row limit and more entries match; \
                     continue with --after <the last id exported>"
                );
            }
            Ok(())
        }
    }
}
