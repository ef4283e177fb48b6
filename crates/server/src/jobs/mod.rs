//! Where v2 jobs live, behind one trait: this process's memory (one machine; the default) or a
//! Redis shared by several replicas (`--redis-url`). Requests and workers see the same
//! lifecycle from both: a job is submitted (QUEUED), begun by a worker (PROCESSING), and ends
//! COMPLETED with an output or FAILED with an error; its record expires a fixed time after
//! submission.
//!
//! A backend hands a submitted job straight back when this process should run it (memory), or
//! keeps it for whichever replica claims it (Redis). Either way the worker gets a [`Job`] whose
//! [`Lease`] records its outcome; the worker never knows which backend it came from.

mod memory;
mod redis;

use std::path::PathBuf;

use async_trait::async_trait;
use axum::body::Body;
use bytes::Bytes;
use serde::Serialize;
use tokio::time::Instant;
use upres_request::{ImageSource, JobSpec};
use uuid::Uuid;

pub use self::redis::{RedisConfig, RedisJobs};
pub use memory::MemoryJobs;

use crate::auth::{Charge, Settle};
use crate::emulation::JobPlan;
use crate::error::JobError;

/// Bytes read from a file output at a time: each read is a trip to Tokio's blocking pool, and
/// each chunk a write to the socket.
const FILE_CHUNK: usize = 256 << 10;

/// Where a finished output is kept.
#[derive(Debug, Clone)]
pub enum Output {
    Memory(Bytes),
    /// A spooled output, or a cluster's blob.
    File(PathBuf),
}

impl Output {
    /// The PNG as a response body, and its length (a file is streamed in large chunks).
    pub async fn into_body(self) -> std::io::Result<(Body, u64)> {
        let path = match self {
            Output::Memory(bytes) => {
                let length = bytes.len() as u64;
                return Ok((Body::from(bytes), length));
            }
            Output::File(path) => path,
        };
        let file = tokio::fs::File::open(path).await?;
        let length = file.metadata().await?.len();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, FILE_CHUNK);
        Ok((Body::from_stream(stream), length))
    }
}

#[derive(Debug, Clone)]
pub enum JobState {
    Queued,
    Processing,
    Completed(Output),
    Failed(String),
}

impl JobState {
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Queued => "QUEUED",
            JobState::Processing => "PROCESSING",
            JobState::Completed(_) => "COMPLETED",
            JobState::Failed(_) => "FAILED",
        }
    }
}

/// Queue, inference and total time in seconds, as reported in `metrics`; for keys with a
/// balance (load-testing mode) also the cost charged and the balance after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Metrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_credits: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_time: Option<f64>,
}

impl Metrics {
    /// Times from submission, start (if the job started) and end (if it ended).
    pub fn between(
        submitted: Instant,
        started: Option<Instant>,
        finished: Option<Instant>,
    ) -> Self {
        let after = |t: Instant| (t - submitted).as_secs_f64();
        Self::from_offsets(started.map(after), finished.map(after))
    }

    /// Times from the seconds after submission at which the job started and ended.
    pub fn from_offsets(started: Option<f64>, finished: Option<f64>) -> Self {
        let round = |seconds: f64| Some((seconds * 1000.0).round() / 1000.0);
        Metrics {
            cost: None,
            remaining_credits: None,
            queue_time: started.or(finished).and_then(round),
            inference_time: match (started, finished) {
                (Some(s), Some(f)) => round(f - s),
                _ => None,
            },
            total_time: finished.and_then(round),
        }
    }

    /// With the cost charged and the balance after it.
    pub fn charged(self, charge: Option<Charge>) -> Self {
        Metrics {
            cost: charge.map(|c| c.cost),
            remaining_credits: charge.map(|c| c.remaining),
            ..self
        }
    }
}

/// A job as seen by a request.
#[derive(Debug, Clone)]
pub struct JobView {
    pub state: JobState,
    pub metrics: Metrics,
    /// The fault rule that made the job fail (load-testing mode).
    pub fault: Option<String>,
}

/// A v2 job as admission hands it to the backend.
pub struct NewJob {
    pub id: Uuid,
    pub spec: JobSpec,
    pub source: ImageSource,
    pub plan: JobPlan,
    /// Credits held for the call: charged when the job completes, released otherwise.
    pub credits: Option<Box<dyn Settle>>,
}

/// A job for a worker to run: its input still to load, and the lease its outcome goes to.
pub struct Job {
    /// The log span the job's lines go to: its request's (v1) or its own (v2).
    pub span: tracing::Span,
    pub submitted: Instant,
    pub spec: JobSpec,
    pub source: ImageSource,
    pub plan: JobPlan,
    pub lease: Box<dyn Lease>,
}

/// One run of a job by this process: where its start and outcome are recorded.
#[async_trait]
pub trait Lease: Send {
    /// The job starts now; false when it should not run (expired, or its caller has gone).
    async fn begin(&mut self, at: Instant) -> bool;

    /// Completes when nobody wants the outcome any more (a v1 caller gone); never for v2.
    async fn abandoned(&mut self) {
        std::future::pending().await
    }

    /// Renews the lease for as long as the job runs, where a lease can run out.
    fn keep_alive(&self) -> Option<futures::future::BoxFuture<'static, ()>> {
        None
    }

    /// Records the output (and charges the job's credits, if it holds any).
    async fn complete(self: Box<Self>, png: Vec<u8>);

    /// Records the failure; `rule` is the fault rule behind it (load-testing mode).
    async fn fail(self: Box<Self>, error: JobError, rule: Option<String>);

    /// Records that the job never started (shutdown): failed, and not counted as run.
    async fn refuse(self: Box<Self>, error: JobError) {
        self.fail(error, None).await
    }
}

/// A store of v2 jobs.
#[async_trait]
pub trait JobBackend: Send + Sync {
    /// `memory` or `redis`, for /health.
    fn kind(&self) -> &'static str;

    /// Records a QUEUED job. Returns it when this process is to run it now (it then goes to the
    /// local queue); `None` when it waits in the backend for a claim.
    async fn submit(&self, job: NewJob) -> Result<Option<Job>, JobError>;

    /// The job, unless unknown or expired.
    async fn view(&self, id: &Uuid) -> Result<Option<JobView>, JobError>;

    /// Readiness of the store itself (a cluster's Redis must answer).
    async fn check(&self) -> Result<(), JobError> {
        Ok(())
    }

    /// Bytes of outputs held in this process's memory.
    fn memory_used(&self) -> usize {
        0
    }

    /// Jobs on record in this process's memory.
    fn len(&self) -> usize {
        0
    }

    /// A job waiting in the backend for a worker with a free place. `None`: nothing now.
    async fn claim(&self) -> Result<Option<Job>, JobError> {
        Ok(None)
    }

    /// Waits until a job may be there to claim (at most a short while).
    async fn wait_for_work(&self) {
        std::future::pending().await
    }

    /// At shutdown, after the drain deadline: gives the jobs still running here to other
    /// replicas (in memory they die with the process).
    async fn release_running(&self) {}

    /// Stops the backend's background tasks (at shutdown).
    fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn spooled_outputs_are_streamed_in_large_chunks() {
        let spool = tempfile::tempdir().unwrap();
        let path = spool.path().join("output.png");
        std::fs::write(&path, vec![7; 1 << 20]).unwrap();
        let (body, length) = Output::File(path).into_body().await.unwrap();
        assert_eq!(length, 1 << 20);
        let chunks: Vec<usize> = body
            .into_data_stream()
            .map(|chunk| chunk.unwrap().len())
            .collect()
            .await;
        assert_eq!(chunks.iter().sum::<usize>(), 1 << 20);
        assert!(chunks.len() <= 4, "{} chunks", chunks.len());
    }
}
