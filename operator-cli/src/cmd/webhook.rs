//! `webhook create|list|show|test|deliveries|rotate-secret|enable|delete`
//! over `/admin/v1/webhooks` (reads: operator; changes: security-admin).

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::Ctx;
use crate::cli::WebhookCmd;
use crate::client::{Query, segment};
use crate::cmd::opt;
use crate::error::{CliError, CliResult};
use crate::output::cell;

/// A webhook URL must be an absolute `http(s)://` URL (the server checks
/// the rest: where it resolves to, its own rules).
pub fn check_url(url: &str) -> CliResult<()> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        CliError::usage(format!(
            "--url {url:?} is not a URL ({e}); give e.g. https://alerts.example.com/nightlatch"
        ))
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(CliError::usage(format!(
            "--url {url:?} must be an http:// or https:// URL"
        )));
    }
    Ok(())
}

/// The body of `POST /admin/v1/webhooks`: events and description only when
/// given (the server's default is every event).
pub fn create_body(url: &str, events: &[String], description: Option<&str>) -> CliResult<Value> {
    check_url(url)?;
    let events: Vec<&str> = events
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    let mut m = Map::new();
    m.insert("url".into(), json!(url.trim()));
    if !events.is_empty() {
        m.insert("events".into(), json!(events));
    }
    if let Some(d) = description {
        m.insert("description".into(), json!(d));
    }
    Ok(Value::Object(m))
}

/// The body of `POST …/rotate-secret`: `{"overlap"}` when given, checked
/// as a duration (`24h`, `90m`, `1d 12h`).
pub fn rotate_body(overlap: Option<&str>) -> CliResult<Value> {
    match overlap {
        None => Ok(json!({})),
        Some(o) => {
            humantime::parse_duration(o.trim()).map_err(|e| {
                CliError::usage(format!(
                    "--overlap {o:?} is not a duration ({e}); give e.g. 24h or 90m"
                ))
            })?;
            Ok(json!({ "overlap": o.trim() }))
        }
    }
}

/// `yes`, or `no` with the reason the server disabled it.
fn enabled_text(w: &Value) -> String {
    match w["enabled"].as_bool() {
        Some(true) => "yes".into(),
        Some(false) => match w["disabled_reason"].as_str() {
            Some(r) if !r.is_empty() => format!("no: {r}"),
            _ => "no".into(),
        },
        None => "-".into(),
    }
}

/// `webhook …`.
pub fn run(ctx: &Ctx, c: WebhookCmd) -> CliResult<()> {
    let base = "/admin/v1/webhooks";
    let one = |id: &str| -> CliResult<String> { Ok(format!("{base}/{}", segment(id)?)) };
    match c {
        WebhookCmd::Create {
            url,
            events,
            description,
        } => {
            let body = create_body(&url, &events, description.as_deref())?;
            let v = ctx.client()?.post(base, &body)?;
            eprintln!(
                "webhook {} created; its signing secret is shown this once: keep it in the \
                 receiver's secret store (rotate it with `nightlatch webhook rotate-secret`)",
                cell(&v, "id")
            );
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
        WebhookCmd::List => {
            let v = ctx.client()?.get(base, &Vec::new())?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx.out.table(&[
                "ID",
                "URL",
                "EVENTS",
                "ENABLED",
                "FAILURES",
                "DESCRIPTION",
                "CREATED",
            ]);
            for w in v["webhooks"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(w, "id"),
                    cell(w, "url"),
                    cell(w, "events"),
                    enabled_text(w),
                    cell(w, "consecutive_failures"),
                    cell(w, "description"),
                    cell(w, "created_at"),
                ]);
            }
            ctx.out.print_table(&t)
        }
        WebhookCmd::Show { id } => {
            let v = ctx.client()?.get(&one(&id)?, &Vec::new())?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
        WebhookCmd::Test { id } => {
            let path = format!("{}/test", one(&id)?);
            let v = ctx.client()?.call(Method::POST, &path, &Vec::new(), None)?;
            eprintln!(
                "{} event {} queued for webhook {id}; `nightlatch webhook deliveries {id}` shows \
                 the attempts",
                cell(&v, "type"),
                cell(&v, "event_id")
            );
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
        WebhookCmd::Deliveries { id, limit } => {
            let mut q: Query = Vec::new();
            opt(&mut q, "limit", limit);
            let v = ctx
                .client()?
                .get(&format!("{}/deliveries", one(&id)?), &q)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            let mut t = ctx.out.table(&[
                "AT",
                "EVENT",
                "TYPE",
                "ATTEMPT",
                "STATUS",
                "LATENCY MS",
                "OUTCOME",
                "ERROR",
            ]);
            for d in v["deliveries"].as_array().into_iter().flatten() {
                t.add_row(vec![
                    cell(d, "at"),
                    cell(d, "event_id"),
                    cell(d, "event_type"),
                    cell(d, "attempt"),
                    cell(d, "status_code"),
                    cell(d, "latency_ms"),
                    cell(d, "outcome"),
                    cell(d, "error"),
                ]);
            }
            ctx.out.print_table(&t)
        }
        WebhookCmd::RotateSecret { id, overlap } => {
            let path = format!("{}/rotate-secret", one(&id)?);
            let body = rotate_body(overlap.as_deref())?;
            let client = ctx.client()?;
            ctx.confirm(&format!(
                "Rotate the signing secret of webhook {id}? The old secret stays valid for {}; \
                 the receiver must take the new one before then",
                overlap
                    .as_deref()
                    .map_or("the server's default overlap", str::trim)
            ))?;
            let v = client.post(&path, &body)?;
            eprintln!(
                "new signing secret of webhook {id}, shown this once; events are signed with \
                 both secrets until {}",
                cell(&v, "previous_secret_expires_at")
            );
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
        WebhookCmd::Enable { id } => {
            let path = format!("{}/enable", one(&id)?);
            let v = ctx.client()?.call(Method::POST, &path, &Vec::new(), None)?;
            if ctx.out.json {
                return ctx.out.json(&v);
            }
            ctx.out.print_fields(&v)
        }
        WebhookCmd::Delete { id } => {
            let path = one(&id)?;
            let client = ctx.client()?;
            ctx.confirm(&format!(
                "Delete webhook {id}? It gets no more events, and its delivery log goes with it"
            ))?;
            let v = client.call(Method::DELETE, &path, &Vec::new(), None)?;
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
    fn bodies_and_checks() {
        let b = create_body("https://a.example/h", &[], None).unwrap();
        assert_eq!(b, json!({"url": "https://a.example/h"}));
        let b = create_body(
            "http://127.0.0.1:9/x",
            &["rollout.paused".into(), " test.ping".into()],
            Some("ops"),
        )
        .unwrap();
        assert_eq!(
            b,
            json!({"url": "http://127.0.0.1:9/x", "events": ["rollout.paused", "test.ping"],
                   "description": "ops"})
        );
        assert!(create_body("ftp://a.example/h", &[], None).is_err());
        assert!(create_body("not a url", &[], None).is_err());
        assert_eq!(rotate_body(None).unwrap(), json!({}));
        assert_eq!(rotate_body(Some("24h")).unwrap(), json!({"overlap": "24h"}));
        assert_eq!(rotate_body(Some("soon")).unwrap_err().exit_code(), 2);
        assert_eq!(
            enabled_text(&json!({"enabled": false, "disabled_reason": "10 failures"})),
            "no: 10 failures"
        );
        assert_eq!(enabled_text(&json!({"enabled": true})), "yes");
    }
}
