//! Devices and signed check-ins: the director's answer, signed time bound
//! to the nonce, and every refusal (4xx with a JSON error, nothing stored).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use update_server::wire::{CheckinResponse, time_leaf, verify_signed_time};

use crate::support::{Backend, Lock, TestApp, ids};

async fn http_check_in(
    app: &TestApp,
    lock: &mut Lock,
) -> (StatusCode, Value, Option<CheckinResponse>) {
    let body = lock.body();
    let sig = lock.sign(&body);
    let (s, _, bytes) = app
        .call(
            Method::POST,
            &format!("/v1/devices/{}/check-in", lock.id),
            None,
            &[
                ("content-type", "application/json"),
                ("nightlatch-signature", &sig),
            ],
            body,
        )
        .await;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let r = (s == StatusCode::OK).then(|| serde_json::from_slice(&bytes).expect("response"));
    (s, v, r)
}

async fn device(app: &TestApp, id: &str) -> Value {
    app.json(
        Method::GET,
        &format!("/admin/v1/devices/{id}"),
        Some(&app.admin),
        None,
    )
    .await
    .1
}

async fn signed_check_in_round_trip(backend: Backend) {
    let app = TestApp::with(backend).await;
    let mut locks = app
        .register(&ids("lock", 2), "nl-lock-v2", &["site-a"])
        .await;
    let root = app.director_root();
    let mut lock = locks.remove(0);
    let (s, v, r) = http_check_in(&app, &mut lock).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = r.unwrap();
    lock.accept(&r, &root);
    assert_eq!(
        r.time.time,
        (crate::support::T0 / 1000) as u64,
        "time from the server clock"
    );
    assert_eq!(r.director_root_version, 1);
    assert_eq!(r.director_targets_version, 1);
    assert!(
        lock.assigned().is_none(),
        "nothing published: nothing assigned"
    );
    // The signed time is bound to this nonce: another nonce does not verify.
    let key = app.state.director.time_public_key();
    let sha: [u8; 32] = update_server::wire::b64::decode_array(&r.director_targets_sha256).unwrap();
    let other = time_leaf(&lock.id, &[0u8; 16], lock.counter, 1, &sha);
    assert!(verify_signed_time(&r.time, key, &other).is_err());
    // Next check-in: the lock holds version 1, so the metadata is not resent.
    app.clock.advance_ms(60_000);
    let (s, _, r2) = http_check_in(&app, &mut lock).await;
    assert_eq!(s, StatusCode::OK);
    let r2 = r2.unwrap();
    assert!(r2.director_targets.is_none());
    assert_eq!(r2.director_targets_version, 1);
    lock.accept(&r2, &root);
    assert_eq!(r2.time.time, r.time.time + 60);
    let d = device(&app, &lock.id).await;
    assert_eq!(d["last_counter"], 2);
    assert_eq!(d["firmware"]["version"], "1.0.0");
    assert_eq!(d["time_zone"], "Europe/Berlin");
    assert_eq!(d["battery_percent"], 80);
    // History: registered, then the first report.
    let (_, h) = app
        .json(
            Method::GET,
            &format!("/admin/v1/devices/{}/history", lock.id),
            Some(&app.admin),
            None,
        )
        .await;
    let kinds: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["firmware", "registered"], "newest first: {h}");
}

async fn refused_check_ins_store_nothing(backend: Backend) {
    let app = TestApp::with(backend).await;
    let mut locks = app.register(&ids("lock", 3), "nl-lock-v2", &[]).await;
    let (a, b) = (locks[0].clone(), locks[1].clone());
    let path = format!("/v1/devices/{}/check-in", a.id);
    let mut a = a;
    let post = |body: Vec<u8>, sig: Option<String>, path: String| {
        let app = &app;
        async move {
            let mut headers = vec![("content-type", "application/json")];
            let sig = sig.unwrap_or_default();
            if !sig.is_empty() {
                headers.push(("nightlatch-signature", sig.as_str()));
            }
            let (s, h, bytes) = app.call(Method::POST, &path, None, &headers, body).await;
            assert_eq!(h["content-type"], "application/json", "JSON error body");
            let v: Value = serde_json::from_slice(&bytes).expect("json error");
            (s, v["error"].as_str().unwrap_or("").to_owned())
        }
    };
    // Signed by another lock's key.
    let body = a.body();
    let forged = b.sign(&body);
    assert_eq!(
        post(body.clone(), Some(forged), path.clone()).await,
        (StatusCode::UNAUTHORIZED, "bad_signature".into())
    );
    // No signature, or a garbled one.
    assert_eq!(
        post(body.clone(), None, path.clone()).await,
        (StatusCode::UNAUTHORIZED, "missing_signature".into())
    );
    assert_eq!(
        post(body.clone(), Some("ed25519=00".into()), path.clone()).await,
        (StatusCode::UNAUTHORIZED, "bad_signature".into())
    );
    // A body changed after signing.
    let sig = a.sign(&body);
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"battery_percent\":80", "\"battery_percent\":90")
        .into_bytes();
    assert_ne!(tampered, body);
    assert_eq!(
        post(tampered, Some(sig.clone()), path.clone()).await,
        (StatusCode::UNAUTHORIZED, "bad_signature".into())
    );
    // Malformed JSON (signed, so only the parser can refuse it).
    let junk = b"{\"device_id\": ".to_vec();
    assert_eq!(
        post(junk.clone(), Some(a.sign(&junk)), path.clone()).await,
        (StatusCode::BAD_REQUEST, "malformed_json".into())
    );
    // Oversized body.
    let huge = vec![b' '; 64 * 1024];
    assert_eq!(
        post(huge, Some(a.sign(b"")), path.clone()).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".into())
    );
    // The URL names another lock than the body.
    let other_path = format!("/v1/devices/{}/check-in", b.id);
    assert_eq!(
        post(body.clone(), Some(sig.clone()), other_path).await,
        (StatusCode::BAD_REQUEST, "device_mismatch".into())
    );
    // Unknown lock.
    let mut ghost = Lock::new("ghost", "nl-lock-v2");
    let gb = ghost.body();
    assert_eq!(
        post(
            gb.clone(),
            Some(ghost.sign(&gb)),
            "/v1/devices/ghost/check-in".into()
        )
        .await,
        (StatusCode::NOT_FOUND, "unknown_device".into())
    );
    // Wrong hardware model.
    let mut wrong = a.clone();
    wrong.model = "nl-lock-v3".into();
    let wb = wrong.body();
    assert_eq!(
        post(wb.clone(), Some(wrong.sign(&wb)), path.clone()).await,
        (StatusCode::BAD_REQUEST, "model_mismatch".into())
    );
    // Nothing of the above was stored.
    let d = device(&app, &a.id).await;
    assert_eq!(
        (d["last_counter"].as_i64(), d["last_seen"].is_null()),
        (Some(-1), true),
        "{d}"
    );
    assert!(d["firmware"].is_null());

    // The genuine check-in is accepted once; replayed, it is refused.
    assert_eq!(
        post(body.clone(), Some(sig.clone()), path.clone()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        post(body.clone(), Some(sig.clone()), path.clone()).await,
        (StatusCode::CONFLICT, "replayed".into())
    );
    let d = device(&app, &a.id).await;
    let seen = d["last_seen"].clone();
    // A stale one (lower counter, fresh nonce and signature) too.
    let mut stale = a.clone();
    stale.counter = 0;
    let sb = stale.body();
    assert_eq!(
        post(sb.clone(), Some(stale.sign(&sb)), path.clone()).await,
        (StatusCode::CONFLICT, "replayed".into())
    );
    app.clock.advance_ms(5_000);
    assert_eq!(
        device(&app, &a.id).await["last_seen"],
        seen,
        "refusals do not touch the lock"
    );
    // Revoked locks are refused.
    let security = app.token("security-admin").await;
    let (s, _) = app
        .json(
            Method::POST,
            &format!("/admin/v1/devices/{}/revoke", locks[2].id),
            Some(&security),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let c = &mut locks[2];
    let cb = c.body();
    let cpath = format!("/v1/devices/{}/check-in", c.id);
    assert_eq!(
        post(cb.clone(), Some(c.sign(&cb)), cpath).await,
        (StatusCode::FORBIDDEN, "revoked".into())
    );
}

crate::both_backends!(signed_check_in_round_trip, refused_check_ins_store_nothing);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_check_ins_are_batched_and_each_bound_to_its_nonce() {
    let app = TestApp::new().await;
    let locks = app.register(&ids("lock", 200), "nl-lock-v2", &[]).await;
    let root = app.director_root();
    let mut tasks = Vec::new();
    for mut lock in locks {
        let router = app.router.clone();
        let root = root.clone();
        tasks.push(tokio::spawn(async move {
            let body = lock.body();
            let sig = lock.sign(&body);
            let (s, _, bytes) = crate::support::call(
                &router,
                Method::POST,
                &format!("/v1/devices/{}/check-in", lock.id),
                None,
                &[("nightlatch-signature", &sig)],
                body,
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
            let r: CheckinResponse = serde_json::from_slice(&bytes).unwrap();
            lock.accept(&r, &root);
            r.time.path.len()
        }));
    }
    let mut max_path = 0;
    for t in tasks {
        max_path = max_path.max(t.await.unwrap());
    }
    assert!(
        max_path > 0,
        "some check-ins shared a batch (one signature for several)"
    );
    let (_, _, metrics) = app.call(Method::GET, "/metrics", None, &[], "").await;
    let text = String::from_utf8_lossy(&metrics);
    assert!(
        text.contains("nightlatch_checkins_total{result=\"accepted\"} 200"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_validated_and_bulk_import_is_all_or_none() {
    let app = TestApp::new().await;
    let op = app.token("operator").await;
    let key = hex::encode(Lock::new("x", "m").key.verifying_key().as_bytes());
    let reg = |id: &str, key: &str| json!({"id": id, "hardware_model": "nl-lock-v2", "public_key": key, "groups": ["b", "a", "a"]});
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/devices",
            Some(&op),
            Some(reg("lock-1", &key)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["groups"], json!(["a", "b"]));
    assert_eq!(v["site"], "default");
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/devices",
            Some(&op),
            Some(reg("lock-1", &key)),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("exists"))
    );
    for bad_key in ["00", &"zz".repeat(32), &"00".repeat(32)] {
        let (s, _) = app
            .json(
                Method::POST,
                "/admin/v1/devices",
                Some(&op),
                Some(reg("lock-2", bad_key)),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad_key}");
    }
    let (s, _) = app
        .json(
            Method::POST,
            "/admin/v1/devices",
            Some(&op),
            Some(reg("../x", &key)),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // PEM keys are accepted too.
    let pem =
        nightlatch_repo::keys::public_key_pem(&Lock::new("y", "m").key.verifying_key()).unwrap();
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/devices",
            Some(&op),
            Some(reg("lock-pem", &pem)),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Import: one conflict refuses the whole batch.
    let batch = json!({"devices": [reg("lock-3", &key), reg("lock-1", &key)]});
    let (s, _) = app
        .json(
            Method::POST,
            "/admin/v1/devices/import",
            Some(&op),
            Some(batch),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app
        .json(Method::GET, "/admin/v1/devices/lock-3", Some(&op), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Listing with filters and paging.
    app.register(&ids("g", 5), "nl-lock-v3", &["east"]).await;
    let (_, v) = app
        .json(
            Method::GET,
            "/admin/v1/devices?model=nl-lock-v3&limit=2",
            Some(&op),
            None,
        )
        .await;
    assert_eq!(v["devices"].as_array().unwrap().len(), 2);
    let after = v["next_after"].as_str().unwrap();
    let (_, v) = app
        .json(
            Method::GET,
            &format!("/admin/v1/devices?group=east&after={after}"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(v["devices"].as_array().unwrap().len(), 3);
    let (s, v) = app
        .json(Method::GET, "/admin/v1/devices?bogus=1", Some(&op), None)
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_query"))
    );
}
