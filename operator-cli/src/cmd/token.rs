//! `token create|list|revoke` (security-admin).

use serde_json::json;

use crate::Ctx;
use crate::cli::TokenCmd;
use crate::client::segment;
use crate::error::CliResult;
use crate::output::cell;

/// `token …`.
pub fn run(ctx: &Ctx, c: TokenCmd) -> CliResult<()> {
    let client = ctx.client()?;
    match c {
        TokenCmd::Create { name, role } => {
            let v = client.post("/admin/v1/tokens", &json!({ "name": name, "role": role }))?;
            eprintln!(
                "token {} created; its secret is shown this once: keep it in a secret store \
                 (`nightlatch login` reads it from stdin)",
                cell(&v, "id")
            );
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
        TokenCmd::List => {
            let v = client.get("/admin/v1/tokens", &Vec::new())?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx
                .out
                .table(&["ID", "NAME", "ROLE", "CREATED", "CREATED BY", "REVOKED"]);
            for k in v["tokens"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(k, "id"),
                    cell(k, "name"),
                    cell(k, "role"),
                    cell(k, "created_at"),
                    cell(k, "created_by"),
                    cell(k, "revoked_at"),
                ]);
            }
            ctx.out.print_table(&t)
        }
        TokenCmd::Revoke { id } => {
            let path = format!("/admin/v1/tokens/{}", segment(&id)?);
            ctx.confirm(&format!(
                "Revoke token {id}? Everything using it will be refused from now on"
            ))?;
            let v = client.call(reqwest::Method::DELETE, &path, &Vec::new(), None)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
    }
}
