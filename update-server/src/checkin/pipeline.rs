//! One batch of check-ins, end to end (see the module documentation of
//! [`crate::checkin`]). [`Pipeline::process`] is what the HTTP workers call,
//! and what in-process tests call directly.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ed25519_dalek::VerifyingKey;
use serde_json::value::RawValue;

use crate::checkin::commit::Committer;
use crate::checkin::parse::{Parsed, Submission, parse};
use crate::checkin::plan::{Context, NewAssignment, plan};
use crate::clock::Clock;
use crate::director::Director;
use crate::error::{ApiError, AppResult};
use crate::metrics::Metrics;
use crate::repo::RepoHost;
use crate::rollouts::Rollout;
use crate::rollouts::outcome::DeviceStatus;
use crate::store::checkins::{BatchResult, CheckinWrite};
use crate::store::devices::Device;
use crate::store::{Backend, Store};
use crate::wire::{CheckinResponse, SitePolicy, b64, checkin_message, time_leaf};

/// Everything a batch needs.
#[derive(Debug)]
pub struct Pipeline {
    store: Store,
    repo: Arc<RepoHost>,
    director: Arc<Director>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    director_lifetime_ms: i64,
    keys: Mutex<HashMap<String, (String, VerifyingKey)>>,
    live: tokio::sync::Mutex<Option<Live>>,
    committer: Committer,
    cache: Option<Mutex<HashMap<String, Device>>>,
}

/// Most locks kept in memory between batches (SQLite only).
const DEVICE_CACHE_MAX: usize = 200_000;

/// Rollouts and site policies as of a live generation.
#[derive(Debug)]
struct Live {
    generation: i64,
    rollouts: Vec<Rollout>,
    policies: Arc<HashMap<String, SitePolicy>>,
}

const KEY_CACHE_MAX: usize = 500_000;

struct Accepted {
    index: usize,
    device_id: String,
    leaf: [u8; 32],
    version: i64,
    sha256: String,
    include: bool,
    targets: Option<String>,
}

impl Pipeline {
    /// A pipeline over the service's parts.
    pub fn new(
        store: Store,
        repo: Arc<RepoHost>,
        director: Arc<Director>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        director_lifetime: std::time::Duration,
    ) -> Self {
        Self {
            repo,
            director,
            clock,
            metrics,
            director_lifetime_ms: i64::try_from(director_lifetime.as_millis()).unwrap_or(i64::MAX),
            keys: Mutex::new(HashMap::new()),
            live: tokio::sync::Mutex::new(None),
            committer: Committer::start(store.clone()),
            // SQLite: this process is the database's only user, so lock rows
            // stay in memory between batches (written through on commit).
            // PostgreSQL may be shared by replicas: always read.
            cache: (store.backend() == Backend::Sqlite).then(|| Mutex::new(HashMap::new())),
            store,
        }
    }

    /// Running and paused rollouts and the site policies, reloaded only when
    /// their generation changed (one tiny query per batch otherwise).
    async fn live(&self) -> anyhow::Result<(Vec<Rollout>, Arc<HashMap<String, SitePolicy>>)> {
        let generation = self.store.live_generation().await?;
        let mut live = self.live.lock().await;
        if let Some(l) = live.as_ref()
            && l.generation == generation
        {
            return Ok((l.rollouts.clone(), Arc::clone(&l.policies)));
        }
        let rollouts = self.store.live_rollouts().await?;
        let policies: Arc<HashMap<String, SitePolicy>> =
            Arc::new(self.store.site_policies().await?.into_iter().collect());
        *live = Some(Live {
            generation,
            rollouts: rollouts.clone(),
            policies: Arc::clone(&policies),
        });
        Ok((rollouts, policies))
    }

    /// Forget a lock's cached row (after an admin change to it).
    pub fn forget(&self, device_id: &str) {
        if let Some(cache) = &self.cache
            && let Ok(mut c) = cache.lock()
        {
            c.remove(device_id);
        }
    }

    /// The rows of `ids`: from memory where cached, else from the database.
    async fn load(&self, ids: &[&str]) -> anyhow::Result<HashMap<String, Device>> {
        let Some(cache) = &self.cache else {
            return self.store.checkin_devices(ids).await;
        };
        let mut out = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        if let Ok(c) = cache.lock() {
            for id in ids {
                match c.get(*id) {
                    Some(d) => {
                        out.insert((*id).to_owned(), d.clone());
                    }
                    None => missing.push(*id),
                }
            }
        } else {
            missing.extend_from_slice(ids);
        }
        if !missing.is_empty() {
            out.extend(self.store.checkin_devices(&missing).await?);
        }
        Ok(out)
    }

    /// After a commit: keep what was written, drop what was not.
    fn remember(
        &self,
        devices: &HashMap<String, Device>,
        applied: &HashSet<String>,
        refused: &HashSet<String>,
    ) {
        let Some(cache) = &self.cache else { return };
        let Ok(mut c) = cache.lock() else { return };
        if c.len() + devices.len() > DEVICE_CACHE_MAX {
            c.clear();
        }
        for (id, d) in devices {
            if refused.contains(id) {
                c.remove(id);
            } else if applied.contains(id) || !c.contains_key(id) {
                let mut d = d.clone();
                d.director.targets = None; // read back only when resent
                c.insert(id.clone(), d);
            }
        }
    }

    /// Handle a batch; one result per submission, in order.
    pub async fn process(&self, subs: Vec<Submission>) -> Vec<AppResult<CheckinResponse>> {
        self.metrics.checkin_batch.observe(subs.len() as f64);
        let n = subs.len();
        let results = match self.try_process(&subs).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), batch = n, "check-in batch failed");
                (0..n)
                    .map(|_| Err(ApiError::Internal(anyhow::anyhow!("check-in batch failed"))))
                    .collect()
            }
        };
        for r in &results {
            let code = match r {
                Ok(_) => "accepted",
                Err(e) => e.code(),
            };
            self.metrics.checkins.with_label_values(&[code]).inc();
        }
        results
    }

    fn public_key(&self, device_id: &str, hex_key: &str) -> Option<VerifyingKey> {
        if let Ok(cache) = self.keys.lock()
            && let Some((h, k)) = cache.get(device_id)
            && h == hex_key
        {
            return Some(*k);
        }
        let bytes: [u8; 32] = hex::decode(hex_key).ok()?.try_into().ok()?;
        let key = VerifyingKey::from_bytes(&bytes).ok()?;
        if let Ok(mut cache) = self.keys.lock() {
            if cache.len() >= KEY_CACHE_MAX {
                cache.clear();
            }
            cache.insert(device_id.to_owned(), (hex_key.to_owned(), key));
        }
        Some(key)
    }

    /// The batch in six named stages: parse, load, verify, plan, commit,
    /// sign. Each stage answers the submissions it refuses; what is left
    /// unanswered at the end is an internal error.
    async fn try_process(
        &self,
        subs: &[Submission],
    ) -> anyhow::Result<Vec<AppResult<CheckinResponse>>> {
        let now = self.clock.now_ms();
        let mut batch = Batch::parse(subs);
        let mut devices = self.load_stage(&batch).await?;
        let verified = self.verify_stage(&mut batch, &devices);
        let (writes, planned, rollouts) = self
            .plan_stage(&mut batch, &mut devices, verified, now)
            .await?;
        let result = self.commit_stage(writes, rollouts, &devices, now).await?;
        self.sign_stage(&mut batch, planned, &result, now).await?;
        Ok(batch.finish())
    }

    /// Load the locks the batch names (cache, then database).
    async fn load_stage(&self, batch: &Batch<'_>) -> anyhow::Result<HashMap<String, Device>> {
        let t = Instant::now();
        let ids: Vec<&str> = batch
            .parsed
            .iter()
            .flatten()
            .map(|p| p.req.device_id.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let devices = self.load(&ids).await?;
        self.metrics.stage("load", t);
        Ok(devices)
    }

    /// Who is who, then every signature: the indexes whose signature
    /// verifies with their lock's registered key.
    fn verify_stage(&self, batch: &mut Batch<'_>, devices: &HashMap<String, Device>) -> Vec<usize> {
        let t = Instant::now();
        let mut candidates: Vec<(usize, VerifyingKey)> = Vec::new();
        for (i, p) in batch.parsed.iter().enumerate() {
            let Some(p) = p else { continue };
            let Some(dev) = devices.get(&p.req.device_id) else {
                batch.out[i] = Some(Err(ApiError::client(
                    axum::http::StatusCode::NOT_FOUND,
                    "unknown_device",
                    format!("no lock {} is registered", p.req.device_id),
                )));
                continue;
            };
            if dev.status != "active" {
                batch.out[i] = Some(Err(ApiError::forbidden(
                    "revoked",
                    "this lock has been revoked",
                )));
                continue;
            }
            let Some(key) = self.public_key(&dev.id, &dev.public_key) else {
                batch.out[i] = Some(Err(ApiError::Internal(anyhow::anyhow!(
                    "stored key of {} is unusable",
                    dev.id
                ))));
                continue;
            };
            candidates.push((i, key));
        }
        // Each signature on its own, with `verify_strict` (canonical R, no
        // small-order R or key, the cofactorless equation). ed25519-dalek's
        // `verify_batch` checks the cofactorless equation under random 128-bit
        // weights, so a signature whose R carries a torsion component passes
        // it whenever the weight is a multiple of the torsion's order (1 in
        // 2..8): a batch would accept what a lone check-in is refused for.
        // Ruling that out per signature (R in the prime-order subgroup) costs
        // a scalar multiplication, as much as the strict check itself.
        let mut verified: Vec<usize> = Vec::with_capacity(candidates.len());
        for (i, key) in &candidates {
            let good = batch.parsed[*i].as_ref().is_some_and(|p| {
                key.verify_strict(&checkin_message(&batch.subs[*i].body), &p.sig)
                    .is_ok()
            });
            if good {
                verified.push(*i);
            } else {
                batch.out[*i] = Some(Err(ApiError::unauthorized(
                    "bad_signature",
                    "the signature does not verify with this lock's registered key",
                )));
            }
        }
        self.metrics.stage("verify", t);
        verified
    }

    /// Plan every verified check-in, in arrival order: replay and model
    /// checks, then the lock's new state, assignment and director metadata.
    async fn plan_stage(
        &self,
        batch: &mut Batch<'_>,
        devices: &mut HashMap<String, Device>,
        verified: Vec<usize>,
        now: i64,
    ) -> anyhow::Result<(Vec<CheckinWrite>, Vec<Planned>, Vec<Rollout>)> {
        let t = Instant::now();
        let (mut rollouts, policies) = self.live().await?;
        let catalog = self.repo.catalog();
        let cx = Context {
            director: &self.director,
            catalog: &catalog,
            policies: &policies,
            now,
            director_lifetime_ms: self.director_lifetime_ms,
        };
        let mut writes = Vec::new();
        let mut planned_all = Vec::new();
        for i in verified {
            let Some(p) = batch.parsed[i].as_ref() else {
                continue;
            };
            let Some(dev) = devices.get_mut(&p.req.device_id) else {
                continue;
            };
            if p.counter <= dev.last_counter {
                batch.out[i] = Some(Err(replayed(dev.last_counter)));
                continue;
            }
            if p.req.report.hardware_model != dev.hardware_model {
                batch.out[i] = Some(Err(ApiError::bad_request(
                    "model_mismatch",
                    format!(
                        "the lock reports hardware model {:?} but is registered as {:?}",
                        p.req.report.hardware_model, dev.hardware_model
                    ),
                )));
                continue;
            }
            let planned = plan(&cx, dev, &p.req.report, p.counter, &mut rollouts)?;
            let d = &planned.write.director;
            let sha: [u8; 32] = d
                .sha256
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| anyhow::anyhow!("director metadata of {} has no hash", dev.id))?;
            let version = d.version;
            let include = u64::try_from(version).ok() != Some(p.req.director_targets_version);
            planned_all.push(Planned {
                accepted: Accepted {
                    index: i,
                    device_id: dev.id.clone(),
                    include,
                    leaf: time_leaf(
                        &dev.id,
                        &p.nonce,
                        p.req.counter,
                        u64::try_from(version).unwrap_or(0),
                        &sha,
                    ),
                    version,
                    sha256: b64::encode(sha),
                    targets: if include && planned.write.director_changed {
                        d.targets.clone()
                    } else {
                        None
                    },
                },
                assigned: planned.assigned,
                outcome: planned.outcome,
            });
            writes.push(planned.write);
        }
        self.metrics.stage("plan", t);
        Ok((writes, planned_all, rollouts))
    }

    /// Commit the writes (group commit), keep what was applied in the
    /// device cache, count automatic pauses.
    async fn commit_stage(
        &self,
        writes: Vec<CheckinWrite>,
        rollouts: Vec<Rollout>,
        devices: &HashMap<String, Device>,
        now: i64,
    ) -> anyhow::Result<BatchResult> {
        let t = Instant::now();
        let written: Vec<String> = writes.iter().map(|w| w.device_id.clone()).collect();
        let result = self.committer.commit(writes, rollouts, now).await?;
        let mut applied_ids = HashSet::new();
        let mut refused_ids = HashSet::new();
        for (id, ok) in written.into_iter().zip(&result.applied) {
            if *ok {
                applied_ids.insert(id);
            } else {
                refused_ids.insert(id);
            }
        }
        // (All writes of one lock share its fate: one conditional UPDATE.)
        self.remember(devices, &applied_ids, &refused_ids);
        self.metrics.stage("commit", t);
        for r in &result.auto_paused {
            tracing::warn!(rollout = %r.id, reason = ?r.state_reason, "rollout paused automatically");
            self.metrics
                .rollout_auto_pauses
                .with_label_values(&[&r.id])
                .inc();
        }
        Ok(result)
    }

    /// One time signature (a Merkle root) for everything committed, and
    /// the answers: director metadata where the lock's copy is not current.
    async fn sign_stage(
        &self,
        batch: &mut Batch<'_>,
        planned: Vec<Planned>,
        result: &BatchResult,
        now: i64,
    ) -> anyhow::Result<()> {
        let t = Instant::now();
        let mut accepted = Vec::new();
        for (p, applied) in planned.into_iter().zip(&result.applied) {
            if *applied {
                if let Some(a) = p.assigned {
                    self.metrics
                        .assignments
                        .with_label_values(&[&a.rollout, &a.wave.to_string(), a.delivery])
                        .inc();
                }
                if let Some((rollout, status)) = p.outcome {
                    self.metrics
                        .rollout_outcomes
                        .with_label_values(&[&rollout, status.as_str()])
                        .inc();
                }
                accepted.push(p.accepted);
            } else {
                batch.out[p.accepted.index] = Some(Err(replayed(-1)));
            }
        }
        // Metadata to resend that was not re-signed now: read it back.
        let missing: Vec<&str> = accepted
            .iter()
            .filter(|a| a.include && a.targets.is_none())
            .map(|a| a.device_id.as_str())
            .collect();
        let mut texts = if missing.is_empty() {
            HashMap::new()
        } else {
            self.store.director_texts(&missing).await?
        };
        for a in accepted
            .iter_mut()
            .filter(|a| a.include && a.targets.is_none())
        {
            a.targets = texts.remove(&a.device_id);
        }
        let leaves: Vec<[u8; 32]> = accepted.iter().map(|a| a.leaf).collect();
        let times = self
            .director
            .sign_time(u64::try_from(now.div_euclid(1000)).unwrap_or(0), &leaves)?;
        for (a, time) in accepted.into_iter().zip(times) {
            let targets = match (a.include, a.targets) {
                (true, Some(text)) => Some(RawValue::from_string(text)?),
                (true, None) => anyhow::bail!("director metadata of {} is missing", a.device_id),
                (false, _) => None,
            };
            batch.out[a.index] = Some(Ok(CheckinResponse {
                director_root_version: self.director.root_version(),
                director_targets_version: u64::try_from(a.version).unwrap_or(0),
                director_targets_sha256: a.sha256,
                director_targets: targets,
                time,
            }));
        }
        self.metrics.stage("sign", t);
        Ok(())
    }
}

/// A batch in flight: the submissions, what parsed, and each one's answer
/// once a stage has given it.
struct Batch<'a> {
    subs: &'a [Submission],
    parsed: Vec<Option<Parsed>>,
    out: Vec<Option<AppResult<CheckinResponse>>>,
}

impl<'a> Batch<'a> {
    /// Parse every submission; the malformed ones are answered here.
    fn parse(subs: &'a [Submission]) -> Self {
        let mut out: Vec<Option<AppResult<CheckinResponse>>> =
            (0..subs.len()).map(|_| None).collect();
        let mut parsed = Vec::with_capacity(subs.len());
        for (i, s) in subs.iter().enumerate() {
            match parse(s) {
                Ok(p) => parsed.push(Some(p)),
                Err(e) => {
                    out[i] = Some(Err(e));
                    parsed.push(None);
                }
            }
        }
        Self { subs, parsed, out }
    }

    /// Every answer, in order.
    fn finish(self) -> Vec<AppResult<CheckinResponse>> {
        self.out
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ApiError::Internal(anyhow::anyhow!(
                        "check-in left unanswered"
                    )))
                })
            })
            .collect()
    }
}

/// One planned check-in: its answer-to-be, and what to count once it is
/// committed.
struct Planned {
    accepted: Accepted,
    assigned: Option<NewAssignment>,
    outcome: Option<(String, DeviceStatus)>,
}

fn replayed(last: i64) -> ApiError {
    let message = if last >= 0 {
        format!("counter must be above {last}: this check-in is replayed or stale")
    } else {
        "a newer check-in of this lock was accepted first: this one is stale".to_owned()
    };
    ApiError::conflict("replayed", message)
}
