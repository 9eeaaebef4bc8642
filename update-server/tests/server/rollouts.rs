//! Rollout semantics over 10,000 locks, in process through the real
//! check-in pipeline (real signatures, real database; no HTTP per lock):
//! wave shares, stable buckets, pause, resume, abort, late joiners,
//! auto-pause at the threshold and never before the minimum sample,
//! patch-or-full delivery, eligibility.

use std::collections::HashSet;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Lock, TestApp, ids};

const MODEL: &str = "nl-lock-v2";
const TARGET: &str = "nl-lock-v2/2.0.0.nlfw";
const HOUR: i64 = 3_600_000;

/// A server with 1.0.0, 1.5.0 and 2.0.0 published, and a patch 1.0.0 → 2.0.0.
async fn app_with_releases() -> TestApp {
    let app = TestApp::new().await;
    let v1: Vec<u8> = (0..20_000u32).map(|i| (i % 253) as u8).collect();
    let mut v15 = v1.clone();
    v15[10..20].fill(1);
    let mut v2 = v1.clone();
    v2[500..600].fill(2);
    let e1 = app.envelope(MODEL, "1.0.0", 1, &v1);
    let e15 = app.envelope(MODEL, "1.5.0", 1, &v15);
    let e2 = app.envelope(MODEL, "2.0.0", 2, &v2);
    let made = nightlatch_repo::delta::make_patch(
        &std::fs::read(&e1).unwrap(),
        &std::fs::read(&e2).unwrap(),
        &nightlatch_repo::delta::NoProgress,
    )
    .unwrap();
    let patch = app.dir.path().join("p.nldp");
    std::fs::write(&patch, &made.patch).unwrap();
    app.publish(&[e1, e15, e2, patch]).await;
    app
}

/// Check every lock in; the set of ids assigned TARGET afterwards.
async fn round(app: &TestApp, locks: &mut [Lock]) -> HashSet<String> {
    let results = app.check_in_all(locks, 256).await;
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    locks
        .iter()
        .filter(|l| l.assigned().as_deref() == Some(TARGET))
        .map(|l| l.id.clone())
        .collect()
}

fn share(n: usize, of: usize) -> f64 {
    n as f64 / of as f64
}

async fn status(app: &TestApp, id: &str) -> Value {
    let (s, v) = app
        .json(
            Method::GET,
            &format!("/admin/v1/rollouts/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn act(app: &TestApp, id: &str, action: &str) -> (StatusCode, Value) {
    app.json(
        Method::POST,
        &format!("/admin/v1/rollouts/{id}/{action}"),
        Some(&app.admin),
        Some(json!({"reason": "test"})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_buckets_pause_resume_late_joiners_abort_over_10000_locks() {
    let app = app_with_releases().await;
    let n = 10_000;
    let mut locks = app.register(&ids("lock", n), MODEL, &[]).await;
    assert!(round(&app, &mut locks).await.is_empty(), "no rollout yet");
    let id = app
        .rollout(json!({
            "name": "2.0.0 staged", "target": TARGET, "start": true,
            "waves": [{"share": 0.01, "min_soak": "1h"}, {"share": 0.10, "min_soak": "1h"},
                      {"share": 0.50, "min_soak": "1h"}, {"share": 1.0}],
        }))
        .await;

    // Wave 0: 1%.
    let w0 = round(&app, &mut locks).await;
    assert!(
        (share(w0.len(), n) - 0.01).abs() <= 0.02,
        "wave 0: {}",
        w0.len()
    );
    assert!(!w0.is_empty());
    // Not soaked yet: a second round assigns nobody new.
    app.clock.advance_ms(HOUR - 1000);
    assert_eq!(round(&app, &mut locks).await, w0);
    // Wave 1: 10%, a superset.
    app.clock.advance_ms(1000);
    let w1 = round(&app, &mut locks).await;
    assert!(
        (share(w1.len(), n) - 0.10).abs() <= 0.02,
        "wave 1: {}",
        w1.len()
    );
    assert!(w0.is_subset(&w1), "raising the share only adds locks");
    // Wave 2: 50%.
    app.clock.advance_ms(HOUR);
    let w2 = round(&app, &mut locks).await;
    assert!(
        (share(w2.len(), n) - 0.50).abs() <= 0.02,
        "wave 2: {}",
        w2.len()
    );
    assert!(w1.is_subset(&w2));
    let v = status(&app, &id).await;
    assert_eq!(v["current_wave"], 2);
    assert_eq!(v["waves"][0]["state"], "done");
    assert_eq!(v["waves"][2]["state"], "active");
    let assigned: i64 = (0..4)
        .map(|i| v["waves"][i]["devices"]["assigned"].as_i64().unwrap())
        .sum();
    assert_eq!(assigned as usize, w2.len());
    assert_eq!(
        v["waves"][0]["deliveries"]["patch"].as_i64().unwrap() as usize,
        w0.len(),
        "1.0.0 locks get the patch"
    );

    // Pause: at once, nobody holds an assignment (none installed yet).
    let (s, v) = act(&app, &id, "pause").await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("paused")),
        "{v}"
    );
    assert!(
        round(&app, &mut locks).await.is_empty(),
        "pause stops assignments at once"
    );
    // Time spent paused does not count as soak.
    app.clock.advance_ms(5 * HOUR);
    let (s, _) = act(&app, &id, "resume").await;
    assert_eq!(s, StatusCode::OK);
    let resumed = round(&app, &mut locks).await;
    assert_eq!(resumed, w2, "same locks as before the pause, still wave 2");
    assert_eq!(status(&app, &id).await["current_wave"], 2);

    // Late joiners: locks registered now join in their own buckets.
    let mut late = app.register(&ids("late", 1000), MODEL, &[]).await;
    let joined = round(&app, &mut late).await;
    assert!(
        (share(joined.len(), 1000) - 0.50).abs() <= 0.06,
        "late joiners: {}",
        joined.len()
    );
    // Last wave: everyone eligible.
    app.clock.advance_ms(HOUR);
    assert_eq!(round(&app, &mut locks).await.len(), n);
    assert_eq!(round(&app, &mut late).await.len(), 1000);

    // Abort: for good.
    let (s, _) = act(&app, &id, "abort").await;
    assert_eq!(s, StatusCode::OK);
    assert!(round(&app, &mut locks).await.is_empty());
    let (s, v) = act(&app, &id, "resume").await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_state"))
    );
    // Every transition is in the audit log.
    let (_, audit) = app
        .json(
            Method::GET,
            "/admin/v1/audit?limit=1000",
            Some(&app.admin),
            None,
        )
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "rollout.create",
        "rollout.pause",
        "rollout.resume",
        "rollout.abort",
        "device.import",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_pause_fires_at_the_threshold_and_never_before_the_minimum_sample() {
    let app = app_with_releases().await;
    let n = 10_000;
    let mut locks = app.register(&ids("lock", n), MODEL, &[]).await;
    round(&app, &mut locks).await;
    let id = app
        .rollout(json!({"name": "bad", "target": TARGET, "start": true,
                        "failure_threshold": {"rate": 0.2, "min_sample": 100}}))
        .await;
    assert_eq!(round(&app, &mut locks).await.len(), n);
    // 80 successes: sample 80, no failure.
    for l in locks.iter_mut().take(80) {
        l.install(TARGET, "2.0.0");
    }
    app.check_in_all(&mut locks[..80], 80).await;
    // 19 failures: 100% of... no: 19 of a sample of 99, below the minimum sample.
    for l in locks[80..99].iter_mut() {
        l.roll_back(TARGET, "self_test_motor");
    }
    for i in 80..99 {
        app.check_in_all(&mut locks[i..i + 1], 1).await;
        assert_eq!(
            status(&app, &id).await["state"],
            "running",
            "paused before the minimum sample at {i}"
        );
    }
    // The 20th failure: sample 100, rate 20%: paused by itself.
    locks[99].roll_back(TARGET, "self_test_motor");
    app.check_in_all(&mut locks[99..100], 1).await;
    let v = status(&app, &id).await;
    assert_eq!(v["state"], "paused", "{v}");
    assert!(v["state_reason"].as_str().unwrap().contains("auto-paused"));
    assert_eq!(
        (v["successes"].as_i64(), v["failures"].as_i64()),
        (Some(80), Some(20))
    );
    // Repeated reports do not count twice.
    app.check_in_all(&mut locks[80..100], 20).await;
    assert_eq!(status(&app, &id).await["failures"], 20);
    // Nobody else gets it now; those who installed keep running it.
    let rest = round(&app, &mut locks[100..]).await;
    assert!(
        rest.is_empty(),
        "{} still assigned after the auto-pause",
        rest.len()
    );
    let counts = &status(&app, &id).await["waves"][0]["devices"];
    assert_eq!(
        (counts["confirmed"].as_i64(), counts["rolled_back"].as_i64()),
        (Some(80), Some(20))
    );
    // Audited and counted.
    let (_, audit) = app
        .json(
            Method::GET,
            "/admin/v1/audit?limit=1000",
            Some(&app.admin),
            None,
        )
        .await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "rollout.auto_pause" && e["actor"] == "system")
    );
    let (_, _, m) = app.call(Method::GET, "/metrics", None, &[], "").await;
    assert!(String::from_utf8_lossy(&m).contains(&format!(
        "nightlatch_rollout_auto_pauses_total{{rollout=\"{id}\"}} 1"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_or_full_image_and_eligibility() {
    let app = app_with_releases().await;
    let mut on_1_0 = app.register(&ids("a", 20), MODEL, &["east"]).await;
    let mut on_1_5 = app.register(&ids("b", 20), MODEL, &["east"]).await;
    let mut west = app.register(&ids("c", 20), MODEL, &["west"]).await;
    let mut other_model = app.register(&ids("d", 5), "nl-lock-v3", &["east"]).await;
    for l in on_1_5.iter_mut() {
        l.version = "1.5.0".into();
    }
    app.rollout(json!({"name": "east", "target": TARGET, "start": true, "groups": ["east"]}))
        .await;
    assert_eq!(round(&app, &mut on_1_0).await.len(), 20);
    assert_eq!(round(&app, &mut on_1_5).await.len(), 20);
    assert!(
        round(&app, &mut west).await.is_empty(),
        "not in the rollout's groups"
    );
    assert!(
        round(&app, &mut other_model).await.is_empty(),
        "another hardware model"
    );
    // 1.0.0 matches the patch's base: patch offered with the image; 1.5.0: full image.
    let catalog = app.state.repo.catalog();
    let image = catalog.firmware(TARGET).unwrap();
    for l in &on_1_0 {
        assert_eq!(
            l.assigned_patch().as_deref(),
            Some("nl-lock-v2/2.0.0.from-1.0.0.nldp")
        );
        // The director copies the image repository's length and hashes exactly.
        let t = &l.director_targets.as_ref().unwrap()["signed"]["targets"][TARGET];
        assert_eq!(t["length"], image.file.length);
        assert_eq!(t["hashes"]["sha256"], image.sha256());
        assert_eq!(t["custom"]["director"]["device_id"], l.id.as_str());
        assert_eq!(t["custom"]["nightlatch"]["version"], "2.0.0");
    }
    for l in &on_1_5 {
        assert_eq!(l.assigned(), Some(TARGET.to_owned()));
        assert_eq!(l.assigned_patch(), None);
    }
    // A lock that installs it is done: counted, and no longer assigned.
    on_1_0[0].install(TARGET, "2.0.0");
    assert!(!round(&app, &mut on_1_0[..1]).await.contains(&on_1_0[0].id));
    // from_versions and security counters.
    let mut c = app.register(&ids("e", 10), MODEL, &[]).await;
    for l in c.iter_mut().take(5) {
        l.version = "1.5.0".into();
    }
    for l in c.iter_mut().skip(8) {
        l.security_counter = 9; // above the target's counter 2: it could never boot it
    }
    app.rollout(
        json!({"name": "from 1.5", "target": TARGET, "start": true, "from_versions": ["1.5.0"]}),
    )
    .await;
    let got = round(&app, &mut c).await;
    assert_eq!(got.len(), 5, "{got:?}");
    // Fleet queries see all of it.
    let (_, v) = app
        .json(
            Method::GET,
            &format!("/admin/v1/fleet/versions?model={MODEL}"),
            Some(&app.admin),
            None,
        )
        .await;
    let counts: Vec<(String, i64)> = v["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["firmware_version"].as_str().unwrap_or("-").to_owned(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(counts.contains(&("2.0.0".into(), 1)), "{counts:?}");
    let (_, v) = app
        .json(
            Method::GET,
            "/admin/v1/fleet/below-minimum?min_version=1.5.0",
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(
        v["devices"].as_array().unwrap().len(),
        19 + 20 + 5 + 5,
        "{v}"
    );
    app.clock.advance_ms(3 * 86_400_000);
    on_1_0[1].body(); // (unused)
    round(&app, &mut on_1_0[..2]).await;
    let (_, v) = app
        .json(
            Method::GET,
            "/admin/v1/fleet/stale?days=2",
            Some(&app.admin),
            None,
        )
        .await;
    let stale = v["devices"].as_array().unwrap().len();
    assert_eq!(stale, 20 + 20 + 20 + 5 + 10 - 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_are_validated() {
    let app = app_with_releases().await;
    let op = app.token("operator").await;
    for (body, why) in [
        (
            json!({"name": "x", "target": "nl-lock-v2/9.9.9.nlfw"}),
            "unpublished target",
        ),
        (
            json!({"name": "x", "target": "nl-lock-v2/2.0.0.from-1.0.0.nldp"}),
            "a patch",
        ),
        (
            json!({"name": "x", "target": TARGET, "waves": [{"share": 0.5}, {"share": 0.2}]}),
            "decreasing shares",
        ),
        (
            json!({"name": "x", "target": TARGET, "waves": [{"share": 0}]}),
            "zero share",
        ),
        (
            json!({"name": "x", "target": TARGET, "failure_threshold": {"rate": 0.2, "min_sample": 0}}),
            "no sample",
        ),
        (
            json!({"name": "x", "target": TARGET, "start_at": "soon"}),
            "bad time",
        ),
        (
            json!({"name": "x", "target": TARGET, "waves": [{"share": 1, "min_soak": "forever"}]}),
            "bad soak",
        ),
    ] {
        let (s, v) = app
            .json(Method::POST, "/admin/v1/rollouts", Some(&op), Some(body))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{why}: {v}");
    }
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/rollouts",
            Some(&op),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json")),
        "{v}"
    );
    // A start time in the future: running, but nobody assigned before it.
    let (s, v) = app
        .json(Method::POST, "/admin/v1/rollouts", Some(&op), Some(json!({"name": "later", "target": TARGET, "start": true, "start_at": "2030-01-02T00:00:00Z"})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let mut locks = app.register(&ids("l", 10), MODEL, &[]).await;
    assert!(round(&app, &mut locks).await.is_empty());
    app.clock.advance_ms(24 * HOUR);
    assert_eq!(round(&app, &mut locks).await.len(), 10);
    // Draft rollouts assign nothing; start twice is refused.
    let (_, v) = app
        .json(
            Method::POST,
            "/admin/v1/rollouts",
            Some(&op),
            Some(json!({"name": "d", "target": TARGET})),
        )
        .await;
    assert_eq!(v["state"], "draft");
    let did = v["id"].as_str().unwrap().to_owned();
    assert_eq!(act(&app, &did, "start").await.0, StatusCode::OK);
    assert_eq!(act(&app, &did, "start").await.0, StatusCode::CONFLICT);
    assert_eq!(act(&app, "ro-nope", "pause").await.0, StatusCode::NOT_FOUND);
}

/// In-process throughput of the check-in pipeline (no HTTP), 10,000 locks:
/// `cargo test --release -p update-server --test server pipeline_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures, run with --ignored --nocapture (in --release)"]
async fn pipeline_throughput_10000_locks() {
    let app = app_with_releases().await;
    let mut locks = app.register(&ids("lock", 10_000), MODEL, &[]).await;
    round(&app, &mut locks).await; // first check-ins: director metadata signed
    for pass in 0..3 {
        let subs: Vec<_> = locks.iter_mut().map(|l| l.submission()).collect();
        let t = std::time::Instant::now();
        for c in subs.chunks(256) {
            for r in app.state.pipeline.process(c.to_vec()).await {
                assert!(r.is_ok(), "{r:?}");
            }
        }
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "pass {pass}: 10000 check-ins in {s:.2} s = {:.0}/s (batches of 256, one at a time)",
            10_000.0 / s
        );
    }
    let m = app.state.metrics.render();
    for l in m
        .lines()
        .filter(|l| l.starts_with("nightlatch_checkin_stage_seconds_sum"))
    {
        eprintln!("{l}");
    }
}
