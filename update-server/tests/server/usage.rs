//! Usage summaries (`report.usage`): checked on arrival with the lock's own
//! codec (400 `invalid_report`, nothing stored), written in the check-in's
//! transaction (never for a refused or replayed check-in), kept when the
//! next check-in carries none, served at `GET /admin/v1/devices/{id}/usage`
//! (viewer) and to the rollout code by `Store::usage_summaries`.

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use lock_app::scheduler::summary::{LEN, MAX_TEXT_LEN, TEXT_LEN, UsageSummary};
use lock_app::scheduler::tz::DAY;
use lock_app::scheduler::{TzRule, UsageProfile, Window};
use serde_json::{Value, json};
use update_server::checkin::Submission;
use update_server::wire::b64;

use crate::support::{Backend, Lock, T0, TestApp, ids};

/// A learned profile: `uses` door uses at each of `hours` (UTC) on each of
/// the 21 days before T0.
fn summary(hours: &[u64], uses: usize) -> UsageSummary {
    let t0 = (T0 / 1000) as u64;
    let mut p = UsageProfile::new();
    for day in (1..=21u64).rev() {
        for &h in hours {
            for _ in 0..uses {
                p.observe(
                    (t0 - day * DAY as u64 + h * 3600 + 300) as i64,
                    &TzRule::UTC,
                );
            }
        }
    }
    UsageSummary::from_profile(&p, &TzRule::UTC, Window::ALL_DAY, 60, t0)
}

/// The lock's next check-in body with `usage` in its report.
fn body(lock: &mut Lock, usage: Option<&str>) -> Vec<u8> {
    raw_body(lock, usage.map(|u| json!(u)))
}

/// The lock's next check-in body with any JSON as its `report.usage`.
fn raw_body(lock: &mut Lock, usage: Option<Value>) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&lock.body()).unwrap();
    if let Some(u) = usage {
        v["report"]["usage"] = u;
    }
    serde_json::to_vec(&v).unwrap()
}

/// POST a check-in body for `lock`; the status.
async fn post(app: &TestApp, lock: &Lock, body: Vec<u8>) -> StatusCode {
    let sig = lock.sign(&body);
    app.call(
        Method::POST,
        &format!("/v1/devices/{}/check-in", lock.id),
        None,
        &[
            ("content-type", "application/json"),
            ("nightlatch-signature", &sig),
        ],
        body,
    )
    .await
    .0
}

fn submission(lock: &mut Lock, usage: Option<&str>) -> Submission {
    let body = body(lock, usage);
    Submission {
        path_id: lock.id.clone(),
        signature: Some(lock.sign(&body)),
        body: Bytes::from(body),
    }
}

/// One check-in over HTTP; status and JSON answer.
async fn check_in(app: &TestApp, lock: &mut Lock, usage: Option<&str>) -> (StatusCode, Value) {
    let body = body(lock, usage);
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
    if s == StatusCode::OK {
        lock.accept(
            &serde_json::from_slice(&bytes).unwrap(),
            &app.director_root(),
        );
    }
    (s, v)
}

async fn usage(app: &TestApp, id: &str, token: Option<&str>) -> (StatusCode, Value) {
    app.json(
        Method::GET,
        &format!("/admin/v1/devices/{id}/usage"),
        token,
        None,
    )
    .await
}

async fn stored(app: &TestApp, id: &str) -> Option<(UsageSummary, i64)> {
    app.state
        .store
        .device_usage(id)
        .await
        .unwrap()
        .map(|u| (u.summary, u.reported_at))
}

async fn stored_in_the_checkin_and_kept_without_one(backend: Backend) {
    let app = TestApp::with(backend).await;
    let mut locks = app.register(&ids("lock", 4), "nl-lock-v2", &[]).await;
    let home = summary(&[7, 18, 21], 2);
    let night_shift = summary(&[0, 1, 2, 3, 4, 5], 3);
    assert_ne!(home, night_shift);

    // First check-in with a summary: stored with the batch's time.
    let (s, v) = check_in(&app, &mut locks[0], Some(&home.to_text())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(stored(&app, "lock-00000").await, Some((home.clone(), T0)));

    // Later check-ins without one keep it (and its time).
    for _ in 0..2 {
        app.clock.advance_ms(3_600_000);
        let (s, _) = check_in(&app, &mut locks[0], None).await;
        assert_eq!(s, StatusCode::OK);
    }
    assert_eq!(stored(&app, "lock-00000").await, Some((home.clone(), T0)));
    let d = app
        .json(
            Method::GET,
            "/admin/v1/devices/lock-00000",
            Some(&app.admin),
            None,
        )
        .await
        .1;
    assert_eq!(d["last_counter"], 3, "the check-ins were accepted: {d}");

    // A new one replaces it.
    app.clock.advance_ms(3_600_000);
    let (s, _) = check_in(&app, &mut locks[0], Some(&night_shift.to_text())).await;
    assert_eq!(s, StatusCode::OK);
    let at = T0 + 3 * 3_600_000;
    assert_eq!(
        stored(&app, "lock-00000").await,
        Some((night_shift.clone(), at))
    );

    // One batch: a lock with a summary, one without; the same lock twice
    // (its two check-ins chained), the last summary wins; and a lock whose
    // second check-in in the batch carries none keeps its first.
    app.clock.advance_ms(60_000);
    let at = at + 60_000;
    let (l1, rest) = locks[1..].split_at_mut(1);
    let (l2, l3) = rest.split_at_mut(1);
    let subs = vec![
        submission(&mut l1[0], Some(&home.to_text())),
        submission(&mut l2[0], None),
        submission(&mut l3[0], Some(&home.to_text())),
        submission(&mut l3[0], Some(&night_shift.to_text())),
        submission(&mut l1[0], None),
    ];
    let results = app.state.pipeline.process(subs).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let all = app
        .state
        .store
        .usage_summaries(&[
            "lock-00000",
            "lock-00001",
            "lock-00002",
            "lock-00003",
            "nobody",
        ])
        .await
        .unwrap();
    let mut got: Vec<(&str, &UsageSummary, i64)> = all
        .iter()
        .map(|(id, u)| (id.as_str(), &u.summary, u.reported_at))
        .collect();
    got.sort_by_key(|(id, _, _)| *id);
    assert_eq!(
        got,
        vec![
            ("lock-00000", &night_shift, T0 + 3 * 3_600_000),
            ("lock-00001", &home, at),
            ("lock-00003", &night_shift, at),
        ]
    );
    assert!(
        app.state
            .store
            .usage_summaries(&[])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn refused_or_replayed_checkins_store_nothing(backend: Backend) {
    let app = TestApp::with(backend).await;
    let mut locks = app.register(&ids("lock", 1), "nl-lock-v2", &[]).await;
    let lock = &mut locks[0];
    let home = summary(&[7, 18], 1);

    // Malformed: refused whole, nothing stored, the counter not used.
    let mut bad = home.to_bytes();
    bad[6] = 200;
    let (s, v) = check_in(&app, lock, Some(&b64::encode(bad))).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_report")),
        "{v}"
    );
    assert_eq!(stored(&app, &lock.id).await, None);
    lock.counter -= 1;
    let (s, _) = check_in(&app, lock, None).await;
    assert_eq!(s, StatusCode::OK, "the refused check-in used no counter");

    // A replayed counter carrying a summary: 409, nothing stored.
    lock.counter -= 1;
    let (s, v) = check_in(&app, lock, Some(&home.to_text())).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("replayed"))
    );
    assert_eq!(stored(&app, &lock.id).await, None);

    // Signed by another key: 401, nothing stored.
    let mut other = Lock::new(&lock.id, "nl-lock-v2");
    other.key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    other.counter = lock.counter + 5;
    let (s, _) = check_in(&app, &mut other, Some(&home.to_text())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(stored(&app, &lock.id).await, None);

    let (s, _) = check_in(&app, lock, Some(&home.to_text())).await;
    assert_eq!(s, StatusCode::OK);
    assert!(stored(&app, &lock.id).await.is_some());
}

crate::both_backends!(
    stored_in_the_checkin_and_kept_without_one,
    refused_or_replayed_checkins_store_nothing
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_summaries_are_refused_with_invalid_report() {
    let app = TestApp::new().await;
    let mut locks = app.register(&ids("lock", 1), "nl-lock-v2", &[]).await;
    let lock = &mut locks[0];
    let good = summary(&[8, 19], 2);
    let text = good.to_text();
    assert_eq!(text.len(), TEXT_LEN);
    let bytes = good.to_bytes();
    let with = |i: usize, v: u8| {
        let mut b = bytes;
        b[i] = v;
        b64::encode(b)
    };
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "0 bytes"),
        ("A".repeat(MAX_TEXT_LEN + 1), "at most 128"),
        ("A".repeat(15_000), "at most 128"),
        (format!("{text}="), "base64url"),
        (text.replace('-', "+").replace('_', "/") + "/", "base64url"),
        (b64::encode(&bytes[..LEN - 1]), "61 bytes"),
        (b64::encode([bytes.as_slice(), &[0]].concat()), "63 bytes"),
        (with(0, 2), "format 2"),
        (with(0, 0), "format 0"),
        (with(6, 96), "Mon"),
        (with(19, 0), "Sun"),
        (with(19, 97), "Sun"),
        (
            {
                let mut b = bytes;
                b[4] = 0;
                b[5] = 0;
                b64::encode(b)
            },
            "heat",
        ),
    ];
    for (usage, says) in &cases {
        let (s, v) = check_in(&app, lock, Some(usage)).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_report")),
            "{usage}: {v}"
        );
        let message = v["message"].as_str().unwrap();
        assert!(
            message.starts_with("report.usage: usage summary") && message.contains(says),
            "{usage}: {message}"
        );
        lock.counter -= 1;
    }
    // Not a string at all: malformed JSON.
    let b = raw_body(lock, Some(json!([1, 2, 3])));
    assert_eq!(post(&app, lock, b).await, StatusCode::BAD_REQUEST);
    lock.counter -= 1;
    assert_eq!(stored(&app, &lock.id).await, None);
    // `null` is no summary.
    let b = raw_body(lock, Some(Value::Null));
    assert_eq!(post(&app, lock, b).await, StatusCode::OK);
    assert_eq!(stored(&app, &lock.id).await, None);
    let (s, v) = check_in(&app, lock, Some(&text)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(stored(&app, &lock.id).await.map(|u| u.0), Some(good));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_endpoint_serves_viewers_and_says_404_without_a_summary() {
    let app = TestApp::new().await;
    let mut locks = app.register(&ids("lock", 2), "nl-lock-v2", &[]).await;
    let viewer = app.token("viewer").await;
    let home = summary(&[7, 18, 21], 2);
    let (s, _) = check_in(&app, &mut locks[0], Some(&home.to_text())).await;
    assert_eq!(s, StatusCode::OK);

    // No token: 401; a viewer reads it.
    let (s, v) = usage(&app, "lock-00000", None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
    let (s, v) = usage(&app, "lock-00000", Some(&viewer)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], "lock-00000");
    assert_eq!(v["reported_at"], "2030-01-01T00:00:00Z");
    assert_eq!(v["weeks_learned"], home.weeks_learned);
    assert_eq!(v["epoch_week"], home.epoch_week);
    assert_eq!(v["peak_entries_per_hour"], home.peak_entries());
    // The 7×24 matrix, as numbers.
    let heat = v["heat"].as_array().unwrap();
    assert_eq!(heat.len(), 7);
    for (d, row) in heat.iter().enumerate() {
        let row: Vec<u64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(row.len(), 24);
        for (h, &level) in row.iter().enumerate() {
            assert_eq!(level, u64::from(home.heat_at(d, h)), "{d} {h}");
        }
        assert_eq!((row[3], row[7], row[18], row[21]), (0, 3, 3, 3), "{d}");
    }
    assert_eq!(v["heat_levels"].as_array().unwrap().len(), 4);
    // The weekday quiet slots.
    let quiet = v["quiet_slots"].as_array().unwrap();
    let days: Vec<&str> = quiet.iter().map(|q| q["day"].as_str().unwrap()).collect();
    assert_eq!(
        days,
        [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday"
        ]
    );
    for (q, mine) in quiet.iter().zip(home.quiet) {
        let mine = mine.unwrap();
        let start = mine.start_minute();
        assert_eq!(
            q["start"],
            format!("{:02}:{:02}", start / 60, start % 60),
            "{q}"
        );
        assert_eq!(q["minutes"], mine.minutes(), "{q}");
        let end = (start + mine.minutes()) % 1440;
        assert_eq!(q["end"], format!("{:02}:{:02}", end / 60, end % 60), "{q}");
    }
    // Busy at 07:00, 18:00 and 21:00: quiet 22:00-07:00, entered in its
    // middle (03:00, for that hour), no longer at 01:00.
    assert_eq!(quiet[0]["start"], "03:00");
    assert_eq!(quiet[0]["end"], "04:00");

    // A lock without a summary, and no such lock: 404 with their codes.
    let (s, v) = usage(&app, "lock-00001", Some(&viewer)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_usage")),
        "{v}"
    );
    let (s, v) = usage(&app, "lock-99999", Some(&viewer)).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{v}"
    );

    // The OpenAPI document lists it for viewers.
    let (_, doc) = app
        .json(Method::GET, "/admin/v1/openapi.json", None, None)
        .await;
    assert_eq!(
        doc["paths"]["/admin/v1/devices/{id}/usage"]["get"]["x-required-role"], "viewer",
        "{}",
        doc["paths"]
    );
}
