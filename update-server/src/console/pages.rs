//! The console's pages and forms. Each handler: the session (else the
//! sign-in page), the CSRF token on a POST (else 403), then admin API calls
//! as the signed-in token, then a template.

use std::sync::Arc;

use axum::extract::{Form, Path, Query};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Role;
use crate::console::session::{self, Session};
use crate::console::views::{
    AuditFilter, AuditPage, AuditRow, ConfirmPage, DeviceFilter, DevicePage, DeviceRow,
    DevicesPage, ErrorPage, EventRow, FailedRow, FleetPage, Frame, HealthRow, HeatCell, HeatRow,
    Login, PreviewWave, ReleaseRow, ReleasesPage, RolloutForm, RolloutNewPage, RolloutPage,
    RolloutProgress, RolloutRow, RolloutsPage, SecurityPage, SiteRow, SitesPage, TokenRow,
    VersionRow, WaveRow, int, text,
};
use crate::console::{ApiFailure, Console, render};
use crate::state::AppState;

type C = Extension<Arc<Console>>;

/// Every console route.
pub fn routes(console: Arc<Console>) -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/assets/{file}", get(asset))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/fleet", get(fleet))
        .route("/console/releases", get(releases))
        .route("/console/rollouts", get(rollouts))
        .route(
            "/console/rollouts/new",
            get(rollout_new).post(rollout_submit),
        )
        .route("/console/rollouts/{id}", get(rollout))
        .route("/console/rollouts/{id}/progress", get(rollout_progress))
        .route("/console/rollouts/{id}/confirm", post(rollout_confirm))
        .route("/console/rollouts/{id}/action", post(rollout_action))
        .route("/console/devices", get(devices))
        .route("/console/devices/{id}", get(device))
        .route("/console/devices/{id}/revoke", post(device_revoke))
        .route("/console/sites", get(sites).post(site_set))
        .route("/console/security", get(security))
        .route("/console/tokens", post(token_create))
        .route("/console/tokens/{id}/revoke", post(token_revoke))
        .route("/console/audit", get(audit))
        .route("/console/audit.csv", get(audit_csv))
        .layer(Extension(console))
}

/// The routes open without a session: the way in, and the assets the
/// sign-in page needs.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/console"),
    ("GET", "/console/"),
    ("GET", "/console/assets/{file}"),
    ("GET", "/console/login"),
    ("POST", "/console/login"),
];

/// Every console route that needs a session (for the role × route tests);
/// with [`PUBLIC_ROUTES`], every route [`routes`] mounts (a unit test reads
/// the router's source to hold the two lists to it).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/console/fleet"),
    ("GET", "/console/releases"),
    ("GET", "/console/rollouts"),
    ("GET", "/console/rollouts/new"),
    ("POST", "/console/rollouts/new"),
    ("GET", "/console/rollouts/{id}"),
    ("GET", "/console/rollouts/{id}/progress"),
    ("POST", "/console/rollouts/{id}/confirm"),
    ("POST", "/console/rollouts/{id}/action"),
    ("GET", "/console/devices"),
    ("GET", "/console/devices/{id}"),
    ("POST", "/console/devices/{id}/revoke"),
    ("GET", "/console/sites"),
    ("POST", "/console/sites"),
    ("GET", "/console/security"),
    ("POST", "/console/tokens"),
    ("POST", "/console/tokens/{id}/revoke"),
    ("GET", "/console/audit"),
    ("GET", "/console/audit.csv"),
    ("POST", "/console/logout"),
];

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

fn internal(e: &anyhow::Error) -> Response {
    tracing::error!(error = %format!("{e:#}"), "console");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// The session, or a redirect to the sign-in page.
async fn signed_in(c: &Console, headers: &HeaderMap) -> Result<Session, Response> {
    match session::load(&c.state.store, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(redirect("/console/login")),
        Err(e) => Err(internal(&e)),
    }
}

/// The session of a form POST, its CSRF token checked.
async fn posted(c: &Console, headers: &HeaderMap, csrf: &str) -> Result<Session, Response> {
    let s = signed_in(c, headers).await?;
    match csrf_refusal(&s, csrf) {
        Some(r) => Err(r),
        None => Ok(s),
    }
}

fn frame(s: &Session, title: &str, active: &'static str) -> Frame {
    Frame::new(title, active, &s.caller.name, s.caller.role, &s.csrf)
}

fn error_page(s: &Session, status: StatusCode, code: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            f: frame(s, "Not possible", ""),
            status: format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            code: code.to_owned(),
            message: message.to_owned(),
        },
    )
}

fn api_error(s: &Session, e: &ApiFailure) -> Response {
    error_page(s, e.status, &e.code, &e.message)
}

/// A POST's CSRF token must be the session's: the refusal if it is not.
fn csrf_refusal(s: &Session, given: &str) -> Option<Response> {
    if session::same(&s.csrf, given) {
        None
    } else {
        Some(error_page(
            s,
            StatusCode::FORBIDDEN,
            "csrf",
            "this form is stale or did not come from the console; reload the page and try again",
        ))
    }
}

/// Percent-encode a query value.
fn enc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `k=v&…` of the non-empty pairs.
fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn home(c: C, headers: HeaderMap) -> Response {
    match session::load(&c.state.store, &headers).await {
        Ok(Some(_)) => redirect("/console/fleet"),
        Ok(None) => redirect("/console/login"),
        Err(e) => internal(&e),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "console.css" => (
            include_str!("../../assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("../../assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    (
        [
            (CONTENT_TYPE, kind),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

// --- sign-in ---------------------------------------------------------------

fn login_page(c: &Console, headers: &HeaderMap, status: StatusCode, error: &str) -> Response {
    let csrf = session::random_secret();
    let mut r = render(
        status,
        &Login {
            csrf: csrf.clone(),
            error: error.to_owned(),
        },
    );
    let secure = session::secure(&c.state.config, headers);
    session::add_cookie(
        r.headers_mut(),
        session::set_cookie(session::LOGIN_COOKIE, &csrf, 3600, secure),
    );
    r
}

async fn login_form(c: C, headers: HeaderMap) -> Response {
    match session::load(&c.state.store, &headers).await {
        Ok(Some(_)) => redirect("/console/fleet"),
        Ok(None) => login_page(&c, &headers, StatusCode::OK, ""),
        Err(e) => internal(&e),
    }
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login(c: C, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let expected = session::cookie(&headers, session::LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::same(&expected, &form.csrf) {
        return login_page(
            &c,
            &headers,
            StatusCode::FORBIDDEN,
            "The sign-in form expired or did not come from this console. Try again.",
        );
    }
    match session::sign_in(&c.state.store, &c.state.config, &form.token).await {
        Ok(Some((id, caller))) => {
            let now = c.state.clock.now_ms();
            let entry = caller.audit("console.sign_in", &caller.token_id, json!({}));
            if let Err(e) = c.state.store.audit(&entry, now).await {
                return internal(&e);
            }
            let secure = session::secure(&c.state.config, &headers);
            let lifetime = i64::try_from(c.state.config.console.session_lifetime.as_secs())
                .unwrap_or(i64::MAX);
            let mut r = redirect("/console/fleet");
            session::add_cookie(
                r.headers_mut(),
                session::set_cookie(session::COOKIE_NAME, &id, lifetime, secure),
            );
            session::add_cookie(
                r.headers_mut(),
                session::set_cookie(session::LOGIN_COOKIE, "", 0, secure),
            );
            r
        }
        Ok(None) => login_page(
            &c,
            &headers,
            StatusCode::UNAUTHORIZED,
            "That token is unknown or revoked.",
        ),
        Err(e) => internal(&e),
    }
}

/// A form with only its CSRF token.
#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(c: C, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let s = match posted(&c, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(e) = session::sign_out(&c.state.store, &s).await {
        return internal(&e);
    }
    let mut r = redirect("/console/login");
    let secure = session::secure(&c.state.config, &headers);
    session::add_cookie(
        r.headers_mut(),
        session::set_cookie(session::COOKIE_NAME, "", 0, secure),
    );
    r
}

// --- rows from API JSON ------------------------------------------------------

fn device_row(d: &Value) -> DeviceRow {
    let version = if d["firmware"].is_object() {
        text(&d["firmware"]["version"])
    } else {
        text(&d["firmware_version"])
    };
    DeviceRow {
        id: text(&d["id"]),
        model: text(&d["hardware_model"]),
        version,
        site: text(&d["site"]),
        status: text(&d["status"]),
        last_seen: text(&d["last_seen"]),
    }
}

fn devices_of(v: &Value) -> Vec<DeviceRow> {
    v["devices"]
        .as_array()
        .map(|a| a.iter().map(device_row).collect())
        .unwrap_or_default()
}

fn rollout_row(r: &Value) -> RolloutRow {
    let successes = int(&r["successes"]);
    let failures = int(&r["failures"]);
    let reported = successes + failures;
    let rate = if reported > 0 {
        failures as f64 * 100.0 / reported as f64
    } else {
        0.0
    };
    RolloutRow {
        id: text(&r["id"]),
        name: text(&r["name"]),
        target: text(&r["target"]),
        state: text(&r["state"]),
        reason: text(&r["state_reason"]),
        wave: text(&r["current_wave"]),
        successes,
        failures,
        failure_rate: format!("{rate:.1}"),
        threshold: format!(
            "{:.1}",
            r["failure_threshold"]["rate"].as_f64().unwrap_or(0.0) * 100.0
        ),
        min_sample: int(&r["failure_threshold"]["min_sample"]),
        created_at: text(&r["created_at"]),
    }
}

fn pct(part: i64, total: i64) -> i64 {
    if total <= 0 {
        0
    } else {
        (part * 100 / total).clamp(0, 100)
    }
}

fn wave_rows(r: &Value) -> Vec<WaveRow> {
    let Some(waves) = r["waves"].as_array() else {
        return Vec::new();
    };
    waves
        .iter()
        .map(|w| {
            let d = &w["devices"];
            let n = |k: &str| int(&d[k]);
            let (assigned, staged, installed, confirmed, failed, rolled_back) = (
                n("assigned"),
                n("staged"),
                n("installed"),
                n("confirmed"),
                n("failed"),
                n("rolled_back"),
            );
            let total = assigned + staged + installed + confirmed + failed + rolled_back;
            let bar_ok = pct(confirmed, total);
            let bar_bad = pct(failed + rolled_back, total);
            let bar_busy = pct(staged + installed, total).min(100 - bar_ok - bar_bad);
            WaveRow {
                index: int(&w["index"]),
                share: format!("{:.0}%", w["share"].as_f64().unwrap_or(0.0) * 100.0),
                assigned,
                staged,
                installed,
                confirmed,
                failed,
                rolled_back,
                total,
                bar_ok,
                bar_busy,
                bar_bad,
            }
        })
        .collect()
}

fn health_rows(v: &Value) -> Vec<HealthRow> {
    let mut out = Vec::new();
    for repo in v["repositories"].as_array().into_iter().flatten() {
        for role in repo["roles"].as_array().into_iter().flatten() {
            out.push(HealthRow {
                repository: text(&repo["repository"]),
                role: text(&role["role"]),
                version: text(&role["version"]),
                expires: text(&role["expires"]),
                warning: role["warning"].as_bool().unwrap_or(false),
                threshold: text(&role["threshold"]),
                keys: role["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        let id = text(&k["keyid"]);
                        format!("{} {}", id.get(..12).unwrap_or(&id), text(&k["keytype"]))
                    })
                    .collect(),
            });
        }
    }
    out
}

// --- fleet, releases -----------------------------------------------------------

async fn fleet(c: C, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let who = &s.caller;
    let versions = match c
        .api(who, Method::GET, "/admin/v1/fleet/versions", None)
        .await
    {
        Ok(v) => v,
        Err(e) => return api_error(&s, &e),
    };
    let versions: Vec<VersionRow> = versions["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| VersionRow {
            model: text(&v["hardware_model"]),
            version: match text(&v["firmware_version"]) {
                t if t.is_empty() => "never reported".to_owned(),
                t => t,
            },
            count: int(&v["count"]),
        })
        .collect();
    let total = versions.iter().map(|v| v.count).sum();
    let stale_days = 7;
    let stale = c
        .api(
            who,
            Method::GET,
            &format!(
                "/admin/v1/fleet/stale?days={stale_days}&limit={}",
                COUNT_UP_TO + 1
            ),
            None,
        )
        .await
        .map(|v| devices_of(&v))
        .unwrap_or_default();
    let below = c
        .api(
            who,
            Method::GET,
            &format!("/admin/v1/fleet/below-minimum?limit={}", COUNT_UP_TO + 1),
            None,
        )
        .await
        .map(|v| devices_of(&v))
        .unwrap_or_default();
    let (stale, stale_count) = first_of(stale, 20);
    let (below, below_count) = first_of(below, 20);
    let rollouts = c
        .api(who, Method::GET, "/admin/v1/rollouts", None)
        .await
        .map(|v| {
            v["rollouts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(rollout_row)
                .filter(|r| r.state == "running" || r.state == "paused")
                .collect()
        })
        .unwrap_or_default();
    let health = c
        .api(who, Method::GET, "/admin/v1/repo/health", None)
        .await
        .map(|v| health_rows(&v))
        .unwrap_or_default();
    render(
        StatusCode::OK,
        &FleetPage {
            f: frame(&s, "Fleet", "fleet"),
            total,
            versions,
            stale,
            stale_count,
            stale_days,
            below,
            below_count,
            rollouts,
            health,
        },
    )
}

/// Lists on the fleet and security pages are counted up to this many
/// (more shows as "1000+"); the first rows are shown.
const COUNT_UP_TO: usize = 1000;

/// The first `shown` rows of a list fetched with `limit=COUNT_UP_TO + 1`,
/// and its count as shown ("37", "1000+").
fn first_of(mut rows: Vec<DeviceRow>, shown: usize) -> (Vec<DeviceRow>, String) {
    let count = if rows.len() > COUNT_UP_TO {
        format!("{COUNT_UP_TO}+")
    } else {
        rows.len().to_string()
    };
    rows.truncate(shown);
    (rows, count)
}

fn size(bytes: i64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.2} MiB", bytes as f64 / f64::from(1 << 20))
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

async fn release_list(c: &Console, s: &Session) -> Result<Vec<ReleaseRow>, ApiFailure> {
    let v = c
        .api(&s.caller, Method::GET, "/admin/v1/releases", None)
        .await?;
    Ok(v["releases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| ReleaseRow {
            model: text(&r["hardware_model"]),
            version: text(&r["version"]),
            counter: text(&r["security_counter"]),
            size: size(int(&r["length"])),
            name: text(&r["name"]),
            published_at: text(&r["published_at"]),
            patches: r["patches"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{} → {}", text(&p["from_version"]), size(int(&p["length"]))))
                .collect(),
        })
        .collect())
}

async fn releases(c: C, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match release_list(&c, &s).await {
        Ok(releases) => render(
            StatusCode::OK,
            &ReleasesPage {
                f: frame(&s, "Releases", "releases"),
                releases,
            },
        ),
        Err(e) => api_error(&s, &e),
    }
}

// --- rollouts ------------------------------------------------------------------

async fn rollouts(c: C, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c
        .api(&s.caller, Method::GET, "/admin/v1/rollouts", None)
        .await
    {
        Ok(v) => render(
            StatusCode::OK,
            &RolloutsPage {
                f: frame(&s, "Rollouts", "rollouts"),
                rollouts: v["rollouts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(rollout_row)
                    .collect(),
            },
        ),
        Err(e) => api_error(&s, &e),
    }
}

async fn new_page(
    c: &Console,
    s: &Session,
    status: StatusCode,
    form: RolloutForm,
    error: String,
    preview: Option<(i64, Vec<PreviewWave>)>,
) -> Response {
    let targets = release_list(c, s)
        .await
        .map(|r| r.into_iter().map(|r| r.name).collect())
        .unwrap_or_default();
    let (eligible, preview) = match preview {
        Some((n, w)) => (n, Some(w)),
        None => (0, None),
    };
    render(
        status,
        &RolloutNewPage {
            f: frame(s, "New rollout", "rollouts"),
            form,
            targets,
            error,
            preview,
            eligible,
        },
    )
}

async fn rollout_new(c: C, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if s.caller.role < Role::Operator {
        return error_page(
            &s,
            StatusCode::FORBIDDEN,
            "forbidden",
            "creating a rollout needs the operator role",
        );
    }
    let form = RolloutForm {
        failure_rate: "20".into(),
        min_sample: "10".into(),
        waves: "100:0s".into(),
        ..RolloutForm::default()
    };
    new_page(&c, &s, StatusCode::OK, form, String::new(), None).await
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The API body of a rollout form.
fn rollout_body(f: &RolloutForm) -> Result<Value, String> {
    let mut waves = Vec::new();
    for w in list(&f.waves) {
        let (share, soak) = w.split_once(':').unwrap_or((w.as_str(), "0s"));
        let share: f64 = share
            .trim()
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("wave {w:?}: the share must be a percentage like 20"))?;
        waves.push(json!({"share": share / 100.0, "min_soak": soak.trim()}));
    }
    let mut body = json!({
        "name": f.name.trim(),
        "target": f.target.trim(),
        "from_versions": list(&f.from_versions),
        "groups": list(&f.groups),
        "waves": waves,
    });
    if !f.failure_rate.trim().is_empty() || !f.min_sample.trim().is_empty() {
        let rate: f64 = f
            .failure_rate
            .trim()
            .trim_end_matches('%')
            .parse()
            .map_err(|_| "the failure threshold must be a percentage like 5".to_owned())?;
        let min_sample: u64 = f
            .min_sample
            .trim()
            .parse()
            .map_err(|_| "the minimum sample must be a whole number".to_owned())?;
        body["failure_threshold"] = json!({"rate": rate / 100.0, "min_sample": min_sample});
    }
    if !f.start_at.trim().is_empty() {
        body["start_at"] = json!(f.start_at.trim());
    }
    if !f.security_deadline.trim().is_empty() {
        body["security_deadline"] = json!(f.security_deadline.trim());
    }
    Ok(body)
}

fn preview_waves(v: &Value) -> (i64, Vec<PreviewWave>) {
    let waves = v["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| PreviewWave {
            index: int(&w["index"]),
            share: format!("{:.0}%", w["share"].as_f64().unwrap_or(0.0) * 100.0),
            eligible: int(&w["eligible"]),
            nights: w["nights"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| (text(&n["date"]), int(&n["locks"])))
                .collect(),
            unscheduled: int(&w["unscheduled"]),
            door_openings: format!("{:.1}", w["expected_door_openings"].as_f64().unwrap_or(0.0)),
        })
        .collect();
    (int(&v["eligible"]), waves)
}

async fn rollout_submit(c: C, headers: HeaderMap, Form(form): Form<RolloutForm>) -> Response {
    let s = match posted(&c, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut body = match rollout_body(&form) {
        Ok(b) => b,
        Err(e) => return new_page(&c, &s, StatusCode::BAD_REQUEST, form, e, None).await,
    };
    if form.submit == "preview" {
        return match c
            .api(
                &s.caller,
                Method::POST,
                "/admin/v1/rollouts/preview",
                Some(body),
            )
            .await
        {
            Ok(v) => {
                let p = preview_waves(&v);
                new_page(&c, &s, StatusCode::OK, form, String::new(), Some(p)).await
            }
            Err(e) if e.status == StatusCode::FORBIDDEN => api_error(&s, &e),
            Err(e) => {
                let msg = format!("{}: {}", e.code, e.message);
                new_page(&c, &s, e.status, form, msg, None).await
            }
        };
    }
    body["start"] = json!(form.submit == "start");
    match c
        .api(&s.caller, Method::POST, "/admin/v1/rollouts", Some(body))
        .await
    {
        Ok(v) => redirect(&format!("/console/rollouts/{}", enc(&text(&v["id"])))),
        Err(e) if e.status == StatusCode::FORBIDDEN => api_error(&s, &e),
        Err(e) => {
            let msg = format!("{}: {}", e.code, e.message);
            new_page(&c, &s, e.status, form, msg, None).await
        }
    }
}

fn actions(state: &str) -> Vec<&'static str> {
    match state {
        "draft" => vec!["start", "abort"],
        "running" => vec!["pause", "abort"],
        "paused" => vec!["resume", "abort"],
        _ => Vec::new(),
    }
}

async fn rollout(c: C, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let v = match c
        .api(
            &s.caller,
            Method::GET,
            &format!("/admin/v1/rollouts/{}", enc(&id)),
            None,
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return api_error(&s, &e),
    };
    let failed = c
        .api(
            &s.caller,
            Method::GET,
            &format!(
                "/admin/v1/rollouts/{}/devices?status=failed,rolled_back&limit=100",
                enc(&id)
            ),
            None,
        )
        .await
        .map(|d| {
            d["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| FailedRow {
                    id: text(&d["id"]),
                    status: text(&d["status"]),
                    reason: text(&d["reason"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let r = rollout_row(&v);
    let live = matches!(r.state.as_str(), "running" | "paused" | "draft");
    render(
        StatusCode::OK,
        &RolloutPage {
            f: frame(&s, &format!("Rollout {}", r.name), "rollouts"),
            actions: actions(&r.state),
            waves: wave_rows(&v),
            failed,
            live,
            r,
        },
    )
}

async fn rollout_progress(c: C, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c
        .api(
            &s.caller,
            Method::GET,
            &format!("/admin/v1/rollouts/{}", enc(&id)),
            None,
        )
        .await
    {
        Ok(v) => {
            let r = rollout_row(&v);
            let live = matches!(r.state.as_str(), "running" | "paused" | "draft");
            let mut resp = render(
                StatusCode::OK,
                &RolloutProgress {
                    waves: wave_rows(&v),
                    r,
                },
            );
            resp.headers_mut().insert(
                "x-nightlatch-live",
                HeaderValue::from_static(if live { "1" } else { "0" }),
            );
            resp
        }
        Err(e) => api_error(&s, &e),
    }
}

/// A rollout action form.
#[derive(Debug, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
}

fn known_action(a: &str) -> bool {
    matches!(a, "start" | "pause" | "resume" | "abort")
}

async fn rollout_confirm(
    c: C,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let s = match posted(&c, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !known_action(&form.action) {
        return error_page(&s, StatusCode::BAD_REQUEST, "invalid", "unknown action");
    }
    if s.caller.role < Role::Operator {
        return error_page(
            &s,
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs the operator role",
        );
    }
    let name = match c
        .api(
            &s.caller,
            Method::GET,
            &format!("/admin/v1/rollouts/{}", enc(&id)),
            None,
        )
        .await
    {
        Ok(v) => text(&v["name"]),
        Err(e) => return api_error(&s, &e),
    };
    render(
        StatusCode::OK,
        &ConfirmPage {
            f: frame(&s, "Confirm", "rollouts"),
            id,
            name,
            action: form.action,
        },
    )
}

async fn rollout_action(
    c: C,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let s = match posted(&c, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !known_action(&form.action) {
        return error_page(&s, StatusCode::BAD_REQUEST, "invalid", "unknown action");
    }
    let reason = form.reason.trim();
    let body = (!reason.is_empty()).then(|| json!({ "reason": reason }));
    match c
        .api(
            &s.caller,
            Method::POST,
            &format!("/admin/v1/rollouts/{}/{}", enc(&id), form.action),
            body,
        )
        .await
    {
        Ok(_) => redirect(&format!("/console/rollouts/{}", enc(&id))),
        Err(e) => api_error(&s, &e),
    }
}

// --- devices ---------------------------------------------------------------------

async fn devices(c: C, headers: HeaderMap, Query(q): Query<DeviceFilter>) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filters = [
        ("prefix", q.prefix.as_str()),
        ("model", q.model.as_str()),
        ("version", q.version.as_str()),
        ("group", q.group.as_str()),
        ("site", q.site.as_str()),
        ("status", q.status.as_str()),
        ("seen_after", q.seen_after.as_str()),
    ];
    let mut qs = query(&filters);
    let page = query(&[("after", q.after.as_str()), ("limit", "50")]);
    if !qs.is_empty() {
        qs.push('&');
    }
    qs.push_str(&page);
    let v = match c
        .api(
            &s.caller,
            Method::GET,
            &format!("/admin/v1/devices?{qs}"),
            None,
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return api_error(&s, &e),
    };
    let next = match v["next_after"].as_str() {
        Some(after) => {
            let mut pairs = filters.to_vec();
            pairs.push(("after", after));
            query(&pairs)
        }
        None => String::new(),
    };
    let total = match (&v["total"], v["total_capped"].as_bool()) {
        (Value::Null, _) => "some".to_owned(),
        (t, Some(true)) => format!("over {}", text(t)),
        (t, _) => text(t),
    };
    render(
        StatusCode::OK,
        &DevicesPage {
            f: frame(&s, "Devices", "devices"),
            devices: devices_of(&v),
            q,
            total,
            next,
        },
    )
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const HEAT_NAMES: [&str; 4] = ["never", "rare", "some", "busy"];

/// Minutes after midnight of an `HH:MM` text.
fn minutes_of(t: &Value) -> Option<u32> {
    let (h, m) = t.as_str()?.split_once(':')?;
    Some(h.parse::<u32>().ok()? * 60 + m.parse::<u32>().ok()?)
}

/// The heatmap of `GET /admin/v1/devices/{id}/usage`: per local weekday,
/// each hour's heat level (0–3, as the lock reported it) and whether the
/// day's quiet slot covers it (a slot running past midnight covers the
/// first hours of the next day, Sunday's those of Monday).
fn heat_rows(u: &Value) -> Vec<HeatRow> {
    let Some(heat) = u["heat"].as_array() else {
        return Vec::new();
    };
    let slots: Vec<Option<(u32, u32)>> = (0..7)
        .map(|d| {
            let q = &u["quiet_slots"][d];
            Some((
                minutes_of(&q["start"])?,
                u32::try_from(q["minutes"].as_u64()?).ok()?,
            ))
        })
        .collect();
    // Whether minute range [from, to) of day `d` meets a quiet slot.
    let quiet_at = |d: usize, from: u32, to: u32| {
        let today = slots[d].is_some_and(|(s, len)| from < s + len && s < to);
        let yesterday =
            slots[(d + 6) % 7].is_some_and(|(s, len)| s + len > 1440 && from < s + len - 1440);
        today || yesterday
    };
    heat.iter()
        .take(7)
        .enumerate()
        .map(|(d, hours)| HeatRow {
            day: DAYS[d],
            cells: (0..24u8)
                .map(|h| {
                    let level = hours[usize::from(h)].as_u64().unwrap_or(0).min(3) as u8;
                    let from = u32::from(h) * 60;
                    HeatCell {
                        hour: h,
                        level,
                        name: HEAT_NAMES[usize::from(level)],
                        in_quiet: quiet_at(d, from, from + 60),
                    }
                })
                .collect(),
            quiet: match slots[d] {
                Some(_) => format!(
                    "{}–{}",
                    text(&u["quiet_slots"][d]["start"]),
                    text(&u["quiet_slots"][d]["end"])
                ),
                None => "none".to_owned(),
            },
        })
        .collect()
}

async fn device(c: C, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let path = format!("/admin/v1/devices/{}", enc(&id));
    let d = match c.api(&s.caller, Method::GET, &path, None).await {
        Ok(v) => v,
        Err(e) => return api_error(&s, &e),
    };
    let history = c
        .api(
            &s.caller,
            Method::GET,
            &format!("{path}/history?limit=100"),
            None,
        )
        .await
        .unwrap_or(Value::Null);
    let usage = c
        .api(&s.caller, Method::GET, &format!("{path}/usage"), None)
        .await
        .unwrap_or(Value::Null);
    let mut events: Vec<EventRow> = history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| EventRow {
            at: text(&e["at"]),
            kind: text(&e["kind"]),
            detail: text(&e["detail"]),
        })
        .collect();
    events.sort_by(|a, b| b.at.cmp(&a.at));
    let groups = d["groups"]
        .as_array()
        .map(|g| g.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let fields = vec![
        ("Model", text(&d["hardware_model"])),
        ("Status", text(&d["status"])),
        ("Site", text(&d["site"])),
        ("Groups", groups),
        ("Firmware", text(&d["firmware"]["version"])),
        ("Security counter", text(&d["firmware"]["security_counter"])),
        ("Boot state", text(&d["boot_state"])),
        ("Battery", text(&d["battery_percent"])),
        ("Time zone", text(&d["time_zone"])),
        ("Last seen", text(&d["last_seen"])),
        ("Rollout", text(&d["rollout"]["id"])),
        ("Assigned image", text(&d["rollout"]["target"])),
        (
            "Last update",
            format!(
                "{} {} {}",
                text(&d["last_update"]["target"]),
                text(&d["last_update"]["outcome"]),
                text(&d["last_update"]["reason"])
            )
            .trim()
            .to_owned(),
        ),
        ("Director metadata", text(&d["director"]["version"])),
    ];
    render(
        StatusCode::OK,
        &DevicePage {
            f: frame(&s, &format!("Lock {id}"), "devices"),
            status: text(&d["status"]),
            id,
            fields,
            events,
            heat: heat_rows(&usage),
            heat_reported: text(&usage["reported_at"]),
            heat_peak: usage["peak_entries_per_hour"]
                .as_f64()
                .map(|p| format!("{p:.1}"))
                .unwrap_or_default(),
            heat_weeks: text(&usage["weeks_learned"]),
        },
    )
}

async fn device_revoke(
    c: C,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let s = match posted(&c, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reason = form.reason.trim();
    let body = (!reason.is_empty()).then(|| json!({ "reason": reason }));
    match c
        .api(
            &s.caller,
            Method::POST,
            &format!("/admin/v1/devices/{}/revoke", enc(&id)),
            body,
        )
        .await
    {
        Ok(_) => redirect(&format!("/console/devices/{}", enc(&id))),
        Err(e) => api_error(&s, &e),
    }
}

// --- sites -------------------------------------------------------------------------

async fn sites_page(c: &Console, s: &Session, status: StatusCode, error: String) -> Response {
    match c.api(&s.caller, Method::GET, "/admin/v1/sites", None).await {
        Ok(v) => render(
            status,
            &SitesPage {
                f: frame(s, "Sites", "sites"),
                sites: v["sites"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|x| {
                        let p = &x["policy"];
                        SiteRow {
                            site: text(&x["site"]),
                            window_start: text(&p["quiet_hours"]["start"]),
                            window_end: text(&p["quiet_hours"]["end"]),
                            time_zone: text(&p["time_zone"]),
                            blackout: p["blackout_dates"]
                                .as_array()
                                .map(|d| d.iter().map(text).collect::<Vec<_>>().join(", "))
                                .unwrap_or_default(),
                        }
                    })
                    .collect(),
                error,
            },
        ),
        Err(e) => api_error(s, &e),
    }
}

async fn sites(c: C, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    sites_page(&c, &s, StatusCode::OK, String::new()).await
}

/// The site form.
#[derive(Debug, Deserialize)]
struct SiteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    window_start: String,
    #[serde(default)]
    window_end: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    blackout: String,
}

async fn site_set(c: C, headers: HeaderMap, Form(form): Form<SiteForm>) -> Response {
    let s = match posted(&c, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut policy = json!({ "blackout_dates": list(&form.blackout) });
    if !form.window_start.trim().is_empty() || !form.window_end.trim().is_empty() {
        policy["quiet_hours"] =
            json!({"start": form.window_start.trim(), "end": form.window_end.trim()});
    }
    if !form.time_zone.trim().is_empty() {
        policy["time_zone"] = json!(form.time_zone.trim());
    }
    match c
        .api(
            &s.caller,
            Method::PUT,
            &format!("/admin/v1/sites/{}/policy", enc(form.site.trim())),
            Some(policy),
        )
        .await
    {
        Ok(_) => redirect("/console/sites"),
        Err(e) if e.status == StatusCode::FORBIDDEN => api_error(&s, &e),
        Err(e) => {
            let msg = format!("{}: {}", e.code, e.message);
            sites_page(&c, &s, e.status, msg).await
        }
    }
}

// --- security ------------------------------------------------------------------------

async fn security_page(
    c: &Console,
    s: &Session,
    status: StatusCode,
    new_token: String,
    error: String,
) -> Response {
    let who = &s.caller;
    let below = c
        .api(
            who,
            Method::GET,
            &format!("/admin/v1/fleet/below-minimum?limit={}", COUNT_UP_TO + 1),
            None,
        )
        .await
        .map(|v| devices_of(&v))
        .unwrap_or_default();
    let revoked = c
        .api(
            who,
            Method::GET,
            &format!("/admin/v1/devices?status=revoked&limit={}", COUNT_UP_TO + 1),
            None,
        )
        .await
        .map(|v| devices_of(&v))
        .unwrap_or_default();
    let (below, below_count) = first_of(below, 50);
    let (revoked, revoked_count) = first_of(revoked, 50);
    let roots = c
        .api(who, Method::GET, "/admin/v1/repo/health", None)
        .await
        .map(|v| health_rows(&v))
        .unwrap_or_default();
    let tokens = if who.role >= Role::SecurityAdmin {
        c.api(who, Method::GET, "/admin/v1/tokens", None)
            .await
            .map(|v| {
                v["tokens"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| TokenRow {
                        id: text(&t["id"]),
                        name: text(&t["name"]),
                        role: text(&t["role"]),
                        created_at: text(&t["created_at"]),
                        revoked_at: text(&t["revoked_at"]),
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    render(
        status,
        &SecurityPage {
            f: frame(s, "Security", "security"),
            below,
            below_count,
            revoked,
            revoked_count,
            roots,
            tokens,
            new_token,
            error,
        },
    )
}

async fn security(c: C, headers: HeaderMap) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    security_page(&c, &s, StatusCode::OK, String::new(), String::new()).await
}

/// The token form.
#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

async fn token_create(c: C, headers: HeaderMap, Form(form): Form<TokenForm>) -> Response {
    let s = match posted(&c, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c
        .api(
            &s.caller,
            Method::POST,
            "/admin/v1/tokens",
            Some(json!({"name": form.name.trim(), "role": form.role})),
        )
        .await
    {
        // The secret is shown in this response only (no redirect that
        // would need to carry it).
        Ok(v) => security_page(&c, &s, StatusCode::OK, text(&v["token"]), String::new()).await,
        Err(e) if e.status == StatusCode::FORBIDDEN => api_error(&s, &e),
        Err(e) => {
            let msg = format!("{}: {}", e.code, e.message);
            security_page(&c, &s, e.status, String::new(), msg).await
        }
    }
}

async fn token_revoke(
    c: C,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let s = match posted(&c, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match c
        .api(
            &s.caller,
            Method::DELETE,
            &format!("/admin/v1/tokens/{}", enc(&id)),
            None,
        )
        .await
    {
        Ok(_) => redirect("/console/security"),
        Err(e) => api_error(&s, &e),
    }
}

// --- audit -----------------------------------------------------------------------------

fn audit_query(q: &AuditFilter) -> String {
    query(&[
        ("actor", q.actor.as_str()),
        ("action", q.action.as_str()),
        ("since", q.since.as_str()),
    ])
}

async fn audit(c: C, headers: HeaderMap, Query(q): Query<AuditFilter>) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filters = audit_query(&q);
    let page = query(&[("after", q.after.as_str()), ("limit", "100")]);
    let qs = [filters.as_str(), page.as_str()]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("&");
    let v = match c
        .api(
            &s.caller,
            Method::GET,
            &format!("/admin/v1/audit?{qs}"),
            None,
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return api_error(&s, &e),
    };
    let next = match v["next_after"].as_str() {
        Some(after) => {
            let a = query(&[("after", after)]);
            if filters.is_empty() {
                a
            } else {
                format!("{filters}&{a}")
            }
        }
        None => String::new(),
    };
    render(
        StatusCode::OK,
        &AuditPage {
            f: frame(&s, "Audit log", "security"),
            entries: v["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| AuditRow {
                    at: text(&e["at"]),
                    token_id: text(&e["token_id"]),
                    actor: text(&e["actor"]),
                    role: text(&e["role"]),
                    action: text(&e["action"]),
                    subject: text(&e["subject"]),
                    detail: text(&e["detail"]),
                })
                .collect(),
            export: filters,
            next,
            q,
        },
    )
}

async fn audit_csv(c: C, headers: HeaderMap, Query(q): Query<AuditFilter>) -> Response {
    let s = match signed_in(&c, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let path = format!("/admin/v1/audit/export?{}", audit_query(&q));
    match c.api_raw(&s.caller, Method::GET, &path, None).await {
        Ok((status, bytes)) if status.is_success() => (
            [
                (CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    CONTENT_DISPOSITION,
                    "attachment; filename=\"nightlatch-audit.csv\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok((status, bytes)) => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            error_page(&s, status, &text(&v["error"]), &text(&v["message"]))
        }
        Err(e) => api_error(&s, &e),
    }
}

#[cfg(test)]
mod route_list_tests {
    use std::collections::BTreeSet;

    use super::{PUBLIC_ROUTES, ROUTES};

    /// `(method, path)` of every `.route(path, get(..).post(..))` in
    /// [`super::routes`], read from this file's source.
    fn mounted() -> BTreeSet<(String, String)> {
        let source = include_str!("pages.rs");
        let start = source.find("pub fn routes(").expect("routes()");
        let body = &source[start..];
        let body = &body[..body.find("\n}\n").expect("end of routes()")];
        let mut found = BTreeSet::new();
        for call in body.split(".route(").skip(1) {
            let call: String = call.split_whitespace().collect::<Vec<_>>().join(" ");
            let path = call.split('"').nth(1).expect("a path literal").to_owned();
            let handlers = call.split_once(',').expect("handlers").1;
            for (needle, method) in [("get(", "GET"), ("post(", "POST")] {
                if handlers.contains(needle) {
                    found.insert((method.to_owned(), path.clone()));
                }
            }
        }
        found
    }

    #[test]
    fn the_route_lists_are_the_mounted_routes() {
        let listed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .chain(PUBLIC_ROUTES)
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(
            listed.len(),
            ROUTES.len() + PUBLIC_ROUTES.len(),
            "listed twice"
        );
        assert_eq!(mounted(), listed);
    }
}
