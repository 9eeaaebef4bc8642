//! The audit log names who by token id, is written in the same transaction
//! as every change (repository uploads included: with the audit write
//! failing, no mutating admin endpoint changes anything), samples refused
//! authentications, and token names are readable text.

use std::path::{Path, PathBuf};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use update_server::auth::Role;
use update_server::routes::admin::ENDPOINTS;

use crate::support::{Backend, TestApp};

/// Every audit entry after `after` (oldest first).
pub async fn entries_after(app: &TestApp, after: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_owned);
    loop {
        let path = match &cursor {
            Some(a) => format!("/admin/v1/audit?limit=1000&after={a}"),
            None => "/admin/v1/audit?limit=1000".to_owned(),
        };
        let (s, v) = app.json(Method::GET, &path, Some(&app.admin), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let page = v["entries"].as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        cursor = page.last().unwrap()["id"].as_str().map(str::to_owned);
        out.extend(page);
    }
}

/// Entries whose id is not in `seen` (ids sort by the server clock, which
/// this may move backwards).
async fn entries_besides(app: &TestApp, seen: &std::collections::HashSet<String>) -> Vec<Value> {
    entries_after(app, None)
        .await
        .into_iter()
        .filter(|e| !seen.contains(e["id"].as_str().unwrap()))
        .collect()
}

async fn entry_ids(app: &TestApp) -> std::collections::HashSet<String> {
    entries_after(app, None)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The id of the newest audit entry.
pub async fn last_entry_id(app: &TestApp) -> Option<String> {
    entries_after(app, None)
        .await
        .last()
        .and_then(|e| e["id"].as_str().map(str::to_owned))
}

/// A token of `role` named `name`: (secret, id).
pub async fn named_token(app: &TestApp, name: &str, role: &str) -> (String, String) {
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": name, "role": role})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (
        v["token"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

/// A release prepared offline against the served repository: the target
/// file (path under `targets/`, bytes) and the targets metadata (name,
/// bytes) that lists it.
pub struct Release {
    pub target_path: String,
    pub target: Vec<u8>,
    pub metadata_name: String,
    pub metadata: Vec<u8>,
    _work: tempfile::TempDir,
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Sign a release of `version` with the dev targets key, as
/// `nightlatch-sign publish` does before uploading.
pub async fn prepare_release(app: &TestApp, version: &str, payload: &[u8]) -> Release {
    let work = tempfile::tempdir().unwrap();
    app.mirror(work.path()).await;
    let env = app.envelope("nl-lock-v2", version, 3, payload);
    let keys = nightlatch_repo::keysource::open_all(&[nightlatch_repo::keysource::KeySpec::File(
        app.targets_key(),
    )])
    .unwrap();
    let report = nightlatch_repo::repo::publish::publish(
        work.path(),
        &keys,
        &[env],
        &nightlatch_repo::repo::Expiries::default(),
        &app.repo_clock(),
    )
    .unwrap();
    assert_eq!(report.metadata.len(), 1, "{:?}", report.metadata);
    let meta = PathBuf::from(&report.metadata[0]);
    let targets = files_under(&work.path().join("targets"));
    assert_eq!(targets.len(), 1, "{targets:?}");
    let target_path = targets[0]
        .strip_prefix(work.path().join("targets"))
        .unwrap()
        .to_str()
        .unwrap()
        .replace('\\', "/");
    Release {
        target_path,
        target: std::fs::read(&targets[0]).unwrap(),
        metadata_name: meta.file_name().unwrap().to_str().unwrap().to_owned(),
        metadata: std::fs::read(&meta).unwrap(),
        _work: work,
    }
}

/// Make every audit write fail (a trigger), or work again.
pub async fn audit_writes_fail(app: &TestApp, backend: Backend, fail: bool) {
    let pool = app.state.store.pool();
    let statements: &[&str] = match (backend, fail) {
        (Backend::Embedded, true) => &[
            "CREATE TRIGGER audit_off BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END",
        ],
        (Backend::Embedded, false) => &["DROP TRIGGER audit_off"],
        (Backend::PostgresS3, true) => &[
            "CREATE OR REPLACE FUNCTION audit_off() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$",
            "CREATE TRIGGER audit_off BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_off()",
        ],
        (Backend::PostgresS3, false) => &["DROP TRIGGER audit_off ON audit_log"],
    };
    for s in statements {
        sqlx::query(s).execute(pool).await.unwrap();
    }
}

/// What an admin (or a client) can see of the server's state, `public`
/// paths included.
async fn fingerprint(app: &TestApp, public: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    for path in [
        "/admin/v1/devices?limit=1000",
        "/admin/v1/rollouts",
        "/admin/v1/sites",
        "/admin/v1/repo",
        "/admin/v1/tokens",
        "/admin/v1/fleet/minimums",
        "/admin/v1/webhooks",
    ] {
        let (s, v) = app.json(Method::GET, path, Some(&app.admin), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        out.insert(path.into(), v);
    }
    // Each subscription with its delivery counts (a test ping adds one).
    for w in app.state.store.webhooks().await.unwrap() {
        let path = format!("/admin/v1/webhooks/{}", w.id);
        let (s, v) = app.json(Method::GET, &path, Some(&app.admin), None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        out.insert(path, v);
    }
    let entry_points = ["/repo/metadata/timestamp.json", "/repo/metadata/root.json"];
    for path in entry_points
        .iter()
        .map(|p| p.to_string())
        .chain(public.iter().cloned())
    {
        let (s, _, body) = app.call(Method::GET, &path, None, &[], "").await;
        out.insert(path, json!([s.as_u16(), String::from_utf8_lossy(&body)]));
    }
    out.insert("clock".into(), json!(app.state.clock.now_ms()));
    Value::Object(out)
}

/// Root version 2 of the image repository (same keys), signed by the root keys.
fn rotated_root(app: &TestApp) -> Vec<u8> {
    let keys = app.dir.path().join("keys/image");
    let out = app.dir.path().join("image-2.root.json");
    let log = nightlatch_repo::transcript::Log {
        transcript: Some(app.dir.path().join("transcript.jsonl")),
        who: Some("test".into()),
    };
    let clock = app.repo_clock();
    nightlatch_repo::ceremony::rotate_file(
        &keys.join("1.root.json"),
        Some(&out),
        &[],
        nightlatch_repo::metadata::expiry::ROOT_LIFETIME,
        true,
        &log,
        &clock,
    )
    .unwrap();
    for k in ["root-1", "root-2", "root-3"] {
        let _ = nightlatch_repo::ceremony::sign_file(
            &out,
            Some(&keys.join("1.root.json")),
            &nightlatch_repo::keysource::KeySpec::File(keys.join(format!("keys/{k}.key"))),
            &log,
            &clock,
        );
    }
    std::fs::read(&out).unwrap()
}

/// The subscription the walk created.
async fn webhook_id(app: &TestApp) -> String {
    app.state.store.webhooks().await.unwrap()[0].id.clone()
}

fn device(id: &str) -> Value {
    let key = crate::support::Lock::new(id, "nl-lock-v2")
        .key
        .verifying_key();
    json!({"id": id, "hardware_model": "nl-lock-v2", "public_key": hex::encode(key.as_bytes())})
}

/// For every mutating admin endpoint (walked from the table the server
/// enforces): with audit writes failing the request fails and nothing
/// visible changes; then it succeeds, and every entry it wrote names the
/// calling token by id. The four calling tokens all have the same name.
async fn every_change_is_audited_by_token_id_in_its_transaction(backend: Backend) {
    let app = TestApp::with(backend).await;
    // Expiry checks of this process follow POST /admin/v1/clock: keep them
    // at real time (other tests run in this process).
    let real_now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };
    app.clock.set_ms(real_now());
    let mut tokens = std::collections::BTreeMap::new();
    for role in Role::ALL {
        tokens.insert(role, named_token(&app, "alice", role.as_str()).await);
    }
    // A published image for the rollouts, a release for the uploads, a
    // rotated root.
    app.publish(&[app.envelope("nl-lock-v2", "1.0.0", 1, b"one")])
        .await;
    let release = prepare_release(&app, "2.0.0", b"two").await;
    let root2 = rotated_root(&app);
    let public = [
        format!("/repo/targets/{}", release.target_path),
        format!("/repo/metadata/{}", release.metadata_name),
        "/repo/metadata/2.root.json".to_owned(),
    ];
    let mut rollout = String::new();
    let mut victim_token = String::new();
    let mut covered = 0;
    for e in ENDPOINTS.iter().filter(|e| e.changes_state()) {
        // (path, body, JSON?, action expected in the log)
        let (path, body, is_json, action): (String, Vec<u8>, bool, &str) = match (e.method, e.path)
        {
            ("POST", "/admin/v1/devices") => (
                e.path.into(),
                device("lock-a").to_string().into(),
                true,
                "device.register",
            ),
            ("POST", "/admin/v1/devices/import") => (
                e.path.into(),
                json!({"devices": [device("lock-b"), device("lock-cc")]})
                    .to_string()
                    .into(),
                true,
                "device.import",
            ),
            ("POST", "/admin/v1/devices/{id}/revoke") => (
                "/admin/v1/devices/lock-a/revoke".into(),
                json!({"reason": "lost"}).to_string().into(),
                true,
                "device.revoke",
            ),
            ("POST", "/admin/v1/rollouts") => (
                e.path.into(),
                json!({"name": "r", "target": "nl-lock-v2/1.0.0.nlfw"})
                    .to_string()
                    .into(),
                true,
                "rollout.create",
            ),
            ("POST", p) if p.starts_with("/admin/v1/rollouts/{id}/") => {
                let verb = p.rsplit('/').next().unwrap();
                let action = match verb {
                    "start" => "rollout.start",
                    "pause" => "rollout.pause",
                    "resume" => "rollout.resume",
                    "abort" => "rollout.abort",
                    other => panic!("no recipe for rollout {other}"),
                };
                (
                    format!("/admin/v1/rollouts/{rollout}/{verb}"),
                    Vec::new(),
                    false,
                    action,
                )
            }
            ("PUT", "/admin/v1/sites/{site}/policy") => (
                "/admin/v1/sites/hq/policy".into(),
                json!({"quiet_hours": {"start": "01:00", "end": "05:00"}, "blackout_dates": [], "time_zone": "Europe/Berlin"})
                    .to_string()
                    .into(),
                true,
                "site.policy",
            ),
            ("PUT", "/admin/v1/repo/targets/{*path}") => (
                format!("/admin/v1/repo/targets/{}", release.target_path),
                release.target.clone(),
                false,
                "repo.target",
            ),
            ("PUT", "/admin/v1/repo/metadata/{file}") => (
                format!("/admin/v1/repo/metadata/{}", release.metadata_name),
                release.metadata.clone(),
                false,
                "repo.metadata",
            ),
            ("POST", "/admin/v1/repo/refresh") => (e.path.into(), Vec::new(), false, "repo.refresh"),
            ("PUT", "/admin/v1/repo/roots/{file}") => (
                "/admin/v1/repo/roots/2.root.json".into(),
                root2.clone(),
                false,
                "repo.root",
            ),
            ("POST", "/admin/v1/tokens") => (
                e.path.into(),
                json!({"name": "bob", "role": "viewer"}).to_string().into(),
                true,
                "token.create",
            ),
            ("DELETE", "/admin/v1/tokens/{id}") => (
                format!("/admin/v1/tokens/{victim_token}"),
                Vec::new(),
                false,
                "token.revoke",
            ),
            ("POST", "/admin/v1/clock") => (
                e.path.into(),
                json!({"time": update_server::clock::rfc3339(real_now() + 1000)})
                    .to_string()
                    .into(),
                true,
                "clock.set",
            ),
            ("PUT", "/admin/v1/fleet/minimums/{model}") => (
                "/admin/v1/fleet/minimums/nl-lock-v2".into(),
                json!({"min_version": "1.0.0"}).to_string().into(),
                true,
                "fleet.minimum",
            ),
            ("POST", "/admin/v1/webhooks") => (
                e.path.into(),
                json!({"url": "https://93.184.216.34/hook", "events": ["rollout.*"]})
                    .to_string()
                    .into(),
                true,
                "webhook.create",
            ),
            ("POST", "/admin/v1/webhooks/{id}/test") => (
                format!("/admin/v1/webhooks/{}/test", webhook_id(&app).await),
                Vec::new(),
                false,
                "webhook.test",
            ),
            ("POST", "/admin/v1/webhooks/{id}/rotate-secret") => (
                format!("/admin/v1/webhooks/{}/rotate-secret", webhook_id(&app).await),
                json!({"overlap": "1h"}).to_string().into(),
                true,
                "webhook.rotate_secret",
            ),
            ("POST", "/admin/v1/webhooks/{id}/enable") => {
                // As if the server had disabled it after failures.
                sqlx::query("UPDATE webhooks SET enabled = 0, disabled_reason = 'failures'")
                    .execute(app.state.store.pool())
                    .await
                    .unwrap();
                (
                    format!("/admin/v1/webhooks/{}/enable", webhook_id(&app).await),
                    Vec::new(),
                    false,
                    "webhook.enable",
                )
            }
            ("DELETE", "/admin/v1/webhooks/{id}") => (
                format!("/admin/v1/webhooks/{}", webhook_id(&app).await),
                Vec::new(),
                false,
                "webhook.delete",
            ),
            (m, p) => panic!("no recipe for {m} {p}: add one to this test"),
        };
        let what = format!("{} {}", e.method, e.path);
        let (token, token_id) = tokens[&e.role].clone();
        let method = Method::from_bytes(e.method.as_bytes()).unwrap();
        let headers: &[(&str, &str)] = if is_json {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        // The audit write fails: so does the change.
        let before = fingerprint(&app, &public).await;
        let seen = entry_ids(&app).await;
        audit_writes_fail(&app, backend, true).await;
        let (s, _, out) = app
            .call(method.clone(), &path, Some(&token), headers, body.clone())
            .await;
        audit_writes_fail(&app, backend, false).await;
        assert!(
            s.is_server_error(),
            "{what} must fail when its audit entry cannot be written, got {s}: {}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(
            fingerprint(&app, &public).await,
            before,
            "{what} changed something without its audit entry"
        );
        assert!(entries_besides(&app, &seen).await.is_empty());
        // It works: the change and its entries, naming the token by id.
        let (s, _, out) = app.call(method, &path, Some(&token), headers, body).await;
        let out: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        assert!(s.is_success(), "{what}: {s} {out}");
        assert_ne!(
            fingerprint(&app, &public).await,
            before,
            "{what} changed nothing"
        );
        let entries = entries_besides(&app, &seen).await;
        assert!(
            entries.iter().any(|x| x["action"] == action),
            "{what}: no {action} entry in {entries:#?}"
        );
        for x in &entries {
            assert_eq!(x["token_id"], token_id.as_str(), "{what}: {x}");
            assert_eq!(x["actor"], "alice", "{what}: {x}");
            assert_eq!(x["role"], e.role.as_str(), "{what}: {x}");
        }
        if action == "rollout.create" {
            rollout = out["id"].as_str().unwrap().to_owned();
        }
        if action == "token.create" {
            victim_token = out["id"].as_str().unwrap().to_owned();
        }
        covered += 1;
    }
    assert_eq!(
        covered,
        ENDPOINTS.iter().filter(|e| e.changes_state()).count()
    );
    // The release uploaded through the walk is published and served.
    let (s, _, body) = app
        .call(
            Method::GET,
            &format!("/repo/targets/{}", release.target_path),
            None,
            &[],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.as_ref(), release.target.as_slice());
}

/// A metadata upload that passed its checks but failed before its commit
/// (here: the online snapshot key is unavailable) leaves no audit entry and
/// is never published — not even by a later refresh; the same upload, once
/// it works, has exactly one entry.
async fn a_failed_upload_is_not_audited_nor_published_later(backend: Backend) {
    let app = TestApp::with(backend).await;
    let (release_token, release_id) = named_token(&app, "rel", "release").await;
    let r = prepare_release(&app, "2.0.0", b"two").await;
    let target_url = format!("/admin/v1/repo/targets/{}", r.target_path);
    let meta_url = format!("/admin/v1/repo/metadata/{}", r.metadata_name);
    let start = last_entry_id(&app).await;
    let (s, text) = app.put(&target_url, &release_token, r.target.clone()).await;
    assert_eq!(s, StatusCode::OK, "{text}");

    let key = app.dir.path().join("keys/image/keys/snapshot.key");
    let away = app.dir.path().join("snapshot.key.away");
    std::fs::rename(&key, &away).unwrap();
    let (s, text) = app.put(&meta_url, &release_token, r.metadata.clone()).await;
    assert!(s.is_server_error(), "{s} {text}");
    std::fs::rename(&away, &key).unwrap();
    let actions = |entries: &[Value]| {
        entries
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let entries = entries_after(&app, start.as_deref()).await;
    assert_eq!(actions(&entries), ["repo.target"]);
    // A refresh now must not publish what the failed upload left behind.
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/repo/refresh",
            Some(&release_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        app.state
            .repo
            .catalog()
            .firmware("nl-lock-v2/2.0.0.nlfw")
            .is_none(),
        "a failed upload was published by a later refresh"
    );
    let (s, _, _) = app
        .call(
            Method::GET,
            &format!("/repo/targets/{}", r.target_path),
            None,
            &[],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, _, ts) = app
        .call(Method::GET, "/repo/metadata/timestamp.json", None, &[], "")
        .await;
    let ts: Value = serde_json::from_slice(&ts).unwrap();
    let snap = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let (_, _, snapshot) = app
        .call(
            Method::GET,
            &format!("/repo/metadata/{snap}.snapshot.json"),
            None,
            &[],
            "",
        )
        .await;
    let snapshot: Value = serde_json::from_slice(&snapshot).unwrap();
    assert_eq!(snapshot["signed"]["meta"]["targets.json"]["version"], 1);
    // The same upload again: accepted, one entry, published.
    let (s, text) = app.put(&meta_url, &release_token, r.metadata.clone()).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let entries = entries_after(&app, start.as_deref()).await;
    assert_eq!(
        actions(&entries),
        ["repo.target", "repo.refresh", "repo.metadata"]
    );
    assert!(entries.iter().all(|e| e["token_id"] == release_id.as_str()));
    let (s, _, body) = app
        .call(
            Method::GET,
            &format!("/repo/targets/{}", r.target_path),
            None,
            &[],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.as_ref(), r.target.as_slice());
}

crate::both_backends!(
    every_change_is_audited_by_token_id_in_its_transaction,
    a_failed_upload_is_not_audited_nor_published_later,
);

fn refusals(metrics: &str, reason: &str) -> u64 {
    let prefix = format!("nightlatch_admin_auth_refusals_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_authentications_are_counted_and_sampled_into_the_log() {
    let app = TestApp::new().await;
    let (viewer, viewer_id) = named_token(&app, "viewer-person", "viewer").await;
    let metrics = || async {
        let (_, _, b) = app.call(Method::GET, "/metrics", None, &[], "").await;
        String::from_utf8(b.to_vec()).unwrap()
    };
    let before = metrics().await;
    let start = last_entry_id(&app).await;
    let bad = "nlt_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    for _ in 0..3 {
        let (s, _, _) = app
            .call(Method::GET, "/admin/v1/devices", None, &[], "")
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..2 {
        let (s, _, _) = app
            .call(Method::GET, "/admin/v1/devices", Some(bad), &[], "")
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, _) = app
        .call(Method::GET, "/admin/v1/tokens", Some(&viewer), &[], "")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let after = metrics().await;
    for (reason, n) in [("missing_token", 3), ("bad_token", 2), ("forbidden", 1)] {
        assert_eq!(
            refusals(&after, reason) - refusals(&before, reason),
            n,
            "{reason}"
        );
    }
    // One entry per reason, none carrying the token or its hash.
    let entries = entries_after(&app, start.as_deref()).await;
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "auth.refused")
        .collect();
    let reasons: Vec<&str> = refused
        .iter()
        .map(|e| e["detail"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["missing_token", "bad_token", "forbidden"]);
    let text = serde_json::to_string(&entries).unwrap();
    let hash = update_server::auth::hash_token(bad);
    assert!(!text.contains(bad) && !text.contains(&hash[..16]));
    assert!(!text.contains(&viewer));
    assert_eq!(refused[0]["token_id"], Value::Null);
    assert_eq!(refused[0]["actor"], "anonymous");
    assert_eq!(refused[0]["subject"], "GET /admin/v1/devices");
    assert_eq!(refused[2]["token_id"], viewer_id.as_str());
    assert_eq!(refused[2]["detail"]["needed"], "security-admin");
    // A minute later the next refusal is sampled again, with the count of
    // those it stands for.
    app.clock
        .advance_ms(update_server::auth::REFUSAL_SAMPLE_MS + 1000);
    let (s, _, _) = app
        .call(Method::GET, "/admin/v1/devices", Some(bad), &[], "")
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let entries = entries_after(&app, start.as_deref()).await;
    let last = entries.last().unwrap();
    assert_eq!(
        (last["action"].as_str(), last["detail"]["reason"].as_str()),
        (Some("auth.refused"), Some("bad_token"))
    );
    assert_eq!(last["detail"]["refusals_not_recorded_since_last_entry"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_names_are_readable_and_system_is_reserved() {
    let app = TestApp::new().await;
    let long = "x".repeat(65);
    for bad in [
        "system",
        "System",
        "SYSTEM",
        "",
        "   ",
        "\t",
        "admin\u{202E}nimda",
        "\u{202A}left",
        "\u{2066}isolate\u{2069}",
        "zero\u{200B}width",
        "joiner\u{200D}",
        "\u{FEFF}bom",
        "new\nline",
        "bell\u{7}",
        " padded",
        long.as_str(),
    ] {
        let (s, v) = app
            .json(
                Method::POST,
                "/admin/v1/tokens",
                Some(&app.admin),
                Some(json!({"name": bad, "role": "viewer"})),
            )
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_name")),
            "{bad:?}: {v}"
        );
        assert!(v["message"].as_str().unwrap().len() > 10, "{v}");
    }
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "admin\u{202E}", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("U+202E"), "{v}");
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "system", "role": "viewer"})),
        )
        .await;
    assert!(
        v["message"].as_str().unwrap().contains("reserved"),
        "{s} {v}"
    );
    for good in ["Zoë Ops", "release-bot 2", &"y".repeat(64)] {
        let (s, v) = app
            .json(
                Method::POST,
                "/admin/v1/tokens",
                Some(&app.admin),
                Some(json!({"name": good, "role": "viewer"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{good:?}: {v}");
    }
}
