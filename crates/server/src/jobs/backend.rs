//! What a backend is: the trait a job store implements, the job admission hands it, and the
//! job and lease a worker gets back.

use async_trait::async_trait;
use tokio::time::Instant;
use upres_request::{ImageSource, JobSpec};
use uuid::Uuid;

use super::view::JobView;
use crate::auth::Settle;
use crate::emulation::JobPlan;
use crate::error::JobError;

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
