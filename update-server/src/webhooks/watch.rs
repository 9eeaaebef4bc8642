//! Events that come from time passing rather than from a request: a wave
//! coming into force when the one before has soaked, a rollout completing,
//! a minute of failed updates, repository metadata about to expire. Every
//! replica looks every `webhooks.watch_interval`; each event is written
//! once — a unique dedupe key per wave, rollout and metadata version, and a
//! compare-and-swap on the failure cursor — however many replicas notice.

use std::collections::HashSet;

use serde_json::{Value, json};
use sqlx::Row;
use tokio::sync::watch;

use crate::rollouts::{Rollout, RolloutState, version};
use crate::state::AppState;
use crate::webhooks::Event;
use crate::webhooks::deliver::WAKE;

/// The kv key holding the end (Unix ms) of the last minute whose failed
/// updates were reported.
pub const FAILURE_CURSOR: &str = "webhooks.failures_until";

/// Statuses that end a lock's part in a rollout.
const DONE: [&str; 3] = ["confirmed", "failed", "rolled_back"];

/// Look until `stop` changes.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(state.config.webhooks.watch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if let Err(e) = once(&state, &mut seen).await {
            tracing::warn!(error = %e, "webhook watcher");
        }
    }
}

/// One look. `seen`: dedupe keys this process already wrote or found
/// written (so they are not tried again every tick).
pub async fn once(state: &AppState, seen: &mut HashSet<String>) -> anyhow::Result<()> {
    let now = state.clock.now_ms();
    let mut wrote = false;
    for r in state.store.live_rollouts().await? {
        for ev in rollout_events(state, &r, now).await? {
            wrote |= write_once(state, ev, seen, now).await?;
        }
    }
    wrote |= failed_updates(state, now).await?;
    for ev in expiring(state).await? {
        wrote |= write_once(state, ev, seen, now).await?;
    }
    if wrote {
        WAKE.notify_waiters();
    }
    Ok(())
}

async fn write_once(
    state: &AppState,
    ev: Event,
    seen: &mut HashSet<String>,
    now: i64,
) -> anyhow::Result<bool> {
    let Some(key) = ev.dedupe_key.clone() else {
        return Ok(state.store.enqueue_event(&ev, None, now).await?.is_some());
    };
    if seen.contains(&key) {
        return Ok(false);
    }
    let id = state.store.enqueue_event(&ev, None, now).await?;
    seen.insert(key);
    Ok(id.is_some())
}

/// Wave starts and completions, and the rollout's completion.
async fn rollout_events(state: &AppState, r: &Rollout, now: i64) -> anyhow::Result<Vec<Event>> {
    // A paused rollout's waves stopped where it paused; they may have
    // started before anyone looked (a rollout that pauses itself at once).
    if !matches!(r.state, RolloutState::Running | RolloutState::Paused) {
        return Ok(vec![]);
    }
    let Some((current, started)) = r.effective_wave(now) else {
        return Ok(vec![]);
    };
    let counts = state.store.wave_counts(&r.id).await?;
    let wave_counts = |w: usize| -> Value {
        let mut m = serde_json::Map::new();
        for c in counts.iter().filter(|c| c.wave == w as i64) {
            let n = m.get(&c.status).and_then(Value::as_i64).unwrap_or(0);
            m.insert(c.status.clone(), json!(n + c.count));
        }
        Value::Object(m)
    };
    let base = |w: usize| {
        json!({
            "rollout_id": r.id, "name": r.name, "target": r.target, "wave": w,
            "share": r.spec.waves.get(w).map(|x| x.share),
        })
    };
    let mut out = Vec::new();
    // Start times of earlier waves follow from the soaks.
    let mut starts = vec![started; current + 1];
    for w in (0..current).rev() {
        let soak = i64::try_from(r.spec.waves[w].min_soak_secs)
            .unwrap_or(0)
            .saturating_mul(1000);
        starts[w] = starts[w + 1].saturating_sub(soak);
    }
    for (w, at) in starts.iter().enumerate() {
        let mut data = base(w);
        data["started_at"] = json!(crate::clock::rfc3339(*at));
        out.push(Event::new("wave.started", data).once(format!("wave.started:{}:{w}", r.id)));
        if w < current {
            let mut data = base(w);
            data["devices"] = wave_counts(w);
            out.push(
                Event::new("wave.completed", data).once(format!("wave.completed:{}:{w}", r.id)),
            );
        }
    }
    if r.state == RolloutState::Running
        && current + 1 == r.spec.waves.len()
        && complete(state, r, &counts).await?
    {
        let mut data = base(current);
        data["devices"] = wave_counts(current);
        out.push(
            Event::new("wave.completed", data).once(format!("wave.completed:{}:{current}", r.id)),
        );
        let mut totals = serde_json::Map::new();
        for c in &counts {
            let n = totals.get(&c.status).and_then(Value::as_i64).unwrap_or(0);
            totals.insert(c.status.clone(), json!(n + c.count));
        }
        out.push(
            Event::new(
                "rollout.completed",
                json!({
                    "rollout_id": r.id, "name": r.name, "target": r.target,
                    "successes": r.successes, "failures": r.failures, "devices": totals,
                }),
            )
            .once(format!("rollout.completed:{}", r.id)),
        );
    }
    Ok(out)
}

/// Whether a running rollout in its last wave is complete: some lock took
/// part, every lock it assigned has finished, and — when the last wave
/// takes every lock (share 1, no group filter) — no lock of the model still
/// runs a version it would update, other than the ones that failed it.
/// (The same rule `nightlatch rollout show --watch` applies.)
async fn complete(
    state: &AppState,
    r: &Rollout,
    counts: &[crate::store::rollouts::WaveCount],
) -> anyhow::Result<bool> {
    let total: i64 = counts.iter().map(|c| c.count).sum();
    let done: i64 = counts
        .iter()
        .filter(|c| DONE.contains(&c.status.as_str()))
        .map(|c| c.count)
        .sum();
    if total == 0 || done < total {
        return Ok(false);
    }
    let failed: i64 = counts
        .iter()
        .filter(|c| c.status == "failed" || c.status == "rolled_back")
        .map(|c| c.count)
        .sum();
    let takes_all = r.spec.waves.last().is_some_and(|w| w.share >= 1.0) && r.spec.groups.is_empty();
    if !takes_all {
        return Ok(true);
    }
    let Some(target) = version::order(&r.target_version) else {
        return Ok(true);
    };
    let left: i64 = state
        .store
        .version_counts(Some(&r.hardware_model))
        .await?
        .iter()
        .filter(|v| {
            v.firmware_version.as_deref().is_some_and(|s| {
                version::order(s).is_some_and(|o| o < target)
                    && (r.spec.from_versions.is_empty()
                        || r.spec.from_versions.iter().any(|f| f == s))
            })
        })
        .map(|v| v.count)
        .sum();
    Ok(left <= failed)
}

/// One `device.update_failed` per window (`webhooks.failure_batch_window`,
/// a minute by default) that had failed or rolled-back updates, written
/// with the advance of the cursor (compare-and-swap: one replica wins).
async fn failed_updates(state: &AppState, now: i64) -> anyhow::Result<bool> {
    let window = i64::try_from(state.config.webhooks.failure_batch_window.as_millis())
        .unwrap_or(60_000)
        .max(1);
    let end = now.div_euclid(window) * window;
    let store = &state.store;
    let Some(cursor) = store.kv_get(FAILURE_CURSOR).await? else {
        // First look: report from now on, not the history before webhooks.
        sqlx::query(
            "INSERT INTO kv (k, v, updated_at) VALUES ($1, $2, $3) ON CONFLICT (k) DO NOTHING",
        )
        .bind(FAILURE_CURSOR)
        .bind(end.to_string())
        .bind(now)
        .execute(store.pool())
        .await?;
        return Ok(false);
    };
    let from: i64 = cursor.parse().unwrap_or(end);
    if from >= end {
        return Ok(false);
    }
    let mut tx = store.pool().begin().await?;
    let moved = sqlx::query("UPDATE kv SET v = $1, updated_at = $2 WHERE k = $3 AND v = $4")
        .bind(end.to_string())
        .bind(now)
        .bind(FAILURE_CURSOR)
        .bind(&cursor)
        .execute(&mut *tx)
        .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    let rows = sqlx::query(
        "SELECT rd.rollout_id, rd.device_id, rd.status, rd.reason, rd.updated_at, r.target FROM rollout_devices rd \
         JOIN rollouts r ON r.id = rd.rollout_id \
         WHERE rd.status IN ('failed', 'rolled_back') AND rd.updated_at >= $1 AND rd.updated_at < $2 \
         ORDER BY rd.updated_at, rd.device_id LIMIT 1001",
    )
    .bind(from)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    let mut wrote = false;
    if !rows.is_empty() {
        let truncated = rows.len() > 1000;
        let locks: Vec<Value> = rows
            .iter()
            .take(1000)
            .map(|r| {
                Ok(json!({
                    "device_id": r.try_get::<String, _>("device_id")?,
                    "rollout_id": r.try_get::<String, _>("rollout_id")?,
                    "target": r.try_get::<String, _>("target")?,
                    "status": r.try_get::<String, _>("status")?,
                    "reason": r.try_get::<Option<String>, _>("reason")?,
                    "at": crate::clock::rfc3339(r.try_get::<i64, _>("updated_at")?),
                }))
            })
            .collect::<anyhow::Result<_>>()?;
        let ev = Event::new(
            "device.update_failed",
            json!({
                "from": crate::clock::rfc3339(from), "until": crate::clock::rfc3339(end),
                "count": locks.len(), "truncated": truncated, "devices": locks,
            }),
        );
        wrote = crate::store::webhooks::enqueue(&mut tx, &ev, None, now)
            .await?
            .is_some();
    }
    tx.commit().await?;
    Ok(wrote)
}

/// `repo.metadata_expiring` for every role of either repository that
/// warns, once per role and metadata version.
async fn expiring(state: &AppState) -> anyhow::Result<Vec<Event>> {
    let days = state.config.webhooks.expiry_warning_days;
    let report = crate::routes::repo_health::report(state, days)
        .await
        .map_err(|e| anyhow::anyhow!("repository health: {e:?}"))?;
    let mut out = Vec::new();
    for repo in report["repositories"].as_array().into_iter().flatten() {
        let name = repo["repository"].as_str().unwrap_or("");
        for role in repo["roles"].as_array().into_iter().flatten() {
            // Director targets are signed per lock as they are served: no
            // single version to warn about.
            let Some(v) = role["version"].as_u64() else {
                continue;
            };
            if role["warning"] != json!(true) {
                continue;
            }
            let r = role["role"].as_str().unwrap_or("");
            out.push(
                Event::new(
                    "repo.metadata_expiring",
                    json!({
                        "repository": name, "role": r, "version": v,
                        "expires": role["expires"], "expires_in_s": role["expires_in_s"],
                        "online": role["online"],
                    }),
                )
                .once(format!("repo.expiring:{name}:{r}:{v}")),
            );
        }
    }
    Ok(out)
}
