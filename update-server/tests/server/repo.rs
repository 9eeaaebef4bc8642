//! Repository hosting: content types, caching, entity tags, ranges; uploads
//! checked against the trusted root and delegations; refresh.

use std::path::Path;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use ed25519_dalek::SigningKey;
use nightlatch_repo::Clock as _;
use nightlatch_repo::keysource::FileKey;
use nightlatch_repo::metadata::{Hashes, Signed, TargetFile, Targets};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{Backend, TestApp};

async fn serves_metadata_and_targets_with_ranges(backend: Backend) {
    let app = TestApp::with(backend).await;
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i * 7) as u8).collect();
    let env = app.envelope("nl-lock-v2", "1.0.0", 1, &payload);
    let bytes = std::fs::read(&env).unwrap();
    let report = app.publish(&[env]).await;
    assert_eq!(report.added, ["nl-lock-v2/1.0.0.nlfw"]);

    // Mutable metadata must be revalidated; versioned metadata is immutable.
    let (s, h, ts) = app
        .call(Method::GET, "/repo/metadata/timestamp.json", None, &[], "")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["cache-control"], "no-cache");
    let ts: Value = serde_json::from_slice(&ts).unwrap();
    let snap = ts["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let (s, h, _) = app
        .call(
            Method::GET,
            &format!("/repo/metadata/{snap}.snapshot.json"),
            None,
            &[],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["cache-control"].to_str().unwrap().contains("immutable"));
    let etag = h["etag"].to_str().unwrap().to_owned();
    let (s, _, body) = app
        .call(
            Method::GET,
            &format!("/repo/metadata/{snap}.snapshot.json"),
            None,
            &[("if-none-match", &etag)],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    // The target, whole and in ranges.
    let sha = hex::encode(Sha256::digest(&bytes));
    let path = format!("/repo/targets/nl-lock-v2/{sha}.1.0.0.nlfw");
    let (s, h, body) = app.call(Method::GET, &path, None, &[], "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/octet-stream");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(body.as_ref(), bytes.as_slice());
    let (s, h, body) = app
        .call(Method::GET, &path, None, &[("range", "bytes=100-199")], "")
        .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        h["content-range"],
        format!("bytes 100-199/{}", bytes.len()).as_str()
    );
    assert_eq!(body.as_ref(), &bytes[100..200]);
    // Resume from an offset to the end.
    let (s, _, body) = app
        .call(Method::GET, &path, None, &[("range", "bytes=40000-")], "")
        .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body.as_ref(), &bytes[40_000..]);
    let (s, _, body) = app
        .call(Method::GET, &path, None, &[("range", "bytes=-10")], "")
        .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body.as_ref(), &bytes[bytes.len() - 10..]);
    let (s, h, _) = app
        .call(
            Method::GET,
            &path,
            None,
            &[("range", &format!("bytes={}-", bytes.len()))],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        h["content-range"],
        format!("bytes */{}", bytes.len()).as_str()
    );
    // If-Range with a stale tag: the whole file.
    let (s, _, body) = app
        .call(
            Method::GET,
            &path,
            None,
            &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
            "",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.len(), bytes.len());
    // HEAD: headers, no body.
    let (s, h, body) = app.call(Method::HEAD, &path, None, &[], "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-length"], bytes.len().to_string().as_str());
    assert!(body.is_empty());
    // Paths that escape, or do not exist.
    for bad in [
        "/repo/targets/../../admin-token",
        "/repo/targets/nl-lock-v2/missing",
        "/repo/metadata/9.targets.json",
    ] {
        let (s, _, _) = app.call(Method::GET, bad, None, &[], "").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}");
    }
    // Director roots are served too.
    let (s, _, root) = app
        .call(Method::GET, "/director/metadata/1.root.json", None, &[], "")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(root.as_ref(), app.state.director.root_bytes());
}

async fn uploads_are_checked_against_root_and_delegations(backend: Backend) {
    let app = TestApp::with(backend).await;
    let release = app.token("release").await;
    let env = app.envelope("nl-lock-v2", "1.0.0", 1, b"firmware one");
    // Signed by a key the root does not trust: refused, nothing stored.
    let stranger =
        FileKey::from_key(Path::new("stranger"), SigningKey::from_bytes(&[5; 32])).unwrap();
    let mut forged = Signed::new(Targets::new(
        2,
        app.repo_clock()
            .expires_in(Duration::from_secs(86_400))
            .unix(),
    ))
    .unwrap();
    forged.sign_with(&stranger, Path::new("forged")).unwrap();
    let (s, text) = app
        .put(
            "/admin/v1/repo/metadata/2.targets.json",
            &release,
            forged.to_bytes().unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("required"), "{text}");
    assert_eq!(app.state.repo.catalog().versions["targets"], 1);
    // Expired metadata, even properly signed: refused.
    let targets_key = nightlatch_repo::keysource::FileKey::load(&app.targets_key()).unwrap();
    let mut expired = Signed::new(Targets::new(2, 1_000)).unwrap();
    expired
        .sign_with(&targets_key, Path::new("expired"))
        .unwrap();
    let (s, text) = app
        .put(
            "/admin/v1/repo/metadata/2.targets.json",
            &release,
            expired.to_bytes().unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("expired"), "{text}");
    // A viewer cannot upload.
    let viewer = app.token("viewer").await;
    let err = app
        .publish_with(std::slice::from_ref(&env), &viewer, &app.targets_key())
        .await
        .unwrap_err();
    assert!(err.contains("403"), "{err}");
    // The real release key: accepted, and snapshot/timestamp re-signed.
    let before = app.state.repo.catalog().versions.clone();
    let r = app
        .publish_with(std::slice::from_ref(&env), &release, &app.targets_key())
        .await
        .unwrap();
    assert_eq!(r.uploaded_metadata, ["2.targets.json"]);
    let after = app.state.repo.catalog().versions.clone();
    assert!(after["snapshot"] > before["snapshot"] && after["timestamp"] > before["timestamp"]);
    assert!(
        app.state
            .repo
            .catalog()
            .firmware("nl-lock-v2/1.0.0.nlfw")
            .is_some()
    );

    // Metadata replayed at an old version, or with a target file missing,
    // or with a changed target: refused.
    let old = app
        .call(Method::GET, "/repo/metadata/2.targets.json", None, &[], "")
        .await
        .2;
    let (s, _, body) = app
        .call(
            Method::PUT,
            "/admin/v1/repo/metadata/2.targets.json",
            Some(&release),
            &[],
            old.clone(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (s, _, _) = app
        .call(
            Method::PUT,
            "/admin/v1/repo/metadata/3.snapshot.json",
            Some(&release),
            &[],
            old.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = app
        .call(
            Method::PUT,
            "/admin/v1/repo/metadata/2.targets.json",
            Some(&release),
            &[],
            "{not json",
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // A target upload whose bytes do not match its name.
    let (s, _, body) = app
        .call(
            Method::PUT,
            &format!(
                "/admin/v1/repo/targets/nl-lock-v2/{}.x.nlfw",
                "0".repeat(64)
            ),
            Some(&release),
            &[],
            "abc",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("hash_mismatch"));
    // The same version republished: no-op.
    let r = app
        .publish_with(&[env], &release, &app.targets_key())
        .await
        .unwrap();
    assert!(r.uploaded_metadata.is_empty() && r.unchanged.len() == 1);
}

async fn refresh_renews_the_timestamp(backend: Backend) {
    let app = TestApp::with(backend).await;
    let release = app.token("release").await;
    let before = app.state.repo.catalog().versions["timestamp"];
    let (s, v) = app
        .json(Method::POST, "/admin/v1/repo/refresh", Some(&release), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["timestamp_version"].as_u64(), Some(before + 1));
    // Not due yet: the timer does nothing.
    assert!(app.state.repo.refresh_if_due().await.unwrap().is_none());
}

async fn delegations_bind_models_to_their_keys(backend: Backend) {
    let app = TestApp::with(backend).await;
    let release = app.token("release").await;
    // The release engineer delegates nl-lock-v2 to its own key (offline),
    // and uploads the new top-level targets.
    let model_key = SigningKey::from_bytes(&[9; 32]);
    let model_key_path = app.dir.path().join("v2.key");
    std::fs::write(
        &model_key_path,
        nightlatch_repo::keys::private_key_pem(&model_key)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    app.mirror(work.path()).await;
    let keys = nightlatch_repo::keysource::open_all(&[nightlatch_repo::keysource::KeySpec::File(
        app.targets_key(),
    )])
    .unwrap();
    let written = nightlatch_repo::repo::delegate::delegate(
        work.path(),
        &keys,
        "nl-lock-v2",
        &[nightlatch_repo::metadata::PublicKey::Ed25519(
            model_key.verifying_key(),
        )],
        1,
        &nightlatch_repo::repo::Expiries::default(),
        &app.repo_clock(),
    )
    .unwrap();
    let bytes = std::fs::read(&written).unwrap();
    let (s, text) = app
        .put("/admin/v1/repo/metadata/2.targets.json", &release, bytes)
        .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    // Publishing nl-lock-v2 firmware now needs the model's key, and lands in its role.
    let env = app.envelope("nl-lock-v2", "1.0.0", 1, b"v2 firmware");
    let err = app
        .publish_with(std::slice::from_ref(&env), &release, &app.targets_key())
        .await
        .unwrap_err();
    assert!(
        err.contains("not a key of") || err.contains("role"),
        "{err}"
    );
    let r = app
        .publish_with(&[env], &release, &model_key_path)
        .await
        .unwrap();
    assert_eq!(r.uploaded_metadata, ["1.nl-lock-v2.json"]);
    assert_eq!(
        app.state
            .repo
            .catalog()
            .firmware("nl-lock-v2/1.0.0.nlfw")
            .unwrap()
            .role,
        "nl-lock-v2"
    );
    // The model's key cannot sign for another model's path.
    let model = FileKey::from_key(Path::new("v2"), model_key).unwrap();
    let mut t = Targets::new(
        2,
        app.repo_clock()
            .expires_in(Duration::from_secs(86_400))
            .unix(),
    );
    t.targets.insert(
        "nl-lock-v3/9.9.9.nlfw".into(),
        TargetFile::new(3, Hashes::sha256_of(b"abc"), None),
    );
    let mut forged = Signed::new(t).unwrap();
    forged.sign_with(&model, Path::new("forged")).unwrap();
    let (s, text) = app
        .put(
            "/admin/v1/repo/metadata/2.nl-lock-v2.json",
            &release,
            forged.to_bytes().unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("outside the paths"), "{text}");
    // Nor can anyone upload a role that is not delegated.
    let (s, text) = app
        .put(
            "/admin/v1/repo/metadata/1.nl-lock-v9.json",
            &release,
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
}

crate::both_backends!(
    serves_metadata_and_targets_with_ranges,
    delegations_bind_models_to_their_keys,
    uploads_are_checked_against_root_and_delegations,
    refresh_renews_the_timestamp,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_are_published_beside_their_envelopes() {
    let app = TestApp::new().await;
    let v1: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let mut v2 = v1.clone();
    v2[1000..1100].fill(7);
    let e1 = app.envelope("nl-lock-v2", "1.0.0", 1, &v1);
    let e2 = app.envelope("nl-lock-v2", "2.0.0", 2, &v2);
    let made = nightlatch_repo::delta::make_patch(
        &std::fs::read(&e1).unwrap(),
        &std::fs::read(&e2).unwrap(),
        &nightlatch_repo::delta::NoProgress,
    )
    .unwrap();
    let patch = app.dir.path().join("1-to-2.nldp");
    std::fs::write(&patch, &made.patch).unwrap();
    // The patch alone: its envelopes are not in the repository yet.
    let release = app.token("release").await;
    let err = app
        .publish_with(std::slice::from_ref(&patch), &release, &app.targets_key())
        .await
        .unwrap_err();
    assert!(err.contains("not in the repository"), "{err}");
    let r = app.publish(&[e1, e2, patch]).await;
    assert!(
        r.added
            .contains(&"nl-lock-v2/2.0.0.from-1.0.0.nldp".to_owned()),
        "{r:?}"
    );
    let c = app.state.repo.catalog();
    let p = c
        .patch_for("nl-lock-v2/2.0.0.nlfw", "1.0.0")
        .expect("patch found");
    assert_eq!(p.base.as_ref().unwrap().version, "1.0.0");
    assert_eq!(
        p.target.as_ref().unwrap().sha256,
        c.firmware("nl-lock-v2/2.0.0.nlfw").unwrap().sha256()
    );
    assert!(c.patch_for("nl-lock-v2/2.0.0.nlfw", "0.9.0").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_refuses_a_server_whose_roots_are_not_the_trusted_root() {
    let app = TestApp::new().await;
    let env = app.envelope("nl-lock-v2", "1.0.0", 1, &[7u8; 4096]);
    let token = app.token("release").await;
    let dir = tempfile::tempdir().unwrap();
    let (_, _, before) = app
        .call(Method::GET, "/repo/metadata/timestamp.json", None, &[], "")
        .await;

    // Another repository's root (here: the real one with other contents),
    // then a trusted root of a version the server does not have.
    let mut other: Value =
        serde_json::from_slice(&std::fs::read(app.image_root()).unwrap()).unwrap();
    other["signed"]["expires"] = Value::from("2099-01-01T00:00:00Z");
    let other_path = dir.path().join("other.root.json");
    for (version, refusal) in [(1, "is not the trusted root"), (2, "has no version 2")] {
        other["signed"]["version"] = Value::from(version);
        std::fs::write(&other_path, serde_json::to_vec(&other).unwrap()).unwrap();
        let err = app
            .publish_trusting(
                std::slice::from_ref(&env),
                &token,
                &app.targets_key(),
                &other_path,
            )
            .await
            .unwrap_err();
        assert!(err.contains(refusal), "{err}");
    }

    // Nothing was uploaded; with the ceremony's root it goes through.
    let (_, _, after) = app
        .call(Method::GET, "/repo/metadata/timestamp.json", None, &[], "")
        .await;
    assert_eq!(before, after, "a refused publish uploads nothing");
    let report = app
        .publish_trusting(&[env], &token, &app.targets_key(), &app.image_root())
        .await
        .unwrap();
    assert_eq!(report.added, ["nl-lock-v2/1.0.0.nlfw"]);
}
