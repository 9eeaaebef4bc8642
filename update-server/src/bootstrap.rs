//! First start on an empty data directory, and what every start needs:
//! the keys and roots (configured, or unsafe dev keys generated once under
//! `DIR/keys` and loudly logged as such), the director roots published for
//! locks to fetch, and a first admin token.

use nightlatch_repo::metadata::Metadata as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use nightlatch_repo::keysource::{FileKey, KeySpec};
use nightlatch_repo::transcript::Log;

use crate::auth::{Role, hash_token, new_token};
use crate::blob::BlobStore;
use crate::config::Config;
use crate::store::Store;
use crate::store::audit::AuditEntry;
use crate::store::tokens::TokenRecord;

/// Keys and roots the server runs with.
#[derive(Debug)]
pub struct ServerKeys {
    /// Image repository snapshot key.
    pub image_snapshot: KeySpec,
    /// Image repository timestamp key.
    pub image_timestamp: KeySpec,
    /// The image repository's trusted root (starts an empty repository).
    pub image_root: PathBuf,
    /// The director's newest root.
    pub director_root: PathBuf,
    /// Director targets key.
    pub director_targets: FileKey,
    /// Director timestamp key (signs the time).
    pub director_timestamp: FileKey,
    /// Dev mode only: the image targets key (offline in production), used
    /// once to publish empty targets so the repository is complete.
    pub dev_targets: Option<KeySpec>,
}

fn file_key(spec: &str, what: &str) -> anyhow::Result<FileKey> {
    FileKey::load(Path::new(spec)).map_err(|e| anyhow::anyhow!("{what} key {spec}: {e}"))
}

/// The configured keys, or the dev keys under `DIR/keys` (made if missing,
/// their roots expiring a year after `clock`'s now).
pub fn server_keys(
    config: &Config,
    clock: &dyn nightlatch_repo::Clock,
) -> anyhow::Result<ServerKeys> {
    let k = &config.keys;
    if k.any_set() {
        let need = |v: &Option<String>, name: &str| {
            v.clone().with_context(|| {
                format!("keys.{name} is not set (set every key, or none for dev keys)")
            })
        };
        let need_path = |v: &Option<PathBuf>, name: &str| {
            v.clone().with_context(|| {
                format!("keys.{name} is not set (set every key, or none for dev keys)")
            })
        };
        return Ok(ServerKeys {
            image_snapshot: KeySpec::parse(&need(&k.image_snapshot, "image_snapshot")?)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            image_timestamp: KeySpec::parse(&need(&k.image_timestamp, "image_timestamp")?)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            image_root: need_path(&k.image_root, "image_root")?,
            director_root: need_path(&k.director_root, "director_root")?,
            director_targets: file_key(
                &need(&k.director_targets, "director_targets")?,
                "director targets",
            )?,
            director_timestamp: file_key(
                &need(&k.director_timestamp, "director_timestamp")?,
                "director timestamp",
            )?,
            dev_targets: None,
        });
    }
    let dir = config.data_dir.join("keys");
    if !dir.join("UNSAFE-DEV-KEYS.txt").exists() {
        let log = Log {
            transcript: None,
            who: Some("nightlatch-server".into()),
        };
        nightlatch_repo::dev::make(&dir, false, &log, clock)
            .map_err(|e| anyhow::anyhow!("generating dev keys in {}: {e}", dir.display()))?;
        tracing::warn!(
            dir = %dir.display(),
            "DEV-ONLY: no keys configured, generated UNSAFE dev keys and roots (every private key unencrypted on this machine); configure [keys] for anything but development"
        );
    } else {
        tracing::warn!(dir = %dir.display(), "DEV-ONLY: running with the unsafe dev keys in the data directory");
    }
    let image = dir.join("image/keys");
    let director = dir.join("director/keys");
    let spec = |p: PathBuf| KeySpec::File(p);
    Ok(ServerKeys {
        image_snapshot: spec(image.join("snapshot.key")),
        image_timestamp: spec(image.join("timestamp.key")),
        image_root: dir.join("image/1.root.json"),
        director_root: dir.join("director/1.root.json"),
        director_targets: file_key(
            &director.join("targets.key").display().to_string(),
            "director targets",
        )?,
        director_timestamp: file_key(
            &director.join("timestamp.key").display().to_string(),
            "director timestamp",
        )?,
        dev_targets: Some(spec(image.join("targets.key"))),
    })
}

/// Publish the director's roots (`K.root.json` beside the newest, and the
/// newest as `root.json`) at `director/metadata/`. Returns the newest root's bytes.
pub async fn publish_director_roots(blobs: &BlobStore, newest: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(newest)
        .with_context(|| format!("reading director root {}", newest.display()))?;
    let root =
        nightlatch_repo::metadata::Signed::<nightlatch_repo::metadata::Root>::parse(&bytes, newest)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let version = root.signed.version();
    let dir = newest.parent().unwrap_or(Path::new("."));
    for v in 1..version {
        let older = dir.join(format!("{v}.root.json"));
        if let Ok(b) = std::fs::read(&older) {
            let key = format!("director/metadata/{v}.root.json");
            if blobs.head(&key).await?.is_none() {
                blobs.put(&key, Bytes::from(b)).await?;
            }
        }
    }
    let key = format!("director/metadata/{version}.root.json");
    if blobs.head(&key).await?.is_none() {
        blobs.put(&key, Bytes::from(bytes.clone())).await?;
    }
    blobs
        .put("director/metadata/root.json", Bytes::from(bytes.clone()))
        .await?;
    Ok(bytes)
}

/// With no live admin token, make a security-admin token: the value of
/// `NIGHTLATCH_ADMIN_TOKEN` if set, else a random one written to
/// `DIR/admin-token` (mode 0600).
pub async fn admin_token(store: &Store, data_dir: &Path, now: i64) -> anyhow::Result<()> {
    if store.live_token_count().await? > 0 {
        return Ok(());
    }
    let (token, from_env) = match std::env::var("NIGHTLATCH_ADMIN_TOKEN") {
        Ok(t) if t.len() >= 32 => (t, true),
        Ok(_) => anyhow::bail!("NIGHTLATCH_ADMIN_TOKEN must be at least 32 characters"),
        Err(_) => (new_token(), false),
    };
    let record = TokenRecord {
        id: crate::ids::new_id("tok", now),
        name: "bootstrap".into(),
        role: Role::SecurityAdmin.as_str().into(),
        created_at: now,
        created_by: "system".into(),
        revoked_at: None,
        expires_at: None,
    };
    store
        .insert_token(
            &record,
            &hash_token(&token),
            Some(&AuditEntry::system(
                "token.create",
                &record.id,
                serde_json::json!({ "name": "bootstrap", "role": record.role }),
            )),
        )
        .await?;
    if from_env {
        tracing::info!("first admin token (security-admin) taken from NIGHTLATCH_ADMIN_TOKEN");
    } else {
        let path = data_dir.join("admin-token");
        nightlatch_repo::fsio::write_atomic(
            &path,
            format!("{token}\n").as_bytes(),
            nightlatch_repo::fsio::Access::Secret,
            true,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::warn!(path = %path.display(), "first admin token (security-admin) written; create per-person tokens with POST /admin/v1/tokens and revoke this one");
    }
    Ok(())
}
