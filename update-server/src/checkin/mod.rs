//! The check-in pipeline: `POST /v1/devices/{id}/check-in` hands each
//! request to a pool of workers; a worker takes every request waiting (up to
//! `batch_max`) and handles them together:
//!
//! 1. parse and check each body ([`parse`]);
//! 2. load the locks: from memory with SQLite (the process owns the file;
//!    rows are written through on commit), in one query with PostgreSQL;
//! 3. verify each device signature strictly (`verify_strict`; a batch
//!    equation would accept signatures a lone check refuses, see
//!    [`pipeline`]);
//! 4. reconcile each report, decide each assignment ([`plan`]), re-signing a
//!    lock's director metadata only when its assignment changed;
//! 5. commit every accepted check-in in one transaction (the counter check is
//!    a compare-and-swap in the `UPDATE`: the row must still hold the counter
//!    the check-in was planned from, so one signed check-in counts once), pausing rollouts that crossed their threshold —
//!    through one committer ([`commit`]) that merges the batches of all
//!    workers waiting at that moment into the same transaction;
//! 6. sign one time over the Merkle root of the batch's leaves;
//! 7. answer everyone.
//!
//! Under light load a batch is one request and latency is one round of the
//! above; under heavy load batches grow, and the per-check-in cost of the
//! database, the time signature and the verification falls.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::{ApiError, AppResult};
use crate::wire::CheckinResponse;

pub mod commit;
pub mod parse;
pub mod pipeline;
pub mod plan;

pub use parse::Submission;
pub use pipeline::Pipeline;

type Job = (Submission, oneshot::Sender<AppResult<CheckinResponse>>);

/// Hands check-ins to the batch workers.
#[derive(Debug, Clone)]
pub struct CheckinService {
    tx: mpsc::Sender<Job>,
}

impl CheckinService {
    /// Start `workers` batch workers over `pipeline`.
    pub fn start(pipeline: Arc<Pipeline>, workers: usize, batch_max: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(batch_max.saturating_mul(workers).max(64) * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers {
            let rx = Arc::clone(&rx);
            let pipeline = Arc::clone(&pipeline);
            tokio::spawn(async move {
                loop {
                    let mut jobs: Vec<Job> = Vec::with_capacity(batch_max);
                    {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { break };
                        jobs.push(first);
                        while jobs.len() < batch_max {
                            match rx.try_recv() {
                                Ok(job) => jobs.push(job),
                                Err(_) => break,
                            }
                        }
                    }
                    let (subs, replies): (Vec<Submission>, Vec<_>) = jobs.into_iter().unzip();
                    let results = pipeline.process(subs).await;
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result);
                    }
                }
            });
        }
        Self { tx }
    }

    /// Submit one check-in and wait for its answer.
    pub async fn submit(&self, sub: Submission) -> AppResult<CheckinResponse> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((sub, reply))
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        rx.await
            .map_err(|_| ApiError::unavailable("the check-in was not processed"))?
    }
}
