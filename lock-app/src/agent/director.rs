//! Checking the director's answer to a check-in: the director root chain,
//! the signed time bound to this check-in's nonce, the director targets
//! metadata, and the assignment it carries.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use nightlatch_proto::custom::{DirectorCustom, DirectorRole, InstallPolicy};
use nightlatch_proto::wire::{self, CheckinResponse, TimeError};
use sha2::{Digest, Sha256};

use super::{AgentError, Net, Repo};
use crate::tuf::{
    Envelope, FetchError, MetadataStore, PublicKey, Role, Root, TargetFile, Targets, TrustedSet,
    TufError,
};

/// Most director root versions taken in one check-in.
pub const MAX_ROOT_STEPS: u64 = 64;
/// Largest director root file.
pub const ROOT_MAX: u64 = 512_000;

/// Store names of the director metadata.
pub const ROOT_FILE: &str = "director/root";
/// Store name of the director targets metadata.
pub const TARGETS_FILE: &str = "director/targets";

/// One target of the director metadata, as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorTarget {
    /// Target name (the image repository's name).
    pub name: String,
    /// Length, hashes, custom.
    pub file: TargetFile,
}

/// What the director tells this lock to install now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The image (an envelope).
    pub image: DirectorTarget,
    /// A patch from the running version to the image, when the repository has one.
    pub patch: Option<DirectorTarget>,
    /// When the lock may install.
    pub policy: InstallPolicy,
    /// The rollout that assigned it.
    pub rollout: Option<String>,
}

/// A verified director answer. Only [`verify`] makes one (its fields are
/// private), so holding one means every check passed.
#[derive(Debug, Clone)]
pub struct Verified {
    time: u64,
    new_roots: Vec<Vec<u8>>,
    new_targets: Option<Vec<u8>>,
    targets_version: u64,
    assignment: Option<Assignment>,
    root: Root,
    targets: Targets,
    targets_sha256: [u8; 32],
}

impl Verified {
    /// The signed time (Unix seconds).
    pub fn time(&self) -> u64 {
        self.time
    }

    /// Newer director roots, in order, to persist (the last is trusted now).
    pub fn new_roots(&self) -> &[Vec<u8>] {
        &self.new_roots
    }

    /// New director targets metadata to persist.
    pub fn new_targets(&self) -> Option<&[u8]> {
        self.new_targets.as_deref()
    }

    /// Version of the director targets metadata now in force.
    pub fn targets_version(&self) -> u64 {
        self.targets_version
    }

    /// The assignment, if the metadata holds one.
    pub fn assignment(&self) -> Option<&Assignment> {
        self.assignment.as_ref()
    }

    /// The assignment, taken out.
    pub fn take_assignment(&mut self) -> Option<Assignment> {
        self.assignment.take()
    }
}

/// This check-in's values the answer must be bound to.
#[derive(Debug, Clone, Copy)]
pub struct Sent<'a> {
    /// Device id.
    pub device_id: &'a str,
    /// Hardware model.
    pub hardware_model: &'a str,
    /// Nonce (raw bytes).
    pub nonce: &'a [u8],
    /// Counter.
    pub counter: u64,
    /// Trusted time floor before this check-in.
    pub floor: u64,
}

fn director_err(e: TufError) -> AgentError {
    AgentError::Director(e)
}

/// The director targets version the lock holds (0: none).
pub fn held_targets_version<S: MetadataStore>(store: &S) -> u64 {
    store
        .load(TARGETS_FILE)
        .and_then(|b| Envelope::parse(&b, Role::Targets).ok())
        .and_then(|env| Targets::parse(&env, Role::Targets).ok())
        .map_or(0, |t| t.header.version)
}

/// Director metadata a running lock keeps in RAM once it has verified and
/// stored it, so that an idle check-in checks one signature (the time bound
/// to its nonce) instead of re-reading, re-parsing and re-verifying the
/// root and targets files it wrote itself. It mirrors [`ROOT_FILE`] and
/// [`TARGETS_FILE`]: the agent updates it only after the files are written,
/// and a reset (a new [`super::Agent::open`]) starts without it.
#[derive(Debug, Clone, Default)]
pub struct Held {
    root: Option<Root>,
    targets: Option<HeldTargets>,
}

#[derive(Debug, Clone)]
struct HeldTargets {
    sha256: [u8; 32],
    /// Verified under this root version.
    root_version: u64,
    targets: Targets,
}

impl Held {
    /// The version of the held director targets (0: none), from RAM when
    /// known, else from `store`.
    pub fn targets_version<S: MetadataStore>(&self, store: &S) -> u64 {
        match &self.targets {
            Some(t) => t.targets.header.version,
            None => held_targets_version(store),
        }
    }

    /// Remember what [`verify`] accepted (call once it is stored).
    pub fn keep(&mut self, verified: &Verified) {
        self.root = Some(verified.root.clone());
        self.targets = Some(HeldTargets {
            sha256: verified.targets_sha256,
            root_version: verified.root.header.version,
            targets: verified.targets.clone(),
        });
    }

    /// Remember the root [`verify`] ended on (call once new roots are
    /// stored).
    pub fn keep_root(&mut self, verified: &Verified) {
        if self.root.as_ref().map(|r| r.header.version) != Some(verified.root.header.version) {
            self.root = Some(verified.root.clone());
            self.targets = None;
        }
    }

    /// Forget the targets (their file was removed).
    pub fn forget_targets(&mut self) {
        self.targets = None;
    }
}

/// Verify `resp` for the check-in `sent`. Newer director roots are fetched
/// through `net`; nothing is persisted here (the caller stores what
/// [`Verified`] lists, after every check passed). `held` is what the lock
/// already verified and stored ([`Held`]); what it lacks is read from
/// `store` and verified.
pub fn verify<S: MetadataStore, N: Net>(
    resp: &CheckinResponse,
    sent: &Sent<'_>,
    store: &S,
    net: &mut N,
    held: &Held,
) -> Result<Verified, AgentError> {
    // 1. Director root chain.
    let mut trusted = match &held.root {
        Some(root) => TrustedSet::from_verified_root(root.clone(), sent.floor),
        None => {
            let root_bytes = store.load(ROOT_FILE).ok_or(AgentError::NotProvisioned)?;
            TrustedSet::new(&root_bytes, sent.floor).map_err(director_err)?
        }
    };
    let mut new_roots = Vec::new();
    let start = trusted.root().header.version;
    if resp.director_root_version > start.saturating_add(MAX_ROOT_STEPS) {
        return Err(AgentError::Director(TufError::RootVersionGap {
            expected: start.saturating_add(1),
            got: resp.director_root_version,
        }));
    }
    while trusted.root().header.version < resp.director_root_version {
        let v = trusted.root().header.version.saturating_add(1);
        let bytes = net
            .fetch_metadata(Repo::Director, &format!("{v}.root.json"), ROOT_MAX)
            .map_err(|e| match e {
                FetchError::NotFound => {
                    AgentError::Director(TufError::MissingMetadata { role: Role::Root })
                }
                FetchError::TooLarge => {
                    AgentError::Director(TufError::TooLarge { role: Role::Root })
                }
                _ => AgentError::Network,
            })?;
        trusted.update_root(&bytes).map_err(director_err)?;
        new_roots.push(bytes);
    }
    let root = trusted.root().clone();

    // 2. The signed time, bound to this check-in (replays fail here).
    let sha: [u8; 32] = wire::b64::decode_array(&resp.director_targets_sha256)
        .ok_or(AgentError::MalformedResponse)?;
    let leaf = wire::time_leaf(
        sent.device_id,
        sent.nonce,
        sent.counter,
        resp.director_targets_version,
        &sha,
    );
    let time_keys: Vec<_> = root
        .timestamp
        .keyids
        .iter()
        .filter_map(|id| match root.keys.get(id) {
            Some(PublicKey::Ed25519(k)) => Some(*k),
            _ => None,
        })
        .collect();
    let time =
        wire::verify_signed_time(&resp.time, time_keys.as_slice(), &leaf).map_err(|e| match e {
            TimeError::NotBound => AgentError::ReplayedResponse,
            TimeError::Malformed => AgentError::MalformedResponse,
            TimeError::Signature => AgentError::TimeSignature,
        })?;
    trusted.raise_time(time);
    let now = trusted.now();
    trusted.check_root_fresh().map_err(director_err)?;

    // 3. Director targets: the one the signed time names.
    let kept = held.targets.as_ref().filter(|t| {
        // What this lock verified under the root still in force, and the
        // very bytes the signed time names: nothing to check again.
        resp.director_targets.is_none() && t.sha256 == sha && t.root_version == root.header.version
    });
    let (targets, new_targets) = match kept {
        Some(t) => (t.targets.clone(), None),
        None => {
            let held_bytes = store.load(TARGETS_FILE);
            let held_version = held_bytes
                .as_deref()
                .and_then(|b| Envelope::parse(b, Role::Targets).ok())
                .and_then(|env| Targets::parse(&env, Role::Targets).ok())
                .map_or(0, |t| t.header.version);
            let (bytes, fresh) = match &resp.director_targets {
                // The text as it arrived (parsed once, as TUF metadata, below).
                Some(raw) => (raw.get().as_bytes().to_vec(), true),
                None => (
                    held_bytes.ok_or(AgentError::DirectorTargetsMismatch)?,
                    false,
                ),
            };
            let env = Envelope::parse(&bytes, Role::Targets).map_err(director_err)?;
            if <[u8; 32]>::from(Sha256::digest(env.canonical())) != sha {
                return Err(AgentError::DirectorTargetsMismatch);
            }
            let targets = Targets::parse(&env, Role::Targets).map_err(director_err)?;
            env.verify(&root.keys, &root.targets, Role::Targets)
                .map_err(director_err)?;
            if targets.header.version != resp.director_targets_version {
                return Err(AgentError::DirectorTargetsMismatch);
            }
            if fresh && targets.header.version < held_version {
                return Err(AgentError::Director(TufError::Rollback {
                    role: Role::Targets,
                    trusted: held_version,
                    offered: targets.header.version,
                }));
            }
            (targets, fresh.then_some(bytes))
        }
    };
    if targets.header.version != resp.director_targets_version {
        return Err(AgentError::DirectorTargetsMismatch);
    }
    if targets.header.is_expired(now) {
        return Err(AgentError::Director(TufError::Expired {
            role: Role::Targets,
        }));
    }

    // 4. The assignment.
    let assignment = assignment(&targets, sent)?;
    Ok(Verified {
        time,
        new_roots,
        new_targets,
        targets_version: targets.header.version,
        assignment,
        root,
        targets,
        targets_sha256: sha,
    })
}

fn custom_of(file: &TargetFile) -> Result<DirectorCustom, AgentError> {
    file.custom
        .as_ref()
        .and_then(DirectorCustom::from_custom)
        .ok_or(AgentError::MalformedAssignment)
}

fn assignment(targets: &Targets, sent: &Sent<'_>) -> Result<Option<Assignment>, AgentError> {
    let mut image: Option<(DirectorTarget, DirectorCustom)> = None;
    let mut patches = Vec::new();
    for (name, file) in &targets.targets {
        let c = custom_of(file)?;
        if c.device_id != sent.device_id || c.hardware_model != sent.hardware_model {
            return Err(AgentError::NotForThisLock);
        }
        let t = DirectorTarget {
            name: name.clone(),
            file: file.clone(),
        };
        match c.role {
            DirectorRole::Image if image.is_none() => image = Some((t, c)),
            DirectorRole::Patch => patches.push((t, c)),
            // A second image.
            DirectorRole::Image => return Err(AgentError::MalformedAssignment),
        }
    }
    let Some((image, custom)) = image else {
        return if patches.is_empty() {
            Ok(None)
        } else {
            Err(AgentError::MalformedAssignment)
        };
    };
    let patch = patches
        .into_iter()
        .find(|(_, c)| c.patch_for.as_deref() == Some(image.name.as_str()))
        .map(|(t, _)| t);
    Ok(Some(Assignment {
        image,
        patch,
        policy: custom.policy.unwrap_or_default(),
        rollout: custom.rollout,
    }))
}
