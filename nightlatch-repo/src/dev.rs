//! `nightlatch-keys init --dev --out DIR`: dev keys and fully signed roots for
//! both repositories, in one non-interactive command, for demos and tests.
//!
//! UNSAFE for production: every private key is written unencrypted next to
//! the metadata, and one machine holds all of them.
//!
//! ```text
//! DIR/UNSAFE-DEV-KEYS.txt
//! DIR/transcript.jsonl
//! DIR/image/1.root.json         root 2-of-3, targets/snapshot/timestamp 1-of-1
//! DIR/image/keys/{root-1,root-2,root-3,targets,snapshot,timestamp}.{key,pub}
//! DIR/director/1.root.json      every role 1-of-1
//! DIR/director/keys/{root,targets,snapshot,timestamp}.{key,pub}
//! ```

use std::path::Path;

use ed25519_dalek::SigningKey;
use serde::Serialize;

use crate::ceremony::write_root;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fsio::{self, Access, write_atomic};
use crate::keysource::FileKey;
use crate::keysource::KeySource;
use crate::keysource::file::{write_private, write_public};
use crate::metadata::expiry::ROOT_LIFETIME;
use crate::metadata::{Root, Signed};
use crate::transcript::{Draft, Log};

const WARNING: &str = "UNSAFE FOR PRODUCTION: these keys were made by `nightlatch-keys init --dev`.\n\
Every private key here is unencrypted and all of them sit on one machine.\n\
Use them for demos and tests only; run a real ceremony for anything else.\n";

/// What `init --dev` made.
#[derive(Debug, Clone, Serialize)]
pub struct DevReport {
    /// The directory.
    pub dir: String,
    /// The image repository's signed root.
    pub image_root: String,
    /// The director repository's signed root.
    pub director_root: String,
}

impl DevReport {
    /// Text for the terminal.
    pub fn text(&self) -> String {
        format!(
            "UNSAFE dev keys and signed roots in {}\n  image root     {}\n  director root  {}",
            self.dir, self.image_root, self.director_root
        )
    }
}

fn new_key(dir: &Path, name: &str) -> Result<FileKey> {
    let path = dir.join(format!("{name}.key"));
    let key = FileKey::from_key(&path, SigningKey::generate(&mut rand_core::OsRng))?;
    write_private(&path, key.secret(), None, true)?;
    write_public(&dir.join(format!("{name}.pub")), key.public(), true)?;
    Ok(key)
}

/// One repository: keys, a root signed by every root key.
fn make_repo(
    dir: &Path,
    root_keys: usize,
    root_threshold: u32,
    clock: &dyn Clock,
) -> Result<Signed<Root>> {
    let keys_dir = dir.join("keys");
    fsio::create_dir(&keys_dir)?;
    let mut root = Root::new(1, clock.expires_in(ROOT_LIFETIME).unix());
    let mut signers = Vec::new();
    let mut publics = Vec::new();
    for i in 1..=root_keys {
        let name = if root_keys == 1 {
            "root".to_owned()
        } else {
            format!("root-{i}")
        };
        let key = new_key(&keys_dir, &name)?;
        publics.push(key.public().clone());
        signers.push(key);
    }
    root.set_role("root", &publics, root_threshold);
    for role in ["targets", "snapshot", "timestamp"] {
        let key = new_key(&keys_dir, role)?;
        root.set_role(role, &[key.public().clone()], 1);
    }
    let path = dir.join("1.root.json");
    let mut signed = Signed::new(root)?;
    for s in &signers {
        signed.sign_with(s, &path)?;
    }
    Ok(signed)
}

/// Make everything under `dir` (which must be empty or absent unless
/// `force`); the roots expire a year after `clock`'s now.
pub fn make(dir: &Path, force: bool, log: &Log, clock: &dyn Clock) -> Result<DevReport> {
    if !force
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return Err(Error::usage(
            format!("{} is not empty", dir.display()),
            "pass an empty or new directory, or --force to overwrite dev files in it",
        ));
    }
    fsio::create_dir(dir)?;
    write_atomic(
        &dir.join("UNSAFE-DEV-KEYS.txt"),
        WARNING.as_bytes(),
        Access::Public,
        true,
    )?;
    let transcript = log
        .transcript
        .clone()
        .unwrap_or_else(|| dir.join(crate::transcript::DEFAULT_NAME));
    let log = Log {
        transcript: Some(transcript),
        who: log.who.clone(),
    };
    let mut paths = Vec::new();
    for (repo, root_keys, threshold) in [("image", 3, 2), ("director", 1, 1)] {
        let repo_dir = dir.join(repo);
        let root = make_repo(&repo_dir, root_keys, threshold, clock)?;
        let path = repo_dir.join("1.root.json");
        let sha = write_root(&path, &root, true)?;
        log.record(
            &path,
            Draft {
                operation: "init --dev".into(),
                subject: format!("{repo} root {} (UNSAFE dev keys)", path.display()),
                version: Some(1),
                key_ids: root.signed.keys.keys().map(ToString::to_string).collect(),
                sha256_after: Some(sha),
                ..Draft::default()
            },
            clock,
        )?;
        paths.push(path.display().to_string());
    }
    let [image_root, director_root] = <[String; 2]>::try_from(paths)
        .map_err(|_| Error::usage("internal: expected two roots", "report this bug"))?;
    Ok(DevReport {
        dir: dir.display().to_string(),
        image_root,
        director_root,
    })
}
