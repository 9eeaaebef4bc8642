//! `nightlatch-sign publish --server URL`: publish to a running
//! `nightlatch-server` instead of a directory. The release key never leaves
//! this machine:
//!
//! 1. fetch the repository's current metadata over HTTP, the way a TUF
//!    client finds it (`timestamp.json` → `N.snapshot.json` → the targets
//!    and delegated roles it lists; `root.json` for the root);
//! 2. run the ordinary [`publish`](crate::repo::publish::publish) on that
//!    copy in a temporary directory, signing with the release key(s);
//! 3. upload the new target files (`PUT /admin/v1/repo/targets/<dir>/<sha256>.<name>`)
//!    and then the new metadata (`PUT /admin/v1/repo/metadata/N.ROLE.json`),
//!    with a bearer token of the `release` role. The server checks the
//!    metadata against its trusted root and delegations before accepting it,
//!    and re-signs snapshot and timestamp.
//!
//! Everything the server sends is hostile until checked. The mirror verifies
//! `timestamp.json` and the snapshot against the online keys of the newest
//! root the server serves (that root's chain is verified before anything is
//! signed, below), and every role name the snapshot lists must be a valid
//! role name (`a-z 0-9 . _ -`, 1 to 64 characters, no leading dot, no `..`,
//! not a top-level role other than `targets`, see [`check_listed_role`])
//! before it goes into a URL or a file name: no `/`, `\`, NUL or `..` from
//! the server ever reaches the file system.
//!
//! The copy is signed on top of, so it must be the real repository: with
//! a trusted root (`--trusted-root`, a root from the key ceremony) the
//! server's root of that version must be that very root, and the chain from
//! it to the newest root is verified before anything is signed. Without one
//! the chain the server serves is taken on trust (first use), and a stolen
//! server could have the release key sign targets it made up.

use crate::metadata::Metadata as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::keysource::KeySource;
use crate::metadata::{Signed, Snapshot, Timestamp};
use crate::repo::publish::publish;
use crate::repo::{Expiries, metadata_dir, target_file};

/// How the repository is reached (HTTP in the CLI; tests may plug in others).
pub trait Transport {
    /// GET `path` (e.g. `/repo/metadata/timestamp.json`); None on 404.
    fn get(&self, path: &str) -> std::result::Result<Option<Vec<u8>>, String>;
    /// PUT `body` to `path` with the bearer token; the error text on failure.
    fn put(&self, path: &str, body: &[u8]) -> std::result::Result<(), String>;
}

/// HTTP to a server at a base URL.
#[derive(Debug)]
pub struct Http {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Http {
    /// A client of the server at `base` (`http://host:port`) using `token`.
    pub fn new(base: &str, token: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(300)))
            .build();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            agent: config.into(),
        }
    }
}

fn read_body(
    resp: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
) -> std::result::Result<Vec<u8>, String> {
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| e.to_string())
}

impl Transport for Http {
    fn get(&self, path: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        match resp.status().as_u16() {
            200 => read_body(&mut resp, crate::metadata::MAX_METADATA_LEN).map(Some),
            404 => Ok(None),
            s => Err(format!(
                "GET {url}: HTTP {s}: {}",
                String::from_utf8_lossy(&read_body(&mut resp, 4096).unwrap_or_default())
            )),
        }
    }

    fn put(&self, path: &str, body: &[u8]) -> std::result::Result<(), String> {
        let url = format!("{}{path}", self.base);
        let mut resp = self
            .agent
            .put(&url)
            .header("authorization", &format!("Bearer {}", self.token))
            .header("content-type", "application/octet-stream")
            .send(body)
            .map_err(|e| format!("PUT {url}: {e}"))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&read_body(&mut resp, 64 * 1024).unwrap_or_default())
            .into_owned();
        Err(format!("PUT {url}: HTTP {status}: {text}"))
    }
}

/// What a remote publish did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoteReport {
    /// Targets added.
    pub added: Vec<String>,
    /// Targets already published with the same content.
    pub unchanged: Vec<String>,
    /// Target files uploaded (server paths).
    pub uploaded_targets: Vec<String>,
    /// Metadata files uploaded.
    pub uploaded_metadata: Vec<String>,
}

fn remote_err(server: &str, reason: String) -> Error {
    Error::RepoState {
        path: PathBuf::from(server),
        reason,
        help: "check the server URL, that it runs, and that the token has the release role".into(),
    }
}

fn fetch(t: &dyn Transport, server: &str, name: &str, dir: &Path) -> Result<Option<Vec<u8>>> {
    let bytes = t
        .get(&format!("/repo/metadata/{name}"))
        .map_err(|e| remote_err(server, e))?;
    if let Some(b) = &bytes {
        std::fs::write(metadata_dir(dir).join(name), b).map_err(|e| Error::Write {
            path: metadata_dir(dir).join(name),
            source: e,
        })?;
    }
    Ok(bytes)
}

/// Where target `name` with `sha` (hex) lives under `/repo/targets/` (and
/// `/admin/v1/repo/targets/`): `<dir>/<sha>.<basename>`.
fn served_target_path(name: &str, sha: &str) -> String {
    let rel = target_file(Path::new(""), name, sha);
    let rel = rel.to_string_lossy().replace('\\', "/");
    rel.trim_start_matches("targets/").to_owned()
}

/// A patch's target prefix is coded against its base envelope's prefix, so
/// publishing a patch needs the base. When the base is already published
/// (not in this publish), fetch it into the mirror from
/// `/repo/targets/…`: every published firmware whose payload length and
/// digest prefix match a patch's header, each checked against the length
/// and SHA-256 the (verified) targets metadata lists for it.
fn fetch_patch_bases(t: &dyn Transport, server: &str, dir: &Path, files: &[PathBuf]) -> Result<()> {
    use crate::repo::target::{Custom, Kind, PublishFile, read_file};
    let headers: Vec<_> = files
        .iter()
        .filter_map(|f| match read_file(f) {
            Ok(PublishFile::Patch(p)) => Some(p.header),
            _ => None,
        })
        .collect();
    if headers.is_empty() {
        return Ok(());
    }
    let repo = crate::repo::Repo::load_verified(dir)?;
    let published = repo
        .targets
        .iter()
        .map(|t| &t.signed)
        .chain(repo.delegated.values().map(|t| &t.signed))
        .flat_map(|t| t.targets.iter());
    for (name, file) in published {
        let Some(custom) = Custom::from_target(file) else {
            continue;
        };
        let is_base = |h: &bootloader::delta::PatchHeader| {
            custom.kind == Kind::Firmware && crate::repo::patch::names_base(h, &custom)
        };
        if !headers.iter().any(is_base) {
            continue;
        }
        let sha = file.sha256_hex().unwrap_or_default();
        let local = target_file(dir, name, &sha);
        let rel = served_target_path(name, &sha);
        let bytes = t
            .get(&format!("/repo/targets/{rel}"))
            .map_err(|e| remote_err(server, e))?
            .ok_or_else(|| {
                remote_err(
                    server,
                    format!("the patch's base {name} is listed but not served"),
                )
            })?;
        if bytes.len() as u64 != file.length || crate::transcript::sha256_hex(&bytes) != sha {
            return Err(remote_err(
                server,
                format!("the server's {name} does not match its signed length and SHA-256"),
            ));
        }
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::Write {
                path: parent.to_owned(),
                source: e,
            })?;
        }
        std::fs::write(&local, &bytes).map_err(|e| Error::Write {
            path: local.clone(),
            source: e,
        })?;
    }
    Ok(())
}

/// Copy the server's current metadata into `dir` (a fresh directory).
pub fn mirror(t: &dyn Transport, server: &str, dir: &Path) -> Result<()> {
    let meta = metadata_dir(dir);
    std::fs::create_dir_all(&meta).map_err(|e| Error::Write {
        path: meta.clone(),
        source: e,
    })?;
    let root = fetch(t, server, "root.json", dir)?
        .ok_or_else(|| remote_err(server, "the server has no /repo/metadata/root.json".into()))?;
    let root: Signed<crate::metadata::Root> = Signed::parse(&root, Path::new("root.json"))?;
    let _ = std::fs::rename(
        meta.join("root.json"),
        meta.join(format!("{}.root.json", root.signed.version())),
    );
    // The whole chain: re-signing checks it from version 1 (after a root
    // rotation the current root alone does not verify the chain).
    for v in 1..root.signed.version() {
        fetch(t, server, &format!("{v}.root.json"), dir)?
            .ok_or_else(|| remote_err(server, format!("{v}.root.json is missing")))?;
    }
    let Some(ts) = fetch(t, server, "timestamp.json", dir)? else {
        return Ok(()); // nothing published yet
    };
    let ts: Signed<Timestamp> = Signed::parse(&ts, Path::new("timestamp.json"))?;
    require_online(server, &root.signed, &ts, "timestamp.json", "timestamp")?;
    let listed = &ts.signed.snapshot_meta;
    let snap_version = listed.version;
    let snap_name = format!("{snap_version}.snapshot.json");
    let snap = fetch(t, server, &snap_name, dir)?
        .ok_or_else(|| remote_err(server, format!("{snap_name} is missing")))?;
    let snap: Signed<Snapshot> = Signed::parse(&snap, Path::new("snapshot.json"))?;
    require_online(server, &root.signed, &snap, &snap_name, "snapshot")?;
    if snap.signed.version() != snap_version {
        return Err(hostile(
            server,
            format!(
                "{snap_name} holds snapshot version {}, not the version {snap_version} timestamp.json lists",
                snap.signed.version()
            ),
        ));
    }
    // Every name is checked before any of them is used.
    let mut roles = Vec::with_capacity(snap.signed.meta.len());
    for (name, file) in &snap.signed.meta {
        let role = check_listed_role(name).map_err(|reason| hostile(server, reason))?;
        roles.push((role, file.version));
    }
    for (role, version) in roles {
        fetch(t, server, &format!("{version}.{role}.json"), dir)?
            .ok_or_else(|| remote_err(server, format!("{version}.{role}.json is missing")))?;
    }
    Ok(())
}

/// The role a snapshot entry names (`<role>.json`), if it is one the mirror
/// may turn into a URL and a file name: `targets`, or a delegated role name
/// as `nightlatch-sign repo delegate` writes them (1 to 64 characters from
/// `a-z 0-9 . _ -`, no leading dot, no `..`, not `root`, `snapshot` or
/// `timestamp`). So no `/`, `\`, NUL, `..` or absolute path from the server
/// reaches the file system, and no listed role overwrites the mirrored
/// root chain. The reason on refusal.
pub fn check_listed_role(name: &str) -> std::result::Result<&str, String> {
    let shown: String = name.chars().take(80).collect();
    let role = name
        .strip_suffix(".json")
        .ok_or_else(|| format!("the snapshot lists {shown:?}, which is not a <role>.json name"))?;
    if role == "targets" {
        return Ok(role);
    }
    let refused = |why: String| format!("the snapshot lists role name {shown:?}: {why}");
    if role.contains("..") {
        return Err(refused("a role name must not contain \"..\"".into()));
    }
    crate::metadata::targets::check_role_name(role).map_err(refused)?;
    Ok(role)
}

/// Refuse `m` unless the online role `role` of `root` (the newest root the
/// server serves; its chain is verified before anything is signed) signed it.
fn require_online<T: crate::metadata::Metadata>(
    server: &str,
    root: &crate::metadata::Root,
    m: &Signed<T>,
    what: &str,
    role: &str,
) -> Result<()> {
    let keys = root
        .role(role)
        .ok_or_else(|| hostile(server, format!("the server's root has no {role} role")))?;
    m.require(&root.keys, keys, what, role)
        .map_err(|e| hostile(server, format!("{what} does not verify: {e}")))?;
    Ok(())
}

/// The server sent something a genuine repository never holds.
fn hostile(server: &str, reason: String) -> Error {
    Error::RepoState {
        path: PathBuf::from(server),
        reason: format!("refusing the server's metadata: {reason}"),
        help: "the server may be compromised or be another repository: do not sign on top of it; compare its metadata with a trusted copy".into(),
    }
}

/// Check that the mirrored root chain in `dir` holds `trusted` (a root
/// file the caller trusts) at its version. The rest of the chain is
/// verified from there by [`publish`] (each root signed by the thresholds
/// of the one before and its own).
pub fn check_trusted_root(server: &str, dir: &Path, trusted: &Path) -> Result<()> {
    let pinned = std::fs::read(trusted).map_err(|e| Error::Read {
        path: trusted.to_owned(),
        source: e,
    })?;
    let root: Signed<crate::metadata::Root> = Signed::parse(&pinned, trusted)?;
    let v = root.signed.version();
    let served_path = metadata_dir(dir).join(format!("{v}.root.json"));
    let served = std::fs::read(&served_path).map_err(|_| {
        remote_err(
            server,
            format!("the server's root chain has no version {v}, the version of the trusted root"),
        )
    })?;
    let same = served == pinned
        || matches!(
            (
                serde_json::from_slice::<serde_json::Value>(&served),
                serde_json::from_slice::<serde_json::Value>(&pinned),
            ),
            (Ok(a), Ok(b)) if a == b
        );
    if !same {
        return Err(Error::RepoState {
            path: PathBuf::from(server),
            reason: format!(
                "the server's {v}.root.json is not the trusted root {}",
                trusted.display()
            ),
            help: "the server may be compromised or be another repository: do not sign on top of it; compare its roots with the key ceremony's".into(),
        });
    }
    Ok(())
}

/// Publish `files` to the server behind `t`, signing with `keys` (the
/// targets metadata expires `expiries.targets` after `clock`'s now). With
/// `trusted_root`, the server's root chain must contain that root (see the
/// module documentation).
pub fn publish_remote(
    t: &dyn Transport,
    server: &str,
    keys: &[Box<dyn KeySource>],
    files: &[PathBuf],
    expiries: &Expiries,
    trusted_root: Option<&Path>,
    clock: &dyn Clock,
) -> Result<RemoteReport> {
    let tmp = tempfile::tempdir().map_err(|e| Error::Write {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let dir = tmp.path();
    mirror(t, server, dir)?;
    if let Some(trusted) = trusted_root {
        check_trusted_root(server, dir, trusted)?;
    }
    fetch_patch_bases(t, server, dir, files)?;
    let report = publish(dir, keys, files, expiries, clock)?;
    let mut out = RemoteReport {
        added: report.added.clone(),
        unchanged: report.unchanged.clone(),
        ..RemoteReport::default()
    };
    // Target files first: the server refuses metadata naming files it lacks.
    let repo = crate::repo::Repo::load(dir)?;
    let all = repo
        .targets
        .iter()
        .map(|t| &t.signed)
        .chain(repo.delegated.values().map(|t| &t.signed));
    for targets in all {
        for (name, file) in &targets.targets {
            if !report.added.contains(name) {
                continue;
            }
            let sha = file.sha256_hex().unwrap_or_default();
            let local = target_file(dir, name, &sha);
            let rel = served_target_path(name, &sha);
            let bytes = std::fs::read(&local).map_err(|e| Error::Read {
                path: local.clone(),
                source: e,
            })?;
            t.put(&format!("/admin/v1/repo/targets/{rel}"), &bytes)
                .map_err(|e| remote_err(server, e))?;
            out.uploaded_targets.push(rel);
        }
    }
    for path in &report.metadata {
        let path = Path::new(path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| remote_err(server, format!("unusable file name {}", path.display())))?;
        let bytes = std::fs::read(path).map_err(|e| Error::Read {
            path: path.to_owned(),
            source: e,
        })?;
        t.put(&format!("/admin/v1/repo/metadata/{name}"), &bytes)
            .map_err(|e| remote_err(server, e))?;
        out.uploaded_metadata.push(name.to_owned());
    }
    Ok(out)
}
