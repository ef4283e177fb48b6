//! One bounded FIFO queue, shared by v1 and v2, feeding a fixed number of workers.
//!
//! A request takes a queue slot when admitted (429 when none is left) and keeps it while its
//! image downloads and while it waits; the slot frees when the job starts. A job starts
//! (PROCESSING) when one of `capacity` places is free, then runs on one of `workers` engine
//! workers: a blocking thread, under `catch_unwind` so a panic fails that job only. Without
//! emulation capacity equals workers. With an emulated latency the job then waits out the rest
//! of its target time, keeping its place but not its engine worker.
//!
//! A job's model stage (decode, checks, moderation, the model) holds the engine worker; its
//! finish (encoding the output PNG) runs after, on a blocking thread of its own. Unless the job
//! has an emulated latency to wait out, it then holds one of `workers` encoders instead of its
//! place: the next job starts while it encodes, so up to `capacity + workers` jobs are
//! PROCESSING, and at most `workers` outputs wait to be encoded.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::cluster::{Claim, Claimed, Cluster};
use crate::emulation::{Hold, JobFault};
use crate::error::ServerError;
use crate::jobs::{JobStore, Metrics};
use crate::upscaler::{Finish, Upscaler};
use upres_request::JobSpec;

/// A place in the queue, held from admission until a worker starts the job.
pub struct Slot {
    /// None for a job claimed from the cluster: it waited in Redis, not here.
    _permit: Option<OwnedSemaphorePermit>,
    submitted: Instant,
}

/// A v1 job's result.
pub struct Finished {
    pub png: Vec<u8>,
    pub metrics: Metrics,
}

type SyncReply = oneshot::Sender<Result<Finished, ServerError>>;

/// What the load-testing mode adds to a job.
#[derive(Debug, Default)]
pub struct Emulated {
    /// Target PROCESSING time: after the real work the job waits out the rest.
    pub latency: Option<Duration>,
    /// (rule, what it does): the job ends FAILED with a message instead of running, or the
    /// process crashes when it runs it.
    pub failure: Option<(String, JobFault)>,
    /// v2: credits charged when the job completes, released otherwise.
    pub hold: Option<Hold>,
}

enum Target {
    /// v1: the waiting request. When it has gone (client disconnected, deadline passed) the
    /// job is skipped.
    Sync(SyncReply),
    /// v2: the job record.
    Job(Uuid),
    /// v2 in a cluster: a job this replica claimed from Redis.
    Claimed(Claim, Arc<Cluster>),
}

struct Task {
    /// The log span the job's lines go to: its request's (v1) or its own (v2).
    span: tracing::Span,
    slot: Slot,
    input: Bytes,
    spec: JobSpec,
    target: Target,
    emulated: Emulated,
}

impl Task {
    fn reject(self, error: ServerError, jobs: &JobStore) {
        match self.target {
            Target::Sync(reply) => {
                let _ = reply.send(Err(error));
            }
            Target::Job(id) => jobs.fail(&id, error.to_string()),
            // Not started: it goes back to another replica after its lease.
            Target::Claimed(..) => {}
        }
    }
}

pub struct Queue {
    tx: mpsc::UnboundedSender<Task>,
    slots: Arc<Semaphore>,
    depth: usize,
    places: Arc<Semaphore>,
    capacity: u32,
    encoders: Arc<Semaphore>,
    worker_count: u32,
    stop: CancellationToken,
    closed: AtomicBool,
    jobs: Arc<JobStore>,
    /// Moving average of job run time, in milliseconds, for Retry-After.
    average_run_ms: Arc<AtomicU64>,
    /// Jobs started and not finished.
    running: Arc<AtomicUsize>,
}

impl Queue {
    /// Starts the dispatcher.
    pub fn start(
        workers: u32,
        capacity: u32,
        depth: u32,
        upscaler: Arc<dyn Upscaler>,
        jobs: Arc<JobStore>,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Queue {
            tx,
            slots: Arc::new(Semaphore::new(depth as usize)),
            depth: depth as usize,
            places: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            encoders: Arc::new(Semaphore::new(workers as usize)),
            worker_count: workers,
            stop: CancellationToken::new(),
            closed: AtomicBool::new(false),
            jobs,
            average_run_ms: Arc::default(),
            running: Arc::default(),
        };
        let runner = Arc::new(Runner {
            places: queue.places.clone(),
            workers: Arc::new(Semaphore::new(workers as usize)),
            encoders: queue.encoders.clone(),
            stop: queue.stop.clone(),
            upscaler,
            jobs: queue.jobs.clone(),
            average_run_ms: queue.average_run_ms.clone(),
            running: queue.running.clone(),
        });
        if let Some(cluster) = cluster {
            tokio::spawn(claim_jobs(runner.clone(), cluster));
        }
        tokio::spawn(Dispatcher { rx, runner }.run());
        queue
    }

    /// Takes a queue slot, or answers 429 (503 while shutting down).
    pub fn admit(&self) -> Result<Slot, ServerError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ServerError::ShuttingDown);
        }
        let permit =
            self.slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| ServerError::QueueFull {
                    depth: self.depth,
                    retry_after: self.retry_after(),
                })?;
        Ok(Slot {
            _permit: Some(permit),
            submitted: Instant::now(),
        })
    }

    /// Runs a v1 job and waits for it. Dropping the future gives the job up.
    pub async fn run(
        &self,
        slot: Slot,
        input: Bytes,
        spec: JobSpec,
        emulated: Emulated,
    ) -> Result<Finished, ServerError> {
        let (reply, result) = oneshot::channel();
        self.push(Task {
            span: tracing::Span::current(),
            slot,
            input,
            spec,
            target: Target::Sync(reply),
            emulated,
        });
        result.await.unwrap_or(Err(ServerError::ShuttingDown))
    }

    /// Queues a v2 job; its outcome goes to the job store.
    pub fn submit(&self, slot: Slot, id: Uuid, input: Bytes, spec: JobSpec, emulated: Emulated) {
        self.push(Task {
            span: tracing::Span::current(),
            slot,
            input,
            spec,
            target: Target::Job(id),
            emulated,
        });
    }

    fn push(&self, task: Task) {
        if let Err(mpsc::error::SendError(task)) = self.tx.send(task) {
            task.reject(ServerError::ShuttingDown, &self.jobs);
        }
    }

    /// Jobs admitted and not started.
    pub fn waiting(&self) -> usize {
        self.depth - self.slots.available_permits()
    }

    pub fn depth(&self) -> usize {
        self.depth
    }

    pub fn workers(&self) -> u32 {
        self.worker_count
    }

    /// Jobs that may be PROCESSING at once.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Jobs PROCESSING now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Seconds until a slot is likely free: the queue's worth of average job time.
    fn retry_after(&self) -> u64 {
        let per_job = self.average_run_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let estimate = per_job * self.depth as f64 / f64::from(self.capacity);
        (estimate.ceil() as u64).clamp(1, 600)
    }

    /// Shutdown: admits nothing more, fails the jobs not started, and waits until the running
    /// ones finish or `deadline` passes. Returns whether they all finished.
    pub async fn close(&self, deadline: Instant) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        self.stop.cancel();
        // Every place (no job starts after that), then every encoder (the jobs still encoding).
        let finished = async {
            let _places = self.places.acquire_many(self.capacity).await;
            let _encoders = self.encoders.acquire_many(self.worker_count).await;
        };
        tokio::time::timeout_at(deadline, finished).await.is_ok()
    }
}

/// What runs jobs: places, engine workers, encoders, and the counters.
struct Runner {
    places: Arc<Semaphore>,
    workers: Arc<Semaphore>,
    encoders: Arc<Semaphore>,
    stop: CancellationToken,
    upscaler: Arc<dyn Upscaler>,
    jobs: Arc<JobStore>,
    average_run_ms: Arc<AtomicU64>,
    running: Arc<AtomicUsize>,
}

/// Starts the local queue's tasks (v1, and v2 without a cluster) in order as places free up.
struct Dispatcher {
    rx: mpsc::UnboundedReceiver<Task>,
    runner: Arc<Runner>,
}

impl Dispatcher {
    async fn run(mut self) {
        loop {
            // The oldest task, then a place for it (waiting without one, so that a cluster's
            // claims get places too). The task keeps its queue slot until it starts.
            let task = tokio::select! {
                biased;
                _ = self.runner.stop.cancelled() => break,
                task = self.rx.recv() => match task {
                    Some(task) => task,
                    None => break,
                },
            };
            let place = tokio::select! {
                biased;
                _ = self.runner.stop.cancelled() => {
                    task.reject(ServerError::ShuttingDown, &self.runner.jobs);
                    break;
                }
                place = self.runner.places.clone().acquire_owned() => place.expect("the place semaphore is never closed"),
            };
            self.runner.start(task, place);
        }
        self.rx.close();
        while let Ok(task) = self.rx.try_recv() {
            task.reject(ServerError::ShuttingDown, &self.runner.jobs);
        }
    }
}

impl Runner {
    fn start(&self, task: Task, place: OwnedSemaphorePermit) {
        let Task {
            span,
            slot,
            input,
            spec,
            mut target,
            emulated,
        } = task;
        let submitted = slot.submitted;
        drop(slot);
        let started = Instant::now();
        let wanted = match &target {
            Target::Sync(reply) => !reply.is_closed(),
            Target::Job(id) => {
                // Its record is gone only when its TTL ran out while it waited.
                let on_record = self.jobs.begin(id, started);
                if !on_record {
                    crate::metrics::job_expired();
                    span.in_scope(|| tracing::info!("job expired before it started"));
                }
                on_record
            }
            Target::Claimed(..) => true,
        };
        if !wanted {
            return;
        }
        let upscaler = self.upscaler.clone();
        let workers = self.workers.clone();
        let encoders = self.encoders.clone();
        let jobs = self.jobs.clone();
        let stop = self.stop.clone();
        let average_run_ms = self.average_run_ms.clone();
        let running = self.running.clone();
        running.fetch_add(1, Ordering::SeqCst);
        let heartbeat = match &target {
            Target::Claimed(claim, cluster) => Some(AbortOnDrop(tokio::spawn(keep_alive(
                claim.clone(),
                cluster.clone(),
            )))),
            _ => None,
        };
        let job = async move {
            // Held until the outcome is stored (shutdown waits for them), unless the place is
            // handed on to the next job while this one encodes.
            let mut place = Some(place);
            let mut encoder = None;
            let _heartbeat = heartbeat;
            let Emulated {
                latency,
                failure,
                hold,
            } = emulated;
            let outcome = match &failure {
                Some((_, JobFault::Fail(message))) => {
                    Err(ServerError::InjectedFailure(message.clone()))
                }
                Some((rule, JobFault::Crash)) => {
                    tracing::error!(rule, "injected crash: this process stops now");
                    std::process::abort()
                }
                None => match run_on_worker(&workers, upscaler, input, spec).await {
                    Ok(finish) => {
                        if latency.is_none() {
                            // The next job starts while this one encodes, holding an encoder.
                            let permit = encoders.acquire_owned().await;
                            encoder = Some(permit.expect("the encoder semaphore is never closed"));
                            drop(place.take());
                        }
                        blocking(move || finish.run()).await
                    }
                    Err(err) => Err(err),
                },
            };
            if let Some(latency) = latency {
                // The rest of the target time; cut short by shutdown or a v1 caller gone.
                let caller_gone = async {
                    match &mut target {
                        Target::Sync(reply) => reply.closed().await,
                        Target::Job(_) | Target::Claimed(..) => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = tokio::time::sleep_until(started + latency) => {}
                    () = stop.cancelled() => {}
                    () = caller_gone => {}
                }
            }
            let finished = Instant::now();
            running.fetch_sub(1, Ordering::SeqCst);
            let _held = (place, encoder);
            record(&average_run_ms, finished - started);
            metrics::histogram!("upres_job_queue_seconds")
                .record((started - submitted).as_secs_f64());
            metrics::histogram!("upres_job_seconds").record((finished - started).as_secs_f64());
            match (target, outcome) {
                (Target::Sync(reply), outcome) => {
                    crate::metrics::job_finished("v1", outcome.is_ok());
                    let metrics = Metrics::between(submitted, Some(started), Some(finished));
                    let _ = reply.send(outcome.map(|png| Finished { png, metrics }));
                }
                (Target::Job(id), Ok(png)) => {
                    let stored = jobs.complete(&id, png, hold).await;
                    crate::metrics::job_finished("v2", stored.is_ok());
                    if let Err(err) = stored {
                        jobs.fail(&id, format!("could not store the output: {err}"));
                    }
                }
                (Target::Claimed(claim, cluster), Ok(png)) => {
                    let stored = cluster.complete(&claim, &png, None).await;
                    crate::metrics::job_finished("v2", matches!(stored, Ok(true)));
                    if let Err(err) = stored {
                        tracing::warn!(%err, "could not record the output: the job is retried after its lease");
                    }
                }
                (Target::Claimed(claim, cluster), Err(err)) => {
                    crate::metrics::job_finished("v2", false);
                    tracing::info!(error = %err, "job failed");
                    let rule = failure.as_ref().map(|(rule, _)| rule.as_str());
                    if let Err(err) = cluster.fail(&claim, &err.to_string(), rule).await {
                        tracing::warn!(%err, "could not record the failure: the job is retried after its lease");
                    }
                }
                (Target::Job(id), Err(err)) => {
                    crate::metrics::job_finished("v2", false);
                    tracing::info!(error = %err, "job failed");
                    match failure {
                        Some((rule, _)) => jobs.fail_injected(&id, err.to_string(), rule),
                        None => jobs.fail(&id, err.to_string()),
                    }
                }
            }
        };
        tokio::spawn(job.instrument(span));
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews a claimed job's lease for as long as it runs here.
async fn keep_alive(claim: Claim, cluster: Arc<Cluster>) {
    loop {
        tokio::time::sleep(cluster.heartbeat_every()).await;
        match cluster.heartbeat(&claim).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job_id = %claim.id, "lost the lease: another replica runs this job now");
                return;
            }
            Err(err) => tracing::warn!(job_id = %claim.id, %err, "heartbeat failed"),
        }
    }
}

/// Cluster mode: whenever a place is free, takes one v2 job from Redis (one whose replica was
/// lost first, else a new one) and runs it like a local job; with nothing to take, waits for
/// new work without holding the place.
async fn claim_jobs(runner: Arc<Runner>, cluster: Arc<Cluster>) {
    let mut prepared = false;
    let mut wake = None;
    let mut failing = false;
    loop {
        let pause = async {
            tokio::select! {
                () = runner.stop.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        if runner.stop.is_cancelled() {
            return;
        }
        if !prepared {
            match cluster.prepare().await {
                Ok(()) => prepared = true,
                Err(err) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(%err, "cannot reach Redis; retrying");
                    }
                    pause.await;
                    continue;
                }
            }
        }
        let place = tokio::select! {
            () = runner.stop.cancelled() => return,
            place = runner.places.clone().acquire_owned() => place.expect("the place semaphore is never closed"),
        };
        match cluster.claim().await {
            Ok(Claimed::Job(job)) => {
                failing = false;
                let span = tracing::info_span!("job", job_id = %job.claim.id, attempt = job.claim.attempt());
                let task = Task {
                    span,
                    slot: Slot {
                        _permit: None,
                        submitted: Instant::now(),
                    },
                    input: job.input,
                    spec: job.spec,
                    target: Target::Claimed(job.claim, cluster.clone()),
                    emulated: Emulated {
                        latency: job.latency,
                        failure: job.failure,
                        hold: None,
                    },
                };
                runner.start(task, place);
            }
            Ok(Claimed::Dropped) => failing = false,
            Ok(Claimed::Nothing) => {
                failing = false;
                drop(place);
                tokio::select! {
                    () = runner.stop.cancelled() => return,
                    () = cluster.wait_for_work(&mut wake) => {}
                }
            }
            Err(err) => {
                drop(place);
                if !std::mem::replace(&mut failing, true) {
                    tracing::error!(%err, "cannot take jobs from Redis; retrying");
                }
                // A Redis that comes back empty needs the stream and group again.
                prepared = false;
                pause.await;
            }
        }
    }
}

/// Runs the job's model stage on an engine worker.
async fn run_on_worker(
    workers: &Arc<Semaphore>,
    upscaler: Arc<dyn Upscaler>,
    input: Bytes,
    spec: JobSpec,
) -> Result<Finish, ServerError> {
    let _worker = workers
        .acquire()
        .await
        .expect("the worker semaphore is never closed");
    blocking(move || upscaler.run(&input, &spec)).await
}

/// Runs `work` on a blocking thread, catching panics.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServerError> + Send + 'static,
) -> Result<T, ServerError> {
    tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(AssertUnwindSafe(work))
            .unwrap_or_else(|panic| Err(ServerError::Panic(panic_message(&*panic))))
    })
    .await
    .unwrap_or_else(|err| Err(ServerError::Panic(err.to_string())))
}

fn record(average_run_ms: &AtomicU64, took: Duration) {
    let took = took.as_millis() as u64;
    let _ = average_run_ms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
        Some(if avg == 0 { took } else { (avg * 7 + took) / 8 })
    });
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
