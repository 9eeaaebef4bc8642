//! `token create|list|revoke` (security-admin).

use serde_json::{Value, json};

use crate::Ctx;
use crate::cli::TokenCmd;
use crate::client::segment;
use crate::error::{CliError, CliResult};
use crate::output::cell;

/// The body of `POST /admin/v1/tokens`: `expires_in` only when given,
/// checked here as a lifetime (`30d`, `12h`, `1d 12h`; not zero). The
/// server takes the same text and caps it (at most 10 years).
pub fn create_body(name: &str, role: &str, expires_in: Option<&str>) -> CliResult<Value> {
    let mut body = json!({ "name": name, "role": role });
    if let Some(e) = expires_in {
        let text = e.trim();
        let d = humantime::parse_duration(text).map_err(|err| {
            CliError::usage(format!(
                "--expires-in {e:?} is not a duration ({err}); give e.g. 30d or 12h"
            ))
        })?;
        if d.is_zero() {
            return Err(CliError::usage(format!(
                "--expires-in {e:?}: a token must live longer than zero (leave the flag out for \
                 a token that lives until revoked)"
            )));
        }
        body["expires_in"] = json!(text);
    }
    Ok(body)
}

/// A token's expiry as table text: the time, `never` when it has none,
/// and `(expired)` after a time already past by this machine's clock.
pub fn expiry_text(t: &Value) -> String {
    match t["expires_at"].as_str() {
        None => "never".into(),
        Some(at) => match humantime::parse_rfc3339_weak(at) {
            Ok(when) if when <= std::time::SystemTime::now() => format!("{at} (expired)"),
            _ => at.to_owned(),
        },
    }
}

/// `token …`.
pub fn run(ctx: &Ctx, c: TokenCmd) -> CliResult<()> {
    match c {
        TokenCmd::Create {
            name,
            role,
            expires_in,
        } => {
            let body = create_body(&name, &role, expires_in.as_deref())?;
            let v = ctx.client()?.post("/admin/v1/tokens", &body)?;
            let lifetime = match v["expires_at"].as_str() {
                Some(at) => format!("it expires at {at}"),
                None => "it lives until revoked".into(),
            };
            eprintln!(
                "token {} created ({lifetime}); its secret is shown this once: keep it in a \
                 secret store (`nightlatch login` reads it from stdin)",
                cell(&v, "id")
            );
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut shown = v.clone();
            shown["expires_at"] = json!(expiry_text(&v));
            ctx.out.print_fields(&shown)
        }
        TokenCmd::List => {
            let v = ctx.client()?.get("/admin/v1/tokens", &Vec::new())?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx.out.table(&[
                "ID",
                "NAME",
                "ROLE",
                "CREATED",
                "CREATED BY",
                "EXPIRES",
                "REVOKED",
            ]);
            for k in v["tokens"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(k, "id"),
                    cell(k, "name"),
                    cell(k, "role"),
                    cell(k, "created_at"),
                    cell(k, "created_by"),
                    expiry_text(k),
                    cell(k, "revoked_at"),
                ]);
            }
            ctx.out.print_table(&t)
        }
        TokenCmd::Revoke { id } => {
            let client = ctx.client()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_and_expiry_text() {
        assert_eq!(
            create_body("ann", "viewer", None).unwrap(),
            json!({"name": "ann", "role": "viewer"})
        );
        assert_eq!(
            create_body("ann", "viewer", Some(" 30d ")).unwrap(),
            json!({"name": "ann", "role": "viewer", "expires_in": "30d"})
        );
        assert_eq!(
            create_body("ann", "viewer", Some("1d 12h")).unwrap()["expires_in"],
            "1d 12h"
        );
        for bad in ["soon", "0s", "0d", "-1h", ""] {
            assert_eq!(
                create_body("ann", "viewer", Some(bad))
                    .unwrap_err()
                    .exit_code(),
                2,
                "{bad:?}"
            );
        }
        assert_eq!(expiry_text(&json!({"expires_at": null})), "never");
        assert_eq!(expiry_text(&json!({})), "never");
        assert_eq!(
            expiry_text(&json!({"expires_at": "2999-01-01T00:00:00Z"})),
            "2999-01-01T00:00:00Z"
        );
        assert_eq!(
            expiry_text(&json!({"expires_at": "2001-01-01T00:00:00Z"})),
            "2001-01-01T00:00:00Z (expired)"
        );
    }
}
