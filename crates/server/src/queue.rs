//! One bounded FIFO queue of the jobs this process runs from its own requests (v1, and v2 in
//! memory), shared by v1 and v2. A request takes a queue slot when admitted (429 when none is
//! left) and keeps it until its job starts. The queue knows nothing of HTTP or of where v2 jobs
//! are stored: the workers take its jobs in order (`worker`), and a job's [`Lease`] records the
//! outcome.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use upres_request::{ImageSource, JobSpec};

use crate::emulation::JobPlan;
use crate::error::JobError;
use crate::jobs::{Job, Lease, Metrics};

/// A place in the queue, held from admission until a worker starts the job.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

/// A job of the queue, with its slot.
pub struct Queued {
    pub job: Job,
    pub slot: Slot,
}

/// A v1 job's result.
pub struct Finished {
    pub png: Vec<u8>,
    pub metrics: Metrics,
}

pub struct Queue {
    tx: mpsc::UnboundedSender<Queued>,
    rx: Mutex<mpsc::UnboundedReceiver<Queued>>,
    slots: Arc<Semaphore>,
    depth: usize,
    /// Jobs that may be PROCESSING at once, for Retry-After.
    capacity: u32,
    closed: AtomicBool,
    /// Moving average of job run time, in milliseconds, for Retry-After.
    average_run_ms: AtomicU64,
}

impl Queue {
    pub fn new(depth: u32, capacity: u32) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Queue {
            tx,
            rx: Mutex::new(rx),
            slots: Arc::new(Semaphore::new(depth as usize)),
            depth: depth as usize,
            capacity,
            closed: AtomicBool::new(false),
            average_run_ms: AtomicU64::new(0),
        }
    }

    /// Takes a queue slot, or answers 429 (503 while shutting down).
    pub fn admit(&self) -> Result<Slot, JobError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(JobError::ShuttingDown);
        }
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| JobError::QueueFull {
                depth: self.depth,
                retry_after: self.retry_after(),
            })?;
        Ok(Slot { _permit: permit })
    }

    /// Queues a job; at shutdown it is refused at once.
    pub async fn push(&self, job: Job, slot: Slot) {
        if let Err(mpsc::error::SendError(queued)) = self.tx.send(Queued { job, slot }) {
            queued.job.lease.refuse(JobError::ShuttingDown).await;
        }
    }

    /// Runs a v1 job and waits for it. Dropping the future gives the job up.
    pub async fn run(
        &self,
        slot: Slot,
        spec: JobSpec,
        source: ImageSource,
        plan: JobPlan,
    ) -> Result<Finished, JobError> {
        let (reply, result) = oneshot::channel();
        let submitted = Instant::now();
        let job = Job {
            span: tracing::Span::current(),
            submitted,
            spec,
            source,
            plan,
            lease: Box::new(Waiting {
                reply,
                submitted,
                started: None,
            }),
        };
        self.push(job, slot).await;
        result.await.unwrap_or(Err(JobError::ShuttingDown))
    }

    /// The oldest job; `None` once the queue is closed and empty.
    pub async fn next(&self) -> Option<Queued> {
        self.rx.lock().await.recv().await
    }

    /// Shutdown: admits nothing more; the jobs left are refused.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut rx = self.rx.lock().await;
        rx.close();
        while let Ok(queued) = rx.try_recv() {
            queued.job.lease.refuse(JobError::ShuttingDown).await;
        }
    }

    /// Jobs admitted and not started.
    pub fn waiting(&self) -> usize {
        self.depth - self.slots.available_permits()
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Counts a job's run time into the average.
    pub fn record_run(&self, took: Duration) {
        let took = took.as_millis() as u64;
        let _ = self
            .average_run_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == 0 { took } else { (avg * 7 + took) / 8 })
            });
    }

    /// Seconds until a slot is likely free: the queue's worth of average job time.
    fn retry_after(&self) -> u64 {
        let per_job = self.average_run_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let estimate = per_job * self.depth as f64 / f64::from(self.capacity);
        (estimate.ceil() as u64).clamp(1, 600)
    }
}

/// A v1 job's lease: the request waiting for it. When it has gone (client disconnected,
/// deadline passed) the job is skipped, or cut short in its emulated latency.
struct Waiting {
    reply: oneshot::Sender<Result<Finished, JobError>>,
    submitted: Instant,
    started: Option<Instant>,
}

#[async_trait]
impl Lease for Waiting {
    async fn begin(&mut self, at: Instant) -> bool {
        self.started = Some(at);
        !self.reply.is_closed()
    }

    async fn abandoned(&mut self) {
        self.reply.closed().await
    }

    async fn complete(self: Box<Self>, png: Vec<u8>) {
        crate::metrics::job_finished("v1", true);
        let metrics = Metrics::between(self.submitted, self.started, Some(Instant::now()));
        let _ = self.reply.send(Ok(Finished { png, metrics }));
    }

    async fn fail(self: Box<Self>, error: JobError, _rule: Option<String>) {
        if self.started.is_some() {
            crate::metrics::job_finished("v1", false);
        }
        let _ = self.reply.send(Err(error));
    }
}
