//! Group commit: batch workers hand their planned writes to one committer,
//! which writes everything waiting in a single transaction. Verification and
//! planning of the next batches go on meanwhile, and one fsync covers every
//! check-in that arrived during the previous one.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::rollouts::Rollout;
use crate::store::Store;
use crate::store::checkins::{BatchResult, CheckinWrite};

struct Job {
    writes: Vec<CheckinWrite>,
    live: Vec<Rollout>,
    now: i64,
    reply: oneshot::Sender<Result<BatchResult, Arc<anyhow::Error>>>,
}

/// Hands write sets to the committer task.
#[derive(Debug, Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("writes", &self.writes.len())
            .finish()
    }
}

impl Committer {
    /// Start the committer over `store`.
    pub fn start(store: Store) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(64);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while let Ok(j) = rx.try_recv() {
                    jobs.push(j);
                }
                let now = jobs.iter().map(|j| j.now).max().unwrap_or(0);
                let mut writes = Vec::new();
                let mut live: Vec<Rollout> = Vec::new();
                let mut sizes = Vec::with_capacity(jobs.len());
                for j in &mut jobs {
                    sizes.push(j.writes.len());
                    writes.append(&mut j.writes);
                    for r in j.live.drain(..) {
                        if !live.iter().any(|l| l.id == r.id) {
                            live.push(r);
                        }
                    }
                }
                let result = store
                    .apply_checkins(&writes, &live, now)
                    .await
                    .map_err(Arc::new);
                // A lock reporting another firmware version changes the
                // fleet's model × version table (cached, store::fleet).
                if let Ok(r) = &result
                    && writes.iter().zip(&r.applied).any(|(w, applied)| {
                        *applied && w.events.iter().any(|(kind, _)| kind == "firmware")
                    })
                {
                    store.fleet_changed();
                }
                let mut offset = 0;
                for (i, (job, size)) in jobs.into_iter().zip(sizes).enumerate() {
                    let part = match &result {
                        Ok(r) => Ok(BatchResult {
                            applied: r.applied[offset..offset + size].to_vec(),
                            // Reported once, with the first batch.
                            auto_paused: if i == 0 {
                                r.auto_paused.clone()
                            } else {
                                Vec::new()
                            },
                        }),
                        Err(e) => Err(Arc::clone(e)),
                    };
                    offset += size;
                    let _ = job.reply.send(part);
                }
            }
        });
        Self { tx }
    }

    /// Commit `writes` (with the whole group waiting at the moment).
    pub async fn commit(
        &self,
        writes: Vec<CheckinWrite>,
        live: Vec<Rollout>,
        now: i64,
    ) -> anyhow::Result<BatchResult> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                writes,
                live,
                now,
                reply,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the committer has stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the committer dropped the batch"))?
            .map_err(|e| anyhow::anyhow!("commit failed: {e:#}"))
    }
}
