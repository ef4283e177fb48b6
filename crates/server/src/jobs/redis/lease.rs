//! One run of a claimed job by this replica: the fence (owner and attempt) of its heartbeats,
//! its outcome, and its release at shutdown.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;
use uuid::Uuid;

use super::blobs::BlobStore;
use super::{unavailable, RedisJobs, GROUP};
use crate::error::JobError;
use crate::jobs::backend::Lease;

/// What fences a run's later steps.
#[derive(Debug, Clone)]
pub struct Claim {
    id: Uuid,
    entry: String,
    attempt: String,
}

impl Claim {
    pub fn new(id: Uuid, entry: &str, attempt: &str) -> Self {
        Claim {
            id,
            entry: entry.to_string(),
            attempt: attempt.to_string(),
        }
    }

    fn attempt(&self) -> u32 {
        self.attempt.parse().unwrap_or(0)
    }
}

pub struct RedisLease {
    jobs: Arc<RedisJobs>,
    claim: Claim,
}

impl RedisLease {
    pub fn new(jobs: Arc<RedisJobs>, claim: Claim) -> Self {
        RedisLease { jobs, claim }
    }

    pub fn attempt(&self) -> u32 {
        self.claim.attempt()
    }

    /// Records the job FAILED (with the fault rule that failed it, if any).
    pub async fn record_failure(&self, error: &str, rule: Option<&str>) -> Result<bool, JobError> {
        let recorded = fenced(
            &self.jobs,
            "fail",
            &self.claim,
            &[error, rule.unwrap_or("")],
        )
        .await;
        self.finished(&recorded).await;
        recorded
    }

    /// This run has ended with `recorded` (its outcome recorded, stale, or not known while Redis
    /// is away: then the run stays on the list to release at shutdown). Only a recorded outcome
    /// ends the job's need for its input: after a stale run, the job's current run may still be
    /// lost and need it again.
    async fn finished(&self, recorded: &Result<bool, JobError>) {
        if let Ok(recorded) = recorded {
            self.jobs.running.remove(&self.claim.id);
            if *recorded {
                let input = BlobStore::input_key(&self.claim.id);
                self.jobs.blobs.delete(&input).await;
            }
        }
    }
}

#[async_trait]
impl Lease for RedisLease {
    async fn begin(&mut self, _at: Instant) -> bool {
        // The claim script started it, with Redis's clock.
        true
    }

    fn keep_alive(&self) -> Option<futures::future::BoxFuture<'static, ()>> {
        let (jobs, claim) = (self.jobs.clone(), self.claim.clone());
        Some(Box::pin(async move {
            loop {
                tokio::time::sleep(jobs.config.lease / 3).await;
                match fenced(&jobs, "heartbeat", &claim, &[]).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job_id = %claim.id, "lost the lease: another replica runs this job now");
                        return;
                    }
                    Err(err) => tracing::warn!(job_id = %claim.id, %err, "heartbeat failed"),
                }
            }
        }))
    }

    /// Stores the output and records the job COMPLETED, unless this run lost the job; then its
    /// output is deleted.
    async fn complete(self: Box<Self>, png: Vec<u8>) {
        let claim = &self.claim;
        let key = BlobStore::output_key(&claim.id, claim.attempt());
        let recorded = match self.jobs.blobs.put(&key, &png).await {
            Err(err) => Err(JobError::from(err)),
            Ok(()) => fenced(&self.jobs, "complete", claim, &[&key]).await,
        };
        if !matches!(recorded, Ok(true)) {
            self.jobs.blobs.delete(&key).await;
        }
        self.finished(&recorded).await;
        crate::metrics::job_finished("v2", matches!(recorded, Ok(true)));
        match recorded {
            // Charged at once when this replica admitted the job (else by the one that did).
            Ok(true) => self.jobs.settle(&claim.id, true).await,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(%err, "could not record the output: the job is retried after its lease")
            }
        }
    }

    async fn fail(self: Box<Self>, error: JobError, rule: Option<String>) {
        crate::metrics::job_finished("v2", false);
        tracing::info!(error = %error, "job failed");
        let recorded = self
            .record_failure(&error.to_string(), rule.as_deref())
            .await;
        if let Err(err) = recorded {
            tracing::warn!(%err, "could not record the failure: the job is retried after its lease");
        }
    }
}

/// At shutdown: every job still running here goes back to the stream for another replica.
pub async fn release_running(jobs: &RedisJobs) {
    let claims: Vec<Claim> = jobs.running.iter().map(|c| c.value().clone()).collect();
    for claim in claims {
        match fenced(jobs, "release", &claim, &[]).await {
            Ok(true) => {
                tracing::info!(job_id = %claim.id, "released a running job for another replica")
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(job_id = %claim.id, %err, "could not release a running job; it is taken over after the lease")
            }
        }
        jobs.running.remove(&claim.id);
    }
}

/// A step fenced by this run's owner and attempt.
async fn fenced(
    jobs: &RedisJobs,
    name: &str,
    claim: &Claim,
    extra: &[&str],
) -> Result<bool, JobError> {
    let mut redis = jobs.redis.clone();
    let mut invocation = jobs.script(name).prepare_invoke();
    invocation
        .key(jobs.job_key(&claim.id))
        .key(&jobs.stream)
        .arg(GROUP)
        .arg(&claim.entry)
        .arg(&jobs.consumer)
        .arg(&claim.attempt);
    for arg in extra {
        invocation.arg(*arg);
    }
    let done: i64 = invocation
        .invoke_async(&mut redis)
        .await
        .map_err(unavailable)?;
    if done == 0 && name != "heartbeat" {
        tracing::warn!(job_id = %claim.id, step = name, "stale run: another replica took the job over");
    }
    Ok(done == 1)
}
