//! The workers: they take jobs from the local queue in order, and from the job backend when it
//! shares work between replicas (only with a free place), load each job's input (the one place
//! image URLs are downloaded, SSRF-guarded by `fetch`), and run it.
//!
//! A job starts (PROCESSING) when one of `capacity` places is free, then runs its model stage
//! (decode, checks, moderation, the model) on one of `workers` engine workers: a blocking
//! thread, under `catch_unwind` so a panic fails that job only. Without emulation capacity
//! equals workers. Its finish (encoding the output PNG) runs after, on a blocking thread of its
//! own, holding one of `workers` encoders instead of its place: the next job starts while it
//! encodes, so up to `capacity + workers` jobs are PROCESSING. A job with an emulated latency
//! instead keeps its place, encodes in it, and waits out the rest of its target time.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use upres_request::JobSpec;

use crate::error::JobError;
use crate::fetch::Fetcher;
use crate::jobs::{Job, JobBackend};
use crate::queue::{Queue, Queued};
use crate::upscaler::{Finish, Upscaler};

/// How many jobs run at once.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// Engine workers (and encoders).
    pub workers: u32,
    /// Jobs PROCESSING at once (emulated capacity; `workers` without emulation).
    pub capacity: u32,
}

/// What runs jobs: places, engine workers, encoders, and the counters.
pub struct Workers {
    config: WorkerConfig,
    places: Arc<Semaphore>,
    engine: Semaphore,
    encoders: Arc<Semaphore>,
    stop: CancellationToken,
    /// Jobs started and not finished.
    running: AtomicUsize,
    queue: Arc<Queue>,
    backend: Arc<dyn JobBackend>,
    upscaler: Arc<dyn Upscaler>,
    fetcher: Arc<Fetcher>,
}

impl Workers {
    /// Starts taking jobs from the queue and the backend.
    pub fn start(
        config: WorkerConfig,
        queue: Arc<Queue>,
        backend: Arc<dyn JobBackend>,
        upscaler: Arc<dyn Upscaler>,
        fetcher: Arc<Fetcher>,
    ) -> Arc<Self> {
        let workers = Arc::new(Workers {
            config,
            places: Arc::new(Semaphore::new(config.capacity as usize)),
            engine: Semaphore::new(config.workers as usize),
            encoders: Arc::new(Semaphore::new(config.workers as usize)),
            stop: CancellationToken::new(),
            running: AtomicUsize::new(0),
            queue,
            backend,
            upscaler,
            fetcher,
        });
        tokio::spawn(workers.clone().take_queued());
        tokio::spawn(workers.clone().take_claims());
        workers
    }

    pub fn workers(&self) -> u32 {
        self.config.workers
    }

    /// Jobs that may be PROCESSING at once.
    pub fn capacity(&self) -> u32 {
        self.config.capacity
    }

    /// Jobs PROCESSING now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Shutdown: no job starts any more, the queue admits nothing and refuses what it holds;
    /// waits until the running jobs finish or `deadline` passes. Returns whether they all did.
    pub async fn close(&self, deadline: Instant) -> bool {
        self.stop.cancel();
        self.queue.close().await;
        // Every place (no job starts after that), then every encoder (the jobs still encoding).
        let finished = async {
            let _places = self.places.acquire_many(self.config.capacity).await;
            let _encoders = self.encoders.acquire_many(self.config.workers).await;
        };
        tokio::time::timeout_at(deadline, finished).await.is_ok()
    }

    /// Starts the queue's jobs in order; each loads its input, then waits for a place.
    async fn take_queued(self: Arc<Self>) {
        loop {
            let queued = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                queued = self.queue.next() => match queued {
                    Some(queued) => queued,
                    None => return,
                },
            };
            let span = queued.job.span.clone();
            tokio::spawn(self.clone().run_queued(queued).instrument(span));
        }
    }

    async fn run_queued(self: Arc<Self>, queued: Queued) {
        let Queued { mut job, slot } = queued;
        let loaded = tokio::select! {
            biased;
            () = self.stop.cancelled() => None,
            () = job.lease.abandoned() => return,
            loaded = self.fetcher.load(job.source.clone()) => Some(loaded),
        };
        let input = match loaded {
            None => return job.lease.refuse(JobError::ShuttingDown).await,
            Some(Err(err)) => return job.lease.fail(err, None).await,
            Some(Ok(input)) => input,
        };
        // The job keeps its queue slot until it starts.
        let place = tokio::select! {
            biased;
            () = self.stop.cancelled() => None,
            () = job.lease.abandoned() => return,
            place = self.places.clone().acquire_owned() => place.ok(),
        };
        let Some(place) = place else {
            return job.lease.refuse(JobError::ShuttingDown).await;
        };
        drop(slot);
        self.execute(job, input, place).await;
    }

    /// Whenever a place is free, takes one job from the backend (where it shares work) and
    /// runs it; with nothing to take, waits for new work without holding the place.
    async fn take_claims(self: Arc<Self>) {
        let mut failing = false;
        loop {
            let place = tokio::select! {
                () = self.stop.cancelled() => return,
                place = self.places.clone().acquire_owned() => place.expect("the place semaphore is never closed"),
            };
            match self.backend.claim().await {
                Ok(Some(job)) => {
                    failing = false;
                    let span = job.span.clone();
                    tokio::spawn(self.clone().run_claimed(job, place).instrument(span));
                }
                Ok(None) => {
                    failing = false;
                    drop(place);
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = self.backend.wait_for_work() => {}
                    }
                }
                Err(err) => {
                    drop(place);
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(%err, "cannot take jobs from the job store; retrying");
                    }
                    tokio::select! {
                        () = self.stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn run_claimed(self: Arc<Self>, job: Job, place: OwnedSemaphorePermit) {
        match self.fetcher.load(job.source.clone()).await {
            Ok(input) => self.execute(job, input, place).await,
            Err(err) => job.lease.fail(err, None).await,
        }
    }

    /// Runs a job that has its place, and records its outcome.
    async fn execute(&self, job: Job, input: Bytes, place: OwnedSemaphorePermit) {
        let Job {
            submitted,
            spec,
            plan,
            mut lease,
            ..
        } = job;
        let started = Instant::now();
        if !lease.begin(started).await {
            return;
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        let _heartbeat = lease
            .keep_alive()
            .map(|renew| AbortOnDrop(tokio::spawn(renew.in_current_span())));
        // Held until the outcome is recorded (shutdown waits for them), unless the place is
        // handed on to the next job while this one encodes.
        let mut place = Some(place);
        let mut encoder = None;
        let outcome = match plan.injected() {
            Some(error) => Err(error),
            None => match self.model_stage(input, spec).await {
                Ok(finish) => {
                    if !plan.holds_place() {
                        let permit = self.encoders.clone().acquire_owned().await;
                        encoder = Some(permit.expect("the encoder semaphore is never closed"));
                        drop(place.take());
                    }
                    blocking(move || finish.run()).await
                }
                Err(err) => Err(err),
            },
        };
        if plan.holds_place() {
            // The rest of the target time; cut short by shutdown or a v1 caller gone.
            tokio::select! {
                () = plan.wait_out(started) => {}
                () = self.stop.cancelled() => {}
                () = lease.abandoned() => {}
            }
        }
        let finished = Instant::now();
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.queue.record_run(finished - started);
        metrics::histogram!("upres_job_queue_seconds").record((started - submitted).as_secs_f64());
        metrics::histogram!("upres_job_seconds").record((finished - started).as_secs_f64());
        match outcome {
            Ok(png) => lease.complete(png).await,
            Err(err) => lease.fail(err, plan.rule()).await,
        }
        drop((place, encoder));
    }

    /// Runs the job's model stage on an engine worker.
    async fn model_stage(&self, input: Bytes, spec: JobSpec) -> Result<Finish, JobError> {
        let _worker = self
            .engine
            .acquire()
            .await
            .expect("the worker semaphore is never closed");
        let upscaler = self.upscaler.clone();
        blocking(move || upscaler.run(&input, &spec)).await
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` on a blocking thread, catching panics.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(AssertUnwindSafe(work))
            .unwrap_or_else(|panic| Err(JobError::Panic(panic_message(&*panic))))
    })
    .await
    .unwrap_or_else(|err| Err(JobError::Panic(err.to_string())))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
