//! `kill -9` in the middle of a rollout loses no report the server
//! acknowledged: the real binary, real sockets, SIGKILL while hundreds of
//! check-ins are in flight, restart on the same data directory.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nightlatch_repo::repo::remote::{Http, publish_remote};
use serde_json::{Value, json};

use crate::support::{Lock, free_port, ids};

const TARGET: &str = "nl-lock-v2/2.0.0.nlfw";

fn start(dir: &Path, port: u16) -> Child {
    // 300 locks on one address, checking in as fast as they can: lift the
    // per-client budgets meant for real clients.
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        "[http]\nmax_connections_per_client = 4096\npublic_rate = 1000000\npublic_burst = 1000000\nrefusal_rate = 1000000\nrefusal_burst = 1000000\n",
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_nightlatch-server"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--config")
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("NIGHTLATCH_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nightlatch-server")
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server at {base} never became ready");
}

async fn admin(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_rollout_loses_no_acknowledged_report() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut server = start(dir.path(), port);
    wait_ready(&client, &base).await;
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();

    // A release, 300 locks, a running rollout.
    let work = tempfile::tempdir().unwrap();
    let mut envelopes = Vec::new();
    for (v, c) in [("1.0.0", 1), ("2.0.0", 2)] {
        let release = nightlatch_repo::envelope::Release {
            model: nightlatch_repo::params::parse_model("nl-lock-v2").unwrap(),
            version: nightlatch_repo::params::parse_version(v).unwrap(),
            security_counter: c,
        };
        let bytes = nightlatch_repo::envelope::sign_payload(
            &release,
            v.as_bytes(),
            &[ed25519_dalek::SigningKey::from_bytes(&[1; 32])],
        )
        .unwrap();
        let path = work.path().join(format!("{v}.nlfw"));
        std::fs::write(&path, bytes).unwrap();
        envelopes.push(path);
    }
    let targets_key = dir.path().join("keys/image/keys/targets.key");
    let trusted_root = dir.path().join("keys/image/1.root.json");
    let (b, t) = (base.clone(), token.clone());
    tokio::task::spawn_blocking(move || {
        let keys =
            nightlatch_repo::keysource::open_all(&[nightlatch_repo::keysource::KeySpec::File(
                targets_key,
            )])
            .unwrap();
        publish_remote(
            &Http::new(&b, &t),
            &b,
            &keys,
            &envelopes,
            &nightlatch_repo::repo::Expiries::default(),
            Some(&trusted_root),
            // The server runs on the system clock.
            &nightlatch_repo::SystemClock,
        )
        .unwrap()
    })
    .await
    .unwrap();
    let locks: Vec<Lock> = ids("lock", 300)
        .iter()
        .map(|id| Lock::new(id, "nl-lock-v2"))
        .collect();
    let devices: Vec<Value> = locks
        .iter()
        .map(|l| json!({"id": l.id, "hardware_model": "nl-lock-v2", "public_key": hex::encode(l.key.verifying_key().as_bytes())}))
        .collect();
    let (s, v) = admin(
        &client,
        &base,
        &token,
        reqwest::Method::POST,
        "/admin/v1/devices/import",
        json!({"devices": devices}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin(&client, &base, &token, reqwest::Method::POST, "/admin/v1/rollouts", json!({"name": "r", "target": TARGET, "start": true, "failure_threshold": {"rate": 1.0, "min_sample": 100000}})).await;
    assert_eq!(s, 201, "{v}");
    let rollout = v["id"].as_str().unwrap().to_owned();

    // Every lock checks in over and over; half report having installed 2.0.0.
    // Record, per lock, the last check-in the server acknowledged.
    let acked: Arc<Mutex<HashMap<String, (u64, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for (i, mut lock) in locks.into_iter().enumerate() {
        let client = client.clone();
        let base = base.clone();
        let acked = Arc::clone(&acked);
        tasks.push(tokio::spawn(async move {
            for round in 0..1000 {
                if round == 1 && i % 2 == 0 {
                    lock.install(TARGET, "2.0.0");
                }
                let body = lock.body();
                let sig = lock.sign(&body);
                let r = client
                    .post(format!("{base}/v1/devices/{}/check-in", lock.id))
                    .header("nightlatch-signature", sig)
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        if r.bytes().await.is_ok() {
                            acked
                                .lock()
                                .unwrap()
                                .insert(lock.id.clone(), (lock.counter, lock.version.clone()));
                        }
                    }
                    _ => return lock,
                }
            }
            lock
        }));
    }
    // Let a few thousand check-ins land, then SIGKILL.
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let done = acked.lock().unwrap().values().map(|(c, _)| *c).sum::<u64>();
        if done > 1500 {
            break;
        }
    }
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let mut locks = Vec::new();
    for t in tasks {
        locks.push(t.await.unwrap());
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 250,
        "most locks were acknowledged at least once: {}",
        acked.len()
    );

    // Restart on the same directory: every acknowledged report is there.
    let mut server = start(dir.path(), port);
    wait_ready(&client, &base).await;
    let mut confirmed_acked = 0;
    for (id, (counter, version)) in &acked {
        let (s, d) = admin(
            &client,
            &base,
            &token,
            reqwest::Method::GET,
            &format!("/admin/v1/devices/{id}"),
            Value::Null,
        )
        .await;
        assert_eq!(s, 200);
        let stored = d["last_counter"].as_u64().unwrap();
        assert!(
            stored >= *counter,
            "{id}: acknowledged counter {counter}, stored {stored}"
        );
        if stored == *counter {
            assert_eq!(
                d["firmware"]["version"].as_str(),
                Some(version.as_str()),
                "{id}"
            );
        }
        if version == "2.0.0" {
            confirmed_acked += 1;
        }
    }
    let (_, r) = admin(
        &client,
        &base,
        &token,
        reqwest::Method::GET,
        &format!("/admin/v1/rollouts/{rollout}"),
        Value::Null,
    )
    .await;
    assert!(
        r["successes"].as_i64().unwrap() >= confirmed_acked,
        "every acknowledged success is counted: {} < {confirmed_acked}",
        r["successes"]
    );
    // The locks carry on where they were.
    let lock = &mut locks[0];
    let body = lock.body();
    let sig = lock.sign(&body);
    let r = client
        .post(format!("{base}/v1/devices/{}/check-in", lock.id))
        .header("nightlatch-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
