//! The read endpoints the operator console (issue 14) and CLI (issue 15)
//! are written against: device filters, paging and totals; the audit log's
//! filters and CSV export; the release catalog; repository health; rollout
//! previews. Each one's shape and role; numbers on small fleets with a
//! fixed virtual date (the test clock, never today's date). The scale test
//! (`--ignored`) times them over 100,000 locks and 1,000,000 history rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, Lock, T0, TestApp, ids};

const MODEL: &str = "nl-lock-v2";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// GET `path` with `token`: status and JSON.
async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    app.json(Method::GET, path, token, None).await
}

/// GET `path` as the bootstrap admin; the JSON (must be 200).
async fn ok(app: &TestApp, path: &str) -> Value {
    let (s, v) = get(app, path, Some(&app.admin)).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

/// Import locks with sites and groups: (id, model, site, groups).
async fn import(app: &TestApp, locks: &[(String, &str, &str, Vec<&str>)]) -> Vec<Lock> {
    let devices: Vec<Value> = locks
        .iter()
        .map(|(id, model, site, groups)| {
            let l = Lock::new(id, model);
            json!({"id": id, "hardware_model": model, "site": site, "groups": groups,
                   "public_key": hex::encode(l.key.verifying_key().as_bytes())})
        })
        .collect();
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/devices/import",
            Some(&app.admin),
            Some(json!({ "devices": devices })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    locks
        .iter()
        .map(|(id, model, ..)| Lock::new(id, model))
        .collect()
}

/// Every id a device query returns, paging with `limit`; asserts each id
/// comes once and `total` stays the count.
async fn all_pages(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut total = None;
    loop {
        let mut path = format!("/admin/v1/devices?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let v = ok(app, &path).await;
        let t = v["total"].as_i64().expect("total");
        assert_eq!(v["total_capped"], false, "{path}");
        assert_eq!(*total.get_or_insert(t), t, "total changes while paging");
        let page = v["devices"].as_array().unwrap();
        assert!(page.len() <= limit);
        if page.is_empty() {
            assert_eq!(v["next_after"], Value::Null);
            break;
        }
        for d in page {
            seen.push(d["id"].as_str().unwrap().to_owned());
        }
        after = v["next_after"].as_str().map(str::to_owned);
        assert_eq!(after.as_deref(), seen.last().map(String::as_str));
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "{query}: a lock came twice");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "{query}: pages are in id order");
    assert_eq!(total, Some(seen.len() as i64), "{query}: total");
    seen
}

/// Device filters, paging (each lock exactly once across pages) and totals.
async fn device_filters_paging_and_totals(backend: Backend) {
    let app = TestApp::with(backend).await;
    // 40 locks: two models, three sites, groups; ids in two prefixes.
    let mut spec = Vec::new();
    for i in 0..40usize {
        let id = if i < 25 {
            format!("door-{i:03}")
        } else {
            format!("gate-{i:03}")
        };
        let model = if i % 4 == 0 { "nl-lock-v1" } else { MODEL };
        let site = ["hq", "depot", "annex"][i % 3];
        let groups = if i % 5 == 0 {
            vec!["pilot", "east"]
        } else {
            vec!["east"]
        };
        spec.push((id, model, site, groups));
    }
    let mut locks = import(&app, &spec).await;
    // Check-ins at known times: locks 0..20 at T0 + 1 h (half of them on
    // 1.1.0), locks 20..30 at T0 + 2 d; 30..40 never.
    for (i, l) in locks.iter_mut().enumerate().take(20) {
        if i % 2 == 1 {
            l.version = "1.1.0".into();
        }
    }
    app.clock.set_ms(T0 + HOUR);
    let r = app.check_in_all(&mut locks[..20], 64).await;
    assert!(r.iter().all(Result::is_ok));
    app.clock.set_ms(T0 + 2 * DAY);
    let r = app.check_in_all(&mut locks[20..30], 64).await;
    assert!(r.iter().all(Result::is_ok));
    for id in ["door-003", "gate-027"] {
        let (s, v) = app
            .json(
                Method::POST,
                &format!("/admin/v1/devices/{id}/revoke"),
                Some(&app.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    type Spec<'a> = (String, &'a str, &'a str, Vec<&'a str>);
    let ids_where = |f: &dyn Fn(usize, &Spec<'_>) -> bool| -> Vec<String> {
        let mut v: Vec<String> = spec
            .iter()
            .enumerate()
            .filter(|(i, s)| f(*i, s))
            .map(|(_, s)| s.0.clone())
            .collect();
        v.sort();
        v
    };
    let revoked = |id: &str| id == "door-003" || id == "gate-027";
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("", ids_where(&|_, _| true)),
        ("prefix=door-", ids_where(&|_, s| s.0.starts_with("door-"))),
        (
            "prefix=door-01",
            ids_where(&|_, s| s.0.starts_with("door-01")),
        ),
        ("prefix=gat", ids_where(&|_, s| s.0.starts_with("gat"))),
        ("model=nl-lock-v1", ids_where(&|_, s| s.1 == "nl-lock-v1")),
        ("site=depot", ids_where(&|_, s| s.2 == "depot")),
        ("group=pilot", ids_where(&|_, s| s.3.contains(&"pilot"))),
        ("version=1.1.0", ids_where(&|i, _| i < 20 && i % 2 == 1)),
        (
            "version=1.0.0",
            ids_where(&|i, _| (i < 20 && i % 2 == 0) || (20..30).contains(&i)),
        ),
        ("status=revoked", ids_where(&|_, s| revoked(&s.0))),
        ("status=active", ids_where(&|_, s| !revoked(&s.0))),
        (
            "seen_after=2030-01-02T00:00:00Z",
            ids_where(&|i, _| (20..30).contains(&i)),
        ),
        (
            "seen_before=2030-01-02T00:00:00Z",
            ids_where(&|i, _| i < 20),
        ),
        (
            "seen_after=2030-01-01T01:00:00Z&seen_before=2030-01-01T01:00:01Z",
            ids_where(&|i, _| i < 20),
        ),
        (
            "model=nl-lock-v2&site=hq&group=pilot&status=active",
            ids_where(&|_, s| {
                s.1 == MODEL && s.2 == "hq" && s.3.contains(&"pilot") && !revoked(&s.0)
            }),
        ),
        (
            "prefix=door-&version=1.0.0&seen_before=2030-01-01T02:00:00Z",
            ids_where(&|i, s| s.0.starts_with("door-") && i < 20 && i % 2 == 0),
        ),
        ("prefix=nobody", Vec::new()),
        ("model=", ids_where(&|_, _| true)),
    ];
    for (query, want) in &cases {
        for limit in [1, 7, 1000] {
            let got = all_pages(&app, query, limit).await;
            assert_eq!(&got, want, "{query} (limit {limit})");
        }
    }
    // The existing fields are all there.
    let v = ok(&app, "/admin/v1/devices?prefix=door-001").await;
    let d = &v["devices"][0];
    for field in [
        "id",
        "hardware_model",
        "public_key",
        "site",
        "groups",
        "status",
        "registered_at",
        "revoked_at",
        "last_seen",
        "last_counter",
        "firmware",
        "boot_state",
        "battery_percent",
        "time_zone",
        "last_update",
        "rollout",
        "director",
    ] {
        assert!(d.get(field).is_some(), "{field} missing in {d}");
    }
    assert_eq!(d["firmware"]["version"], "1.1.0");
    assert_eq!(d["last_seen"], "2030-01-01T01:00:00Z");
    assert_eq!(d["groups"], json!(["east"]));
    // Refusals.
    for bad in [
        "status=lost",
        "seen_after=yesterday",
        "seen_before=2030-13-01T00:00:00Z",
        "prefix=a%20b",
        "colour=red",
    ] {
        let (s, v) = get(&app, &format!("/admin/v1/devices?{bad}"), Some(&app.admin)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"], "bad_query", "{bad}");
    }
}

/// The count is capped: more than 10,000 matches say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_total_is_capped_at_10000() {
    let app = TestApp::new().await;
    app.register(&ids("lock", 10_001), MODEL, &[]).await;
    let v = ok(&app, "/admin/v1/devices?limit=5").await;
    assert_eq!(v["total"], 10_000);
    assert_eq!(v["total_capped"], true);
    assert_eq!(v["devices"].as_array().unwrap().len(), 5);
    let v = ok(&app, "/admin/v1/devices?limit=5&prefix=lock-0999").await;
    assert_eq!(v["total"], 10);
    assert_eq!(v["total_capped"], false);
}

/// Roles of the read endpoints: no token 401, a viewer reads what viewers
/// may, lower roles get 403 where the endpoint needs more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_endpoints_answer_their_roles() {
    let app = TestApp::new().await;
    let viewer = app.token("viewer").await;
    let operator = app.token("operator").await;
    let release = app.token("release").await;
    let cases: &[(Method, &str, &str)] = &[
        (Method::GET, "/admin/v1/devices?status=active", "viewer"),
        (
            Method::GET,
            "/admin/v1/audit?action=token.*",
            "security-admin",
        ),
        (
            Method::GET,
            "/admin/v1/audit/export?actor=alice",
            "security-admin",
        ),
    ];
    let tokens: HashMap<&str, &str> = [
        ("viewer", viewer.as_str()),
        ("operator", operator.as_str()),
        ("release", release.as_str()),
        ("security-admin", app.admin.as_str()),
    ]
    .into_iter()
    .collect();
    let order = ["viewer", "operator", "release", "security-admin"];
    for (method, path, role) in cases {
        let (s, _) = app.json(method.clone(), path, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path} without a token");
        let need = order.iter().position(|r| r == role).unwrap();
        for (i, r) in order.iter().enumerate() {
            let (s, v) = app.json(method.clone(), path, Some(tokens[r]), None).await;
            if i < need {
                assert_eq!(s, StatusCode::FORBIDDEN, "{path} as {r}: {v}");
            } else {
                assert_eq!(s, StatusCode::OK, "{path} as {r}: {v}");
            }
        }
    }
}

/// A token named `name` with `role`: (secret, id).
async fn named_token(app: &TestApp, name: &str, role: &str) -> (String, String) {
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

/// Every audit entry matching `query`, paging with `limit`.
async fn audit_pages(app: &TestApp, query: &str, limit: usize) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/admin/v1/audit?limit={limit}&{query}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let v = ok(app, &path).await;
        let page = v["entries"].as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        assert!(page.len() <= limit);
        after = v["next_after"].as_str().map(str::to_owned);
        out.extend(page);
    }
}

/// RFC 4180 records (quoted fields, doubled quotes, CRLF line ends).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\n') => panic!("bare LF outside a quoted cell"),
            (false, c) => cell.push(c),
        }
    }
    assert!(
        cell.is_empty() && row.is_empty(),
        "the last record ends with CRLF"
    );
    rows
}

/// GET the audit export with `query`.
async fn export(app: &TestApp, query: &str) -> (StatusCode, axum::http::HeaderMap, bytes::Bytes) {
    let path = format!("/admin/v1/audit/export?{query}");
    app.call(Method::GET, &path, Some(&app.admin), &[], "")
        .await
}

/// Audit filters (actor, token id, exact and prefix actions, time window),
/// paging, and the CSV export: header row, RFC 4180 quoting, formula
/// neutralisation, row cap, role.
async fn audit_filters_and_csv_export(backend: Backend) {
    let app = TestApp::with(backend).await;
    let (alice, alice_id) = named_token(&app, "alice", "operator").await;
    let (formula, formula_id) = named_token(&app, "=1+2", "operator").await;
    let (viewer, _) = named_token(&app, "@carol", "viewer").await;
    app.clock.set_ms(T0 + HOUR);
    let policy = json!({"quiet_hours": {"start": "01:00", "end": "05:00"}, "blackout_dates": ["2030-01-05"], "time_zone": "Europe/Berlin"});
    let (s, v) = app
        .json(
            Method::PUT,
            "/admin/v1/sites/hq/policy",
            Some(&alice),
            Some(policy.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.clock.set_ms(T0 + 2 * HOUR);
    let (s, v) = app
        .json(
            Method::PUT,
            "/admin/v1/sites/-annex/policy",
            Some(&formula),
            Some(policy),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    app.clock.set_ms(T0 + 3 * HOUR);
    import(&app, &[("door-1".into(), MODEL, "hq", vec!["east"])]).await;
    let l = Lock::new("door-2", MODEL);
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/devices",
            Some(&alice),
            Some(
                json!({"id": "door-2", "hardware_model": MODEL, "site": "hq",
                        "public_key": hex::encode(l.key.verifying_key().as_bytes())}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let all = audit_pages(&app, "", 1000).await;
    assert!(all.len() >= 6, "{all:#?}");
    let at = |e: &Value| update_server::clock::parse_rfc3339(e["at"].as_str().unwrap()).unwrap();
    type Pred = Box<dyn Fn(&Value) -> bool>;
    let cases: Vec<(String, Pred)> = vec![
        ("actor=alice".into(), Box::new(|e| e["actor"] == "alice")),
        (
            format!("token_id={alice_id}"),
            Box::new(move |e| e["token_id"] == alice_id.as_str()),
        ),
        (
            format!("token_id={formula_id}"),
            Box::new(move |e| e["token_id"] == formula_id.as_str()),
        ),
        (
            "action=site.policy".into(),
            Box::new(|e| e["action"] == "site.policy"),
        ),
        (
            "action=site.*".into(),
            Box::new(|e| e["action"].as_str().unwrap().starts_with("site.")),
        ),
        (
            "action=token.*".into(),
            Box::new(|e| e["action"].as_str().unwrap().starts_with("token.")),
        ),
        (
            "action=devic*".into(),
            Box::new(|e| e["action"].as_str().unwrap().starts_with("devic")),
        ),
        (
            "action=device.register".into(),
            Box::new(|e| e["action"] == "device.register"),
        ),
        ("action=*".into(), Box::new(|_| true)),
        ("action=site".into(), Box::new(|_| false)),
        (
            "since=2030-01-01T01:30:00Z".into(),
            Box::new(move |e| at(e) >= T0 + 90 * 60_000),
        ),
        (
            "until=2030-01-01T02:00:00Z".into(),
            Box::new(move |e| at(e) < T0 + 2 * HOUR),
        ),
        (
            "since=2030-01-01T02:00:00Z&until=2030-01-01T03:00:00Z".into(),
            Box::new(move |e| (T0 + 2 * HOUR..T0 + 3 * HOUR).contains(&at(e))),
        ),
        (
            "actor=alice&action=device.*&since=2030-01-01T00:30:00Z".into(),
            Box::new(|e| e["actor"] == "alice" && e["action"] == "device.register"),
        ),
    ];
    for (query, pred) in &cases {
        let want: Vec<&Value> = all.iter().filter(|e| pred(e)).collect();
        for limit in [1, 1000] {
            let got = audit_pages(&app, query, limit).await;
            let got_ids: Vec<&Value> = got.iter().map(|e| &e["id"]).collect();
            let want_ids: Vec<&Value> = want.iter().map(|e| &e["id"]).collect();
            assert_eq!(got_ids, want_ids, "{query} (limit {limit})");
        }
    }
    // Helper-3's fields are all there.
    let e = &audit_pages(&app, "action=site.policy&actor=alice", 10).await[0];
    assert_eq!(e["subject"], "hq");
    assert_eq!(e["role"], "operator");
    assert!(e["detail"]["quiet_hours"].is_object());
    for bad in [
        "action=a*b",
        "action=**",
        "since=tomorrow",
        "until=2030-02-30T00:00:00Z",
        "who=me",
    ] {
        let (s, v) = get(&app, &format!("/admin/v1/audit?{bad}"), Some(&app.admin)).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_query")),
            "{bad}: {v}"
        );
    }

    // The export: every entry, as CSV.
    let (s, headers, body) = export(&app, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    assert!(headers.get("x-nightlatch-truncated").is_none());
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.starts_with("id,at,token_id,actor,role,action,subject,detail\r\n"));
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "id", "at", "token_id", "actor", "role", "action", "subject", "detail"
        ]
    );
    let now_all = audit_pages(&app, "", 1000).await;
    assert_eq!(rows.len() - 1, now_all.len());
    for (row, e) in rows[1..].iter().zip(&now_all) {
        assert_eq!(row.len(), 8);
        assert_eq!(row[0], e["id"].as_str().unwrap());
        assert_eq!(row[1], e["at"].as_str().unwrap());
        assert_eq!(row[2], e["token_id"].as_str().unwrap_or(""));
        let actor = e["actor"].as_str().unwrap();
        let expect_actor = if actor.starts_with(['=', '+', '-', '@']) {
            format!("'{actor}")
        } else {
            actor.to_owned()
        };
        assert_eq!(row[3], expect_actor);
        assert_eq!(row[5], e["action"].as_str().unwrap());
        let detail: Value = serde_json::from_str(&row[7]).unwrap();
        assert_eq!(detail, e["detail"]);
    }
    // Formulas are neutralised, quotes doubled inside quoted cells.
    let (_, _, body) = export(
        &app,
        &format!(
            "token_id={}",
            audit_pages(&app, "actor=%3D1%2B2", 10).await[0]["token_id"]
                .as_str()
                .unwrap()
        ),
    )
    .await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    let rows = parse_csv(&text);
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(rows[1][3], "'=1+2");
    assert_eq!(rows[1][6], "'-annex");
    assert!(
        text.contains(",'=1+2,operator,site.policy,'-annex,\"{\"\""),
        "{text}"
    );
    assert!(!text.contains(",=1+2,"));
    // Filters and the row cap.
    let (s, headers, body) = export(&app, "action=site.*&limit=1").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers["x-nightlatch-truncated"], "true");
    let rows = parse_csv(std::str::from_utf8(&body).unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][6], "hq");
    let (_, headers, body) = export(&app, &format!("action=site.*&after={}", rows[1][0])).await;
    assert!(headers.get("x-nightlatch-truncated").is_none());
    let rows = parse_csv(std::str::from_utf8(&body).unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][6], "'-annex");
    let (s, _, body) = export(&app, "since=2031-01-01T00:00:00Z").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body.as_ref(),
        b"id,at,token_id,actor,role,action,subject,detail\r\n"
    );
    let (s, _, _) = export(&app, "action=x*y").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Security-admin only, like the list.
    for token in [&alice, &viewer] {
        let (s, _, _) = app
            .call(Method::GET, "/admin/v1/audit/export", Some(token), &[], "")
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _, _) = app
        .call(Method::GET, "/admin/v1/audit/export", None, &[], "")
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// A payload of `n` bytes for version tests.
fn payload(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The release catalog: every published image by model, newest version
/// first, its patches, and when it was published (from the audit log).
async fn releases_list_images_patches_and_publication(backend: Backend) {
    let app = TestApp::with(backend).await;
    let v = ok(&app, "/admin/v1/releases").await;
    assert_eq!(v, json!({"releases": []}));
    let v1 = payload(1, 30_000);
    let mut v2 = v1.clone();
    v2[100..200].fill(7);
    let e1 = app.envelope(MODEL, "1.0.0", 1, &v1);
    let e15 = app.envelope(MODEL, "1.10.0", 1, &payload(3, 30_000));
    let other = app.envelope("nl-lock-v1", "3.0.0", 4, &payload(9, 1000));
    app.clock.set_ms(T0 + HOUR);
    app.publish(&[e1.clone(), e15, other]).await;
    let e2 = app.envelope(MODEL, "2.0.0", 2, &v2);
    let made = nightlatch_repo::delta::make_patch(
        &std::fs::read(&e1).unwrap(),
        &std::fs::read(&e2).unwrap(),
        &nightlatch_repo::delta::NoProgress,
    )
    .unwrap();
    let patch = app.dir.path().join("p.nldp");
    std::fs::write(&patch, &made.patch).unwrap();
    app.clock.set_ms(T0 + 5 * HOUR);
    app.publish(&[e2.clone(), patch]).await;

    let v = ok(&app, "/admin/v1/releases").await;
    let r = v["releases"].as_array().unwrap();
    let names: Vec<&str> = r.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "nl-lock-v1/3.0.0.nlfw",
            "nl-lock-v2/2.0.0.nlfw",
            "nl-lock-v2/1.10.0.nlfw",
            "nl-lock-v2/1.0.0.nlfw"
        ],
        "model, then version newest first (numerically: 1.10.0 > 1.0.0)"
    );
    let sha = |p: &std::path::Path| {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            std::fs::read(p).unwrap(),
        ))
    };
    let two = &r[1];
    assert_eq!(two["hardware_model"], MODEL);
    assert_eq!(two["version"], "2.0.0");
    assert_eq!(two["security_counter"], 2);
    assert_eq!(two["length"], std::fs::metadata(&e2).unwrap().len());
    assert_eq!(two["sha256"], sha(&e2));
    assert_eq!(two["published_at"], "2030-01-01T05:00:00Z");
    let patches = two["patches"].as_array().unwrap();
    assert_eq!(patches.len(), 1, "{two}");
    assert_eq!(patches[0]["from_version"], "1.0.0");
    assert_eq!(patches[0]["length"], made.patch.len() as u64);
    assert!(
        patches[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("nl-lock-v2/")
    );
    assert_eq!(r[3]["published_at"], "2030-01-01T01:00:00Z");
    assert_eq!(r[3]["patches"], json!([]));
    assert_eq!(r[0]["published_at"], "2030-01-01T01:00:00Z");
    assert_eq!(r[0]["security_counter"], 4);
    for x in r {
        let keys: BTreeSet<&str> = x.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "name",
                "hardware_model",
                "version",
                "security_counter",
                "length",
                "sha256",
                "published_at",
                "patches"
            ])
        );
    }
    // One model.
    let v = ok(&app, "/admin/v1/releases?model=nl-lock-v1").await;
    assert_eq!(v["releases"].as_array().unwrap().len(), 1);
    let v = ok(&app, "/admin/v1/releases?model=nobody").await;
    assert_eq!(v, json!({"releases": []}));
}

/// The role of `repository` named `role` in a health answer.
fn role<'a>(v: &'a Value, repository: &str, role: &str) -> &'a Value {
    v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repository"] == repository)
        .and_then(|r| {
            r["roles"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["role"] == role)
        })
        .unwrap_or_else(|| panic!("no {repository} {role} in {v}"))
}

/// Repository health: every role of both repositories, and warnings near
/// expiry (the clock set relative to the metadata's own expiry dates).
async fn repo_health_lists_roles_and_warns_near_expiry(backend: Backend) {
    let app = TestApp::with(backend).await;
    app.publish(&[app.envelope(MODEL, "1.0.0", 1, b"one")])
        .await;
    let v = ok(&app, "/admin/v1/repo/health").await;
    assert_eq!(v["warning_days"], 7);
    let image: Vec<&str> = v["repositories"][0]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(v["repositories"][0]["repository"], "image");
    assert_eq!(image, ["root", "targets", "snapshot", "timestamp"]);
    assert_eq!(v["repositories"][1]["repository"], "director");
    let director: Vec<&str> = v["repositories"][1]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(director, ["root", "targets", "timestamp"]);
    for repo in v["repositories"].as_array().unwrap() {
        for r in repo["roles"].as_array().unwrap() {
            assert!(r["threshold"].as_u64().unwrap() >= 1, "{r}");
            let keys = r["keys"].as_array().unwrap();
            assert!(!keys.is_empty(), "{r}");
            for k in keys {
                assert_eq!(k["keytype"], "ed25519", "{k}");
                assert_eq!(k["scheme"], "ed25519", "{k}");
                assert_eq!(k["keyid"].as_str().unwrap().len(), 64);
            }
        }
    }
    assert_eq!(role(&v, "image", "targets")["version"], 2);
    assert_eq!(role(&v, "image", "targets")["online"], false);
    assert_eq!(role(&v, "image", "timestamp")["online"], true);
    assert_eq!(role(&v, "director", "targets")["version"], Value::Null);
    assert_eq!(role(&v, "director", "timestamp")["expires"], Value::Null);
    assert_eq!(role(&v, "director", "timestamp")["warning"], false);
    assert_eq!(role(&v, "director", "targets")["expires_in_s"], 7 * 86_400);

    // Move the clock to three days before the image targets expire.
    let expires = |v: &Value, repo: &str, r: &str| {
        update_server::clock::parse_rfc3339(role(v, repo, r)["expires"].as_str().unwrap()).unwrap()
    };
    let targets_expire = expires(&v, "image", "targets");
    let root_expires = expires(&v, "image", "root");
    let ts_expires = expires(&v, "image", "timestamp");
    assert!(
        root_expires > targets_expire + 30 * DAY,
        "the dev root outlives targets"
    );
    app.clock.set_ms(targets_expire - 3 * DAY);
    let v = ok(&app, "/admin/v1/repo/health").await;
    let t = role(&v, "image", "targets");
    assert_eq!(t["warning"], true, "{t}");
    assert_eq!(t["expires_in_s"], 3 * 86_400);
    assert_eq!(t["warn_within_s"], 7 * 86_400);
    assert_eq!(role(&v, "image", "root")["warning"], false);
    assert_eq!(role(&v, "director", "targets")["warning"], false);
    // The timestamp (re-signed by the server) is long expired by then.
    assert_eq!(role(&v, "image", "timestamp")["warning"], true);
    // Ten days before: no warning at 7 days, one at 14.
    app.clock.set_ms(targets_expire - 10 * DAY);
    let v = ok(&app, "/admin/v1/repo/health").await;
    assert_eq!(role(&v, "image", "targets")["warning"], false);
    let v = ok(&app, "/admin/v1/repo/health?warning_days=14").await;
    assert_eq!(v["warning_days"], 14);
    assert_eq!(role(&v, "image", "targets")["warning"], true);
    // Online roles warn only when re-signing has fallen behind: a
    // timestamp with two hours left does, one with 23 hours left does not.
    app.clock.set_ms(ts_expires - 23 * HOUR);
    let v = ok(&app, "/admin/v1/repo/health?warning_days=30").await;
    let ts = role(&v, "image", "timestamp");
    assert_eq!(ts["warning"], false, "{ts}");
    assert_eq!(ts["warn_within_s"], 6 * 3600);
    app.clock.set_ms(ts_expires - 2 * HOUR);
    let v = ok(&app, "/admin/v1/repo/health").await;
    assert_eq!(role(&v, "image", "timestamp")["warning"], true);
    // The director root expires, too.
    let droot = expires(&v, "director", "root");
    app.clock.set_ms(droot - DAY);
    let v = ok(&app, "/admin/v1/repo/health").await;
    assert_eq!(role(&v, "director", "root")["warning"], true);
    let (s, v) = get(
        &app,
        "/admin/v1/repo/health?warning_days=-1",
        Some(&app.admin),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

const TARGET: &str = "nl-lock-v2/2.0.0.nlfw";

/// A fleet for previews, checked in at 2030-01-01T12:00Z (a Tuesday) on
/// 1.0.0 (reporting Europe/Berlin): 40 locks at `hq` (01:00–05:00 Berlin,
/// 2 January blacked out; the even ones in group `pilot`), 30 at `ny`
/// (02:00–03:00 New York), 20 at `annex` (no policy: all day, the lock's
/// zone), 10 at `frozen` (UTC, every date to 20 January blacked out); and
/// locks no rollout of the target may take: never checked in, already on
/// 2.0.0, revoked, another model.
async fn preview_fleet(backend: Backend) -> (TestApp, Vec<(String, &'static str, bool)>) {
    let app = TestApp::with(backend).await;
    app.publish(&[
        app.envelope(MODEL, "1.0.0", 1, b"one"),
        app.envelope(MODEL, "2.0.0", 2, b"two"),
        app.envelope("nl-lock-v1", "1.0.0", 1, b"old"),
    ])
    .await;
    let blackout: Vec<String> = (1..=20).map(|d| format!("2030-01-{d:02}")).collect();
    for (site, policy) in [
        (
            "hq",
            json!({"quiet_hours": {"start": "01:00", "end": "05:00"}, "blackout_dates": ["2030-01-02"], "time_zone": "Europe/Berlin"}),
        ),
        (
            "ny",
            json!({"quiet_hours": {"start": "02:00", "end": "03:00"}, "time_zone": "America/New_York"}),
        ),
        (
            "frozen",
            json!({"quiet_hours": {"start": "01:00", "end": "05:00"}, "blackout_dates": blackout, "time_zone": "UTC"}),
        ),
    ] {
        let (s, v) = app
            .json(
                Method::PUT,
                &format!("/admin/v1/sites/{site}/policy"),
                Some(&app.admin),
                Some(policy),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let mut spec = Vec::new();
    let mut fleet = Vec::new();
    for (site, n) in [("hq", 40), ("ny", 30), ("annex", 20), ("frozen", 10)] {
        for i in 0..n {
            let id = format!("{site}-{i:03}");
            let pilot = site == "hq" && i % 2 == 0;
            spec.push((
                id.clone(),
                MODEL,
                site,
                if pilot { vec!["pilot"] } else { vec![] },
            ));
            fleet.push((id, site, pilot));
        }
    }
    for i in 0..14 {
        let model = if i >= 10 { "nl-lock-v1" } else { MODEL };
        spec.push((format!("other-{i:02}"), model, "hq", vec!["pilot"]));
    }
    let mut locks = import(&app, &spec).await;
    app.clock.set_ms(T0 + 12 * HOUR);
    for l in &mut locks {
        if l.id == "other-05" || l.id == "other-06" || l.id == "other-07" {
            l.version = "2.0.0".into();
            l.security_counter = 2;
        }
    }
    // other-00..04 never check in.
    let checking: Vec<usize> = (0..locks.len())
        .filter(|&i| !(locks[i].id.starts_with("other-0") && locks[i].id.as_str() < "other-05"))
        .collect();
    let mut active: Vec<Lock> = checking.iter().map(|&i| locks[i].clone()).collect();
    let r = app.check_in_all(&mut active, 64).await;
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    for id in ["other-08", "other-09"] {
        let (s, v) = app
            .json(
                Method::POST,
                &format!("/admin/v1/devices/{id}/revoke"),
                Some(&app.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    (app, fleet)
}

/// POST a preview as `token`.
async fn preview(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.json(
        Method::POST,
        "/admin/v1/rollouts/preview",
        Some(token),
        Some(body),
    )
    .await
}

/// `nights` of a preview wave as (date, locks).
fn nights(w: &Value) -> Vec<(String, u64)> {
    w["nights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["date"].as_str().unwrap().to_owned(),
                n["locks"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Preview numbers on a small fleet with known site windows: eligibility
/// and waves as the planner decides them, each lock's install night from
/// the lock's own scheduler, unscheduled locks, the horizon, a security
/// deadline, groups; it creates nothing.
async fn rollout_preview_places_installs_by_site_window(backend: Backend) {
    let (app, fleet) = preview_fleet(backend).await;
    let operator = app.token("operator").await;
    let name = "2.0.0 staged";
    let body = json!({"name": name, "target": TARGET,
        "waves": [{"share": 0.3, "min_soak": "2d"}, {"share": 1.0}]});
    let (s, v) = preview(&app, &operator, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["target"], TARGET);
    assert_eq!(v["hardware_model"], MODEL);
    assert_eq!(v["horizon_days"], 14);
    assert_eq!(v["eligible"], 100, "{v}");
    assert_eq!(v["start_at"], "2030-01-01T12:00:00Z");
    let id = update_server::routes::rollout_preview::provisional_id(TARGET, name);
    assert_eq!(v["provisional_id"], id.as_str());
    // Waves by the stable bucket.
    let wave_of =
        |lock: &str| usize::from(update_server::rollouts::bucket::bucket(&id, lock) >= 0.3);
    let waves = v["waves"].as_array().unwrap();
    assert_eq!(waves.len(), 2);
    let count = |w: usize, site: &str| {
        fleet
            .iter()
            .filter(|(l, s, _)| *s == site && wave_of(l) == w)
            .count() as u64
    };
    // Where each site's locks install (local dates), per wave:
    // wave 0 from 2030-01-01T12:00Z, wave 1 from 2030-01-03T12:00Z.
    //   hq: 13:00 Berlin, 2 January blacked out -> 03:00 (the middle of the
    //       night, inside 01:00-05:00) on the 3rd; wave 1 -> 4th.
    //   ny: 07:00 New York -> 02:00 on the 2nd; wave 1 -> 4th.
    //   annex: no window, nothing learned: the night prior -> 03:00 Berlin on the 2nd; 4th.
    //   frozen: every date blacked out past the horizon -> unscheduled.
    for (w, dates) in [
        (
            0,
            [
                ("hq", "2030-01-03"),
                ("ny", "2030-01-02"),
                ("annex", "2030-01-02"),
            ],
        ),
        (
            1,
            [
                ("hq", "2030-01-04"),
                ("ny", "2030-01-04"),
                ("annex", "2030-01-04"),
            ],
        ),
    ] {
        let wave = &waves[w];
        assert_eq!(wave["index"], w as u64);
        let in_wave: u64 = ["hq", "ny", "annex", "frozen"]
            .iter()
            .map(|s| count(w, s))
            .sum();
        assert_eq!(wave["eligible"], in_wave, "{wave}");
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for (site, date) in dates {
            *want.entry(date.to_owned()).or_default() += count(w, site);
        }
        want.retain(|_, n| *n > 0);
        let got: BTreeMap<String, u64> = nights(wave).into_iter().collect();
        assert_eq!(got, want, "wave {w}: {wave}");
        assert_eq!(wave["unscheduled"], count(w, "frozen"), "{wave}");
        assert_eq!(wave["expected_door_openings"], 0.0);
    }
    assert_eq!(waves[0]["share"], 0.3);
    assert_eq!(waves[0]["min_soak"], "2d");
    assert_eq!(waves[0]["starts_at"], "2030-01-01T12:00:00Z");
    assert_eq!(waves[1]["starts_at"], "2030-01-03T12:00:00Z");
    assert!(
        count(0, "hq") > 0 && count(1, "hq") > 0,
        "the fleet spans both waves"
    );
    // The same body previews the same (buckets for the same provisional id).
    let (_, again) = preview(&app, &operator, body.clone()).await;
    assert_eq!(again, v);

    // A wave that starts after the horizon is all unscheduled.
    let (s, v) = preview(
        &app,
        &operator,
        json!({"name": name, "target": TARGET,
        "waves": [{"share": 0.3, "min_soak": "20d"}, {"share": 1.0}]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["waves"][1]["unscheduled"], v["waves"][1]["eligible"]);
    assert_eq!(v["waves"][1]["nights"], json!([]));
    // A start in the future moves every night.
    let (_, v) = preview(
        &app,
        &operator,
        json!({"name": name, "target": TARGET,
        "start_at": "2030-01-05T12:00:00Z"}),
    )
    .await;
    assert_eq!(v["start_at"], "2030-01-05T12:00:00Z");
    assert_eq!(nights(&v["waves"][0]), [("2030-01-06".to_owned(), 90)]);
    assert_eq!(v["waves"][0]["unscheduled"], 10);
    // Past a security deadline the window and blackout dates no longer
    // hold: everyone installs at the deadline (19:00 Berlin, 13:00 New
    // York, 18:00 UTC: all on the 1st).
    let (_, v) = preview(
        &app,
        &operator,
        json!({"name": name, "target": TARGET,
        "security_deadline": "2030-01-01T18:00:00Z"}),
    )
    .await;
    assert_eq!(
        nights(&v["waves"][0]),
        [("2030-01-01".to_owned(), 100)],
        "{v}"
    );
    assert_eq!(v["waves"][0]["unscheduled"], 0);
    // Groups and from_versions, as the planner applies them.
    let (_, v) = preview(
        &app,
        &operator,
        json!({"name": name, "target": TARGET, "groups": ["pilot"]}),
    )
    .await;
    assert_eq!(
        v["eligible"], 20,
        "only pilot locks that run an older version: {v}"
    );
    assert_eq!(nights(&v["waves"][0]), [("2030-01-03".to_owned(), 20)]);
    let (_, v) = preview(
        &app,
        &operator,
        json!({"name": name, "target": TARGET, "from_versions": ["1.5.0"]}),
    )
    .await;
    assert_eq!(v["eligible"], 0);
    assert_eq!(v["waves"][0]["nights"], json!([]));
    // A last wave below 100 %: the rest stay outside.
    let (_, v) = preview(
        &app,
        &operator,
        json!({"name": name, "target": TARGET, "waves": [{"share": 0.5}]}),
    )
    .await;
    assert_eq!(v["eligible"], 100);
    assert_eq!(
        v["waves"][0]["eligible"].as_u64().unwrap() + v["outside_waves"].as_u64().unwrap(),
        100
    );

    // It creates nothing and writes no audit entry.
    let rollouts = ok(&app, "/admin/v1/rollouts").await;
    assert_eq!(rollouts["rollouts"], json!([]));
    let entries = audit_pages(&app, "action=rollout.*", 100).await;
    assert!(entries.is_empty(), "{entries:?}");
    // The body is the create body, checked the same way.
    let (s, v) = preview(
        &app,
        &operator,
        json!({"name": name, "target": "nl-lock-v2/9.9.9.nlfw"}),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid"))
    );
    let (s, _) = preview(
        &app,
        &operator,
        json!({"name": name, "target": TARGET, "waves": [{"share": 2}]}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = preview(
        &app,
        &operator,
        json!({"name": name, "target": TARGET, "colour": "red"}),
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    // The same body creates the rollout, with as many locks per wave.
    let (s, created) = app
        .json(
            Method::POST,
            "/admin/v1/rollouts",
            Some(&operator),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    // Operator and above; a viewer is refused.
    let viewer = app.token("viewer").await;
    let (s, _) = preview(&app, &viewer, json!({"name": name, "target": TARGET})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .json(
            Method::POST,
            "/admin/v1/rollouts/preview",
            None,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// A usage summary of a door used `uses` times at each of the local `hours`
/// on each of the 21 days before T0, in `zone`.
fn learned(zone: &str, hours: &[i64], uses: usize) -> lock_app::scheduler::summary::UsageSummary {
    use lock_app::scheduler::tz::{DAY as DAY_S, rule_for_zone};
    use lock_app::scheduler::{UsageProfile, Window};
    let tz = rule_for_zone(zone).unwrap();
    let t0 = T0 / 1000;
    let mut p = UsageProfile::new();
    for day in (1..=21i64).rev() {
        for &h in hours {
            let local = t0 - day * DAY_S + h * 3600 + 300;
            let utc = local - i64::from(tz.offset_at(local));
            for _ in 0..uses {
                p.observe(utc, &tz);
            }
        }
    }
    lock_app::scheduler::summary::UsageSummary::from_profile(
        &p,
        &tz,
        Window::ALL_DAY,
        60,
        t0 as u64,
    )
}

/// Check in `lock` once more, carrying `summary` in its report.
async fn report_usage(
    app: &TestApp,
    lock: &mut Lock,
    summary: &lock_app::scheduler::summary::UsageSummary,
) {
    let mut v: Value = serde_json::from_slice(&lock.body()).unwrap();
    v["report"]["usage"] = json!(summary.to_text());
    let body = serde_json::to_vec(&v).unwrap();
    let sub = update_server::checkin::Submission {
        path_id: lock.id.clone(),
        signature: Some(lock.sign(&body)),
        body: bytes::Bytes::from(body),
    };
    let r = app.state.pipeline.process(vec![sub]).await;
    assert!(r[0].is_ok(), "{:?}", r[0].as_ref().err().map(|e| e.code()));
}

/// Locks that reported what they learned of their doors install in their
/// own quiet slot (inside the site's window), and the door openings at risk
/// come from their heat maps.
async fn rollout_preview_uses_reported_usage(backend: Backend) {
    let (app, _) = preview_fleet(backend).await;
    // annex (all day, Berlin): five doors busy all day but 12:00-18:00, whose
    // scheduler picks 14:00, the middle of that quiet run nearest the night
    // (staged at 13:00 on the 1st: an hour later, that day).
    let afternoon = learned(
        "Europe/Berlin",
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 18, 19, 20, 21, 22, 23],
        2,
    );
    assert_eq!(
        afternoon.quiet[1].map(|q| q.start_minute()),
        Some(14 * 60),
        "{afternoon:?}"
    );
    // ny (02:00-03:00 New York): five doors busy exactly then.
    let busy_at_two = learned("America/New_York", &[2], 3);
    assert_eq!(busy_at_two.heat_at(2, 2), 3);
    for (prefix, summary) in [("annex", &afternoon), ("ny", &busy_at_two)] {
        for i in 0..5 {
            let mut lock = Lock::new(&format!("{prefix}-{i:03}"), MODEL);
            lock.counter = 1;
            report_usage(&app, &mut lock, summary).await;
        }
    }
    let (s, v) = preview(&app, &app.admin, json!({"name": "r", "target": TARGET})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let w = &v["waves"][0];
    assert_eq!(
        nights(w),
        [
            ("2030-01-01".to_owned(), 5),
            ("2030-01-02".to_owned(), 15 + 30),
            ("2030-01-03".to_owned(), 40)
        ],
        "{w}"
    );
    assert_eq!(w["unscheduled"], 10);
    let expected = 5.0
        * busy_at_two.peak_entries()
        * update_server::routes::rollout_preview::HEAT_SHARE_OF_PEAK[3];
    assert!(expected > 0.0);
    let got = w["expected_door_openings"].as_f64().unwrap();
    assert!((got - expected).abs() < 0.001, "{got} vs {expected}");
}

/// The fleet's model × version table, as `GET /admin/v1/fleet/versions`
/// (optionally `?model=`) answers: (model, version, count).
async fn version_table(app: &TestApp, query: &str) -> Vec<(String, String, i64)> {
    let v = ok(app, &format!("/admin/v1/fleet/versions{query}")).await;
    v["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["hardware_model"].as_str().unwrap().to_owned(),
                c["firmware_version"].as_str().unwrap_or("-").to_owned(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// `fleet/versions` is served from a short-lived cache (store::fleet), but
/// every change this server makes to what it counts shows at once: locks
/// imported, a first check-in, a new version installed, a lock revoked. A
/// change behind its back (another replica) shows when the cache is
/// dropped (here by hand; in service after at most COUNTS_TTL).
async fn fleet_versions_follow_changes_at_once(backend: Backend) {
    let app = TestApp::with(backend).await;
    let t = |m: &str, v: &str, n: i64| (m.to_owned(), v.to_owned(), n);
    assert_eq!(version_table(&app, "").await, []);
    let mut locks = app.register(&ids("fv", 4), MODEL, &[]).await;
    let mut other = app.register(&ids("ov", 2), "nl-deadbolt-a", &[]).await;
    assert_eq!(
        version_table(&app, "").await,
        [t("nl-deadbolt-a", "-", 2), t(MODEL, "-", 4)]
    );
    for r in app.check_in_all(&mut locks, 10).await {
        r.unwrap();
    }
    assert_eq!(
        version_table(&app, "").await,
        [t("nl-deadbolt-a", "-", 2), t(MODEL, "1.0.0", 4)]
    );
    locks[0].install("x", "1.1.0");
    locks[1].install("x", "1.1.0");
    for r in app.check_in_all(&mut locks, 10).await {
        r.unwrap();
    }
    for r in app.check_in_all(&mut other, 10).await {
        r.unwrap();
    }
    assert_eq!(
        version_table(&app, "").await,
        [
            t("nl-deadbolt-a", "1.0.0", 2),
            t(MODEL, "1.0.0", 2),
            t(MODEL, "1.1.0", 2)
        ]
    );
    // One model: from the same table.
    assert_eq!(
        version_table(&app, &format!("?model={MODEL}")).await,
        [t(MODEL, "1.0.0", 2), t(MODEL, "1.1.0", 2)]
    );
    let (s, v) = app
        .json(
            Method::POST,
            &format!("/admin/v1/devices/{}/revoke", locks[0].id),
            Some(&app.admin),
            Some(json!({"reason": "stolen"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        version_table(&app, "").await,
        [
            t("nl-deadbolt-a", "1.0.0", 2),
            t(MODEL, "1.0.0", 2),
            t(MODEL, "1.1.0", 1)
        ]
    );
    // Behind the server's back: the cached table, until it is dropped.
    sqlx::query(
        "UPDATE devices SET firmware_version = '9.9.9' WHERE hardware_model = 'nl-deadbolt-a'",
    )
    .execute(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(
        version_table(&app, "").await[0],
        t("nl-deadbolt-a", "1.0.0", 2)
    );
    app.state.store.fleet_changed();
    assert_eq!(
        version_table(&app, "").await[0],
        t("nl-deadbolt-a", "9.9.9", 2)
    );
    // The uncached count agrees.
    let exact = app.state.store.version_counts(None).await.unwrap();
    assert_eq!(exact.len(), 3);
    assert_eq!(exact[0].count, 2);
}

crate::both_backends!(
    fleet_versions_follow_changes_at_once,
    device_filters_paging_and_totals,
    audit_filters_and_csv_export,
    releases_list_images_patches_and_publication,
    repo_health_lists_roles_and_warns_near_expiry,
    rollout_preview_places_installs_by_site_window,
    rollout_preview_uses_reported_usage,
);

/// Bulk rows for the scale test, written by the database itself.
async fn populate_at_scale(app: &TestApp, backend: Backend, locks: i64, events: i64, audit: i64) {
    let pool = app.state.store.pool();
    let pg = backend == Backend::PostgresS3;
    let series = |n: i64| {
        if pg {
            format!(
                "SELECT i FROM generate_series(0::bigint, {}) AS g(i)",
                n - 1
            )
        } else {
            format!(
                "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {}) SELECT i FROM g",
                n - 1
            )
        }
    };
    let pad = |expr: &str, width: usize| {
        if pg {
            format!("lpad(({expr})::text, {width}, '0')")
        } else {
            format!("printf('%0{width}d', {expr})")
        }
    };
    let hex12 = |expr: &str| {
        if pg {
            format!("lpad(to_hex({expr}), 12, '0')")
        } else {
            format!("printf('%012x', {expr})")
        }
    };
    // A director metadata blob as large as a real one (~1.5 kB).
    let blob = if pg {
        "repeat(md5(i::text), 48)".to_owned()
    } else {
        "substr(hex(randomblob(800)), 1, 1536)".to_owned()
    };
    let sql = format!(
        "INSERT INTO devices (id, hardware_model, public_key, site, status, registered_at, revoked_at, last_seen, \
         last_counter, firmware_version, firmware_order, security_counter, boot_state, battery_percent, time_zone, \
         director_version, director_key, director_expires, director_sha256, director_targets) \
         SELECT 'lock-' || {id}, CASE WHEN i % 10 < 6 THEN 'm0' WHEN i % 10 < 9 THEN 'm1' ELSE 'm2' END, \
         {key}, 'site-' || {site}, CASE WHEN i % 100 = 7 THEN 'revoked' ELSE 'active' END, {t0}, NULL, \
         {t0} - (i % 30) * 86400000 - i, 5, '1.' || (i % 5) || '.0', 4294967296 + (i % 5) * 65536, 1, 'confirmed', 80, \
         'Europe/Berlin', 3, 'none|abcdef', {t0} + 86400000, 'ab', {blob} FROM ({series}) AS s",
        id = pad("i", 6),
        key = pad("i", 64),
        site = pad("i % 100", 3),
        t0 = T0,
        series = series(locks),
    );
    sqlx::query(&sql).execute(pool).await.unwrap();
    let sql = format!(
        "INSERT INTO device_tags (device_id, tag) SELECT 'lock-' || {id}, 'g-' || (i % 20) FROM ({series}) AS s",
        id = pad("i", 6),
        series = series(locks),
    );
    sqlx::query(&sql).execute(pool).await.unwrap();
    let sql = format!(
        "INSERT INTO device_tags (device_id, tag) SELECT 'lock-' || {id}, 'pilot' FROM ({series}) AS s WHERE i % 100 = 3",
        id = pad("i", 6),
        series = series(locks),
    );
    sqlx::query(&sql).execute(pool).await.unwrap();
    let sql = format!(
        "INSERT INTO device_events (id, device_id, at, kind, detail) \
         SELECT 'ev-' || {at} || '-' || {n}, 'lock-' || {dev}, {t0} - ({events} - i) * 1000, 'firmware', '{{\"to\":\"1.2.0\"}}' \
         FROM ({series}) AS s",
        at = hex12(&format!("{T0} - ({events} - i) * 1000")),
        n = pad("i", 8),
        dev = pad(&format!("i % {locks}"), 6),
        t0 = T0,
        series = series(events),
    );
    sqlx::query(&sql).execute(pool).await.unwrap();
    let actions = "CASE i % 8 WHEN 0 THEN 'device.import' WHEN 1 THEN 'device.revoke' WHEN 2 THEN 'rollout.create' \
                   WHEN 3 THEN 'rollout.pause' WHEN 4 THEN 'site.policy' WHEN 5 THEN 'token.create' \
                   WHEN 6 THEN 'repo.metadata' ELSE 'auth.refused' END";
    let sql = format!(
        "INSERT INTO audit_log (id, at, token_id, actor, role, action, subject, detail) \
         SELECT 'au-' || {at} || '-' || {n}, {t0} - ({audit} - i) * 60000, 'tk-' || (i % 10), 'user-' || (i % 10), \
         'operator', {actions}, 'subject-' || i, '{{\"reason\":\"=1+2, \\\"quoted\\\"\"}}' FROM ({series}) AS s",
        at = hex12(&format!("{T0} - ({audit} - i) * 60000")),
        n = pad("i", 16),
        t0 = T0,
        series = series(audit),
    );
    sqlx::query(&sql).execute(pool).await.unwrap();
    // Every lock reported a usage summary, each a different one: doors busy
    // but for four hours starting at one of 24 hours, with 1,000 peaks.
    let bases: Vec<lock_app::scheduler::summary::UsageSummary> = (0..24)
        .map(|k| {
            let hours: Vec<i64> = (0..24i64).filter(|h| (h - k).rem_euclid(24) >= 4).collect();
            learned("Europe/Berlin", &hours, 1)
        })
        .collect();
    let ids: Vec<i64> = (0..locks).collect();
    for chunk in ids.chunks(500) {
        let mut sql =
            String::from("INSERT INTO device_usage (device_id, summary, reported_at) VALUES ");
        for (n, _) in chunk.iter().enumerate() {
            if n > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, ${})", 3 * n + 1, 3 * n + 2, 3 * n + 3));
        }
        let mut q = sqlx::query(&sql);
        for &i in chunk {
            let mut s = bases[(i % 24) as usize].clone();
            s.peak_sixteenths = 16 + (i % 1000) as u16;
            q = q.bind(format!("lock-{i:06}")).bind(s.to_text()).bind(T0);
        }
        q.execute(pool).await.unwrap();
    }
    if pg {
        // What autovacuum does after a bulk load (statistics, and the
        // visibility map that index-only scans need).
        sqlx::query("VACUUM ANALYZE").execute(pool).await.unwrap();
    }
}

/// The best of three timed GETs (ms) and the last answer.
async fn timed(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (f64, StatusCode, usize) {
    let mut best = f64::MAX;
    let mut out = (StatusCode::OK, 0);
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let body_text = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        let (s, _, bytes) = app
            .call(method.clone(), path, Some(&app.admin), headers, body_text)
            .await;
        best = best.min(t.elapsed().as_secs_f64() * 1000.0);
        out = (s, bytes.len());
    }
    (best, out.0, out.1)
}

/// Times the console's queries over 100,000 locks (each with its own usage
/// summary), 1,000,000 history rows and 200,000 audit entries (`--ignored --nocapture`; debug builds are
/// several times slower than release).
async fn console_queries_at_scale(backend: Backend) {
    let app = TestApp::with(backend).await;
    app.publish(&[
        app.envelope("m0", "1.0.0", 1, b"one"),
        app.envelope("m0", "2.0.0", 2, b"two"),
    ])
    .await;
    for (site, policy) in [
        (
            "site-000",
            json!({"quiet_hours": {"start": "01:00", "end": "05:00"}, "blackout_dates": ["2030-01-02"], "time_zone": "Europe/Berlin"}),
        ),
        (
            "site-001",
            json!({"quiet_hours": {"start": "02:00", "end": "03:00"}, "time_zone": "America/New_York"}),
        ),
    ] {
        let (s, _) = app
            .json(
                Method::PUT,
                &format!("/admin/v1/sites/{site}/policy"),
                Some(&app.admin),
                Some(policy),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let t = std::time::Instant::now();
    populate_at_scale(&app, backend, 100_000, 1_000_000, 200_000).await;
    println!(
        "{backend:?}: populated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    if let (Backend::Embedded, Ok(copy)) = (backend, std::env::var("NIGHTLATCH_SCALE_DB_COPY")) {
        sqlx::query(&format!("VACUUM INTO '{copy}'"))
            .execute(app.state.store.pool())
            .await
            .unwrap();
    }
    let mut report = Vec::new();
    for path in [
        "/admin/v1/devices",
        "/admin/v1/devices?after=lock-090000",
        "/admin/v1/devices?prefix=lock-0123",
        "/admin/v1/devices?model=m2",
        "/admin/v1/devices?model=m0&after=lock-080000",
        "/admin/v1/devices?site=site-042",
        "/admin/v1/devices?group=pilot",
        "/admin/v1/devices?group=g-3",
        "/admin/v1/devices?version=1.3.0",
        "/admin/v1/devices?model=m1&version=1.3.0",
        "/admin/v1/devices?status=revoked",
        "/admin/v1/devices?seen_after=2029-12-31T00:00:00Z",
        "/admin/v1/devices?seen_before=2029-12-05T00:00:00Z",
        "/admin/v1/devices?model=m0&site=site-042&status=active",
        "/admin/v1/devices?model=m0&group=pilot&version=1.3.0",
        "/admin/v1/devices?site=site-042&seen_after=2029-12-20T00:00:00Z",
        "/admin/v1/audit",
        "/admin/v1/audit?after=au-0",
        "/admin/v1/audit?actor=user-3",
        "/admin/v1/audit?token_id=tk-4",
        "/admin/v1/audit?action=site.policy",
        "/admin/v1/audit?action=rollout.*",
        "/admin/v1/audit?since=2029-12-31T00:00:00Z",
        "/admin/v1/audit?since=2029-10-01T00:00:00Z&until=2029-10-02T00:00:00Z",
        "/admin/v1/audit?actor=user-3&action=rollout.*&since=2029-11-01T00:00:00Z",
        "/admin/v1/audit/export?action=rollout.*&limit=1000",
        "/admin/v1/audit/export",
        "/admin/v1/devices/lock-000042/history",
        "/admin/v1/releases",
        "/admin/v1/repo/health",
        "/admin/v1/fleet/versions",
    ] {
        let (ms, s, len) = timed(&app, Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        report.push(format!("{ms:9.1} ms  {len:9} B  GET {path}"));
    }
    for body in [
        json!({"name": "r", "target": "m0/2.0.0.nlfw", "waves": [{"share": 0.05, "min_soak": "1d"}, {"share": 0.3, "min_soak": "2d"}, {"share": 1.0}]}),
        json!({"name": "r", "target": "m0/2.0.0.nlfw", "groups": ["pilot"]}),
    ] {
        let (ms, s, len) = timed(
            &app,
            Method::POST,
            "/admin/v1/rollouts/preview",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        report.push(format!(
            "{ms:9.1} ms  {len:9} B  POST /admin/v1/rollouts/preview {body}"
        ));
    }
    // Every lock on one model: a preview over 100,000 candidates.
    sqlx::query("UPDATE devices SET hardware_model = 'm0'")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let body = json!({"name": "r", "target": "m0/2.0.0.nlfw", "waves": [{"share": 0.05, "min_soak": "1d"}, {"share": 1.0}]});
    let (ms, s, len) = timed(
        &app,
        Method::POST,
        "/admin/v1/rollouts/preview",
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    report.push(format!(
        "{ms:9.1} ms  {len:9} B  POST /admin/v1/rollouts/preview over 100,000 locks {body}"
    ));
    let t = std::time::Instant::now();
    let c = app
        .state
        .store
        .rollout_candidates("m0", 2 << 32, 250_001)
        .await
        .unwrap();
    report.push(format!(
        "{:9.1} ms  {:9} locks  (store.rollout_candidates of the preview)",
        t.elapsed().as_secs_f64() * 1000.0,
        c.len()
    ));
    println!(
        "{backend:?}, 100,000 locks, 1,000,000 history rows, 200,000 audit entries (best of 3):"
    );
    for line in report {
        println!("{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale timing: run with --ignored --nocapture"]
async fn console_queries_at_scale_embedded() {
    console_queries_at_scale(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale timing: run with --ignored --nocapture"]
async fn console_queries_at_scale_postgres_s3() {
    console_queries_at_scale(Backend::PostgresS3).await;
}

/// The OpenAPI document names the filters and the CSV export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_console_filters_and_csv() {
    let app = TestApp::new().await;
    let (s, doc) = get(&app, "/admin/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let names = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for f in [
        "prefix",
        "version",
        "status",
        "seen_after",
        "seen_before",
        "after",
        "limit",
    ] {
        assert!(
            names("/admin/v1/devices", "get").contains(&f.to_owned()),
            "{f}"
        );
    }
    for f in ["actor", "token_id", "action", "since", "until"] {
        assert!(
            names("/admin/v1/audit", "get").contains(&f.to_owned()),
            "{f}"
        );
        assert!(
            names("/admin/v1/audit/export", "get").contains(&f.to_owned()),
            "{f}"
        );
    }
    assert!(names("/admin/v1/repo/health", "get").contains(&"warning_days".to_owned()));
    assert!(
        doc["paths"]["/admin/v1/audit/export"]["get"]["responses"]["200"]["content"]["text/csv"]
            .is_object()
    );
    let preview = &doc["paths"]["/admin/v1/rollouts/preview"]["post"];
    assert_eq!(preview["x-required-role"], "operator");
    assert_eq!(preview["x-changes-state"], false);
    assert_eq!(
        preview["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateRollout"
    );
}
