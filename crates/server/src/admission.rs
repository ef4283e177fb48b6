//! Admission: what a model call passes between its gate and the queue. Its fields are checked
//! against the model (400), its `image` field parsed (400), its cost reserved from the caller's
//! balance (406), and a queue slot taken (429, or 503 at shutdown). Then a v1 call runs and is
//! charged when it completes; a v2 job goes to the job backend, which holds its credits until
//! it ends, and to the local queue when this process runs it.

use std::sync::Arc;
use std::time::Duration;

use upres_request::{ImageSource, JobSpec, Submission};
use uuid::Uuid;

use crate::auth::{Charge, Hold};
use crate::emulation::{Emulation, Event, JobPlan, Kind, Pass};
use crate::error::{JobError, ServerError};
use crate::jobs::{JobBackend, NewJob};
use crate::queue::{Finished, Queue, Slot};
use crate::upscaler::Upscaler;

pub struct Admission {
    upscaler: Arc<dyn Upscaler>,
    queue: Arc<Queue>,
    jobs: Arc<dyn JobBackend>,
    emulation: Arc<Emulation>,
    sync_deadline: Duration,
}

/// A call admitted: its job, its credits and its queue slot.
pub struct Admitted {
    spec: JobSpec,
    plan: JobPlan,
    source: ImageSource,
    credits: Option<Hold>,
    slot: Slot,
}

impl Admitted {
    /// Refuses an inline image that is not PNG, JPEG or WebP at once (Bria's 415); a URL's
    /// image is checked when it is fetched. Dropping the call frees its place and credits.
    pub fn check_inline_format(&self) -> Result<(), ServerError> {
        if let ImageSource::Inline(bytes) = &self.source {
            upres_engine::codec::supported_format(bytes).map_err(JobError::from)?;
        }
        Ok(())
    }
}

impl Admission {
    pub fn new(
        upscaler: Arc<dyn Upscaler>,
        queue: Arc<Queue>,
        jobs: Arc<dyn JobBackend>,
        emulation: Arc<Emulation>,
        sync_deadline: Duration,
    ) -> Self {
        Admission {
            upscaler,
            queue,
            jobs,
            emulation,
            sync_deadline,
        }
    }

    /// Checks the call and takes what it needs, or says why not.
    pub fn admit(&self, pass: Pass, submission: Submission) -> Result<Admitted, ServerError> {
        self.upscaler.validate(&submission.spec)?;
        let source = ImageSource::parse(&submission.image).map_err(JobError::from)?;
        let credits = self.reserve(&pass)?;
        let slot = self.queue.admit()?;
        Ok(Admitted {
            spec: submission.spec,
            plan: pass.plan,
            source,
            credits,
            slot,
        })
    }

    /// Reserves the call's cost from the caller's balance (406 when short). `None` for callers
    /// without a balance.
    fn reserve(&self, pass: &Pass) -> Result<Option<Hold>, ServerError> {
        let cost = self.emulation.cost.of(pass.plan.latency);
        pass.caller.reserve(cost).map_err(|balance| {
            self.emulation.stats.count(Event {
                route: pass.route,
                kind: Kind::InsufficientCredits,
                status: Some(406),
                rule: None,
                key: pass.caller.name.clone(),
            });
            ServerError::InsufficientCredits {
                remaining: balance.total(),
            }
        })
    }

    /// v1: runs the job within the sync deadline and charges it; past the deadline the job is
    /// dropped, and with it its credits.
    pub async fn run(&self, admitted: Admitted) -> Result<(Finished, Option<Charge>), ServerError> {
        // Fault rules fail or crash v2 jobs only; a v1 call keeps its latency.
        let plan = JobPlan {
            latency: admitted.plan.latency,
            fault: None,
        };
        let work = self
            .queue
            .run(admitted.slot, admitted.spec, admitted.source, plan);
        let finished = tokio::time::timeout(self.sync_deadline, work)
            .await
            .map_err(|_| ServerError::DeadlineExceeded(self.sync_deadline))??;
        Ok((finished, admitted.credits.map(Hold::settle)))
    }

    /// v2: records the job (QUEUED) and queues it here when this process runs it.
    pub async fn submit(&self, admitted: Admitted) -> Result<Uuid, ServerError> {
        let id = Uuid::new_v4();
        let job = NewJob {
            id,
            spec: admitted.spec,
            source: admitted.source,
            plan: admitted.plan,
            credits: admitted.credits.map(|hold| Box::new(hold) as _),
        };
        if let Some(job) = self.jobs.submit(job).await? {
            self.queue.push(job, admitted.slot).await;
        }
        tracing::info!(job_id = %id, "job submitted");
        Ok(id)
    }
}
