//! One bounded FIFO queue, shared by v1 and v2, feeding a fixed number of workers.
//!
//! A request takes a queue slot when admitted (429 when none is left) and keeps it while its
//! image downloads and while it waits; the slot frees when a worker starts it. Each job runs on
//! a blocking thread under `catch_unwind`, so a panic fails that job only.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::ServerError;
use crate::jobs::{JobStore, Metrics};
use crate::params::JobSpec;
use crate::upscaler::Upscaler;

/// A place in the queue, held from admission until a worker starts the job.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    submitted: Instant,
}

/// A v1 job's result.
pub struct Finished {
    pub png: Vec<u8>,
    pub metrics: Metrics,
}

type SyncReply = oneshot::Sender<Result<Finished, ServerError>>;

enum Target {
    /// v1: the waiting request. When it has gone (client disconnected, deadline passed) the
    /// job is skipped.
    Sync(SyncReply),
    /// v2: the job record.
    Job(Uuid),
}

struct Task {
    slot: Slot,
    input: Bytes,
    spec: JobSpec,
    target: Target,
}

impl Task {
    fn reject(self, error: ServerError, jobs: &JobStore) {
        match self.target {
            Target::Sync(reply) => {
                let _ = reply.send(Err(error));
            }
            Target::Job(id) => jobs.fail(&id, error.to_string()),
        }
    }
}

pub struct Queue {
    tx: mpsc::UnboundedSender<Task>,
    slots: Arc<Semaphore>,
    depth: usize,
    workers: Arc<Semaphore>,
    worker_count: u32,
    stop: CancellationToken,
    closed: AtomicBool,
    jobs: Arc<JobStore>,
    /// Moving average of job run time, in milliseconds, for Retry-After.
    average_run_ms: Arc<AtomicU64>,
}

impl Queue {
    /// Starts the dispatcher.
    pub fn start(
        workers: u32,
        depth: u32,
        upscaler: Arc<dyn Upscaler>,
        jobs: Arc<JobStore>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = Queue {
            tx,
            slots: Arc::new(Semaphore::new(depth as usize)),
            depth: depth as usize,
            workers: Arc::new(Semaphore::new(workers as usize)),
            worker_count: workers,
            stop: CancellationToken::new(),
            closed: AtomicBool::new(false),
            jobs,
            average_run_ms: Arc::default(),
        };
        tokio::spawn(
            Dispatcher {
                rx,
                workers: queue.workers.clone(),
                stop: queue.stop.clone(),
                upscaler,
                jobs: queue.jobs.clone(),
                average_run_ms: queue.average_run_ms.clone(),
            }
            .run(),
        );
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
            _permit: permit,
            submitted: Instant::now(),
        })
    }

    /// Runs a v1 job and waits for it. Dropping the future gives the job up.
    pub async fn run(
        &self,
        slot: Slot,
        input: Bytes,
        spec: JobSpec,
    ) -> Result<Finished, ServerError> {
        let (reply, result) = oneshot::channel();
        self.push(Task {
            slot,
            input,
            spec,
            target: Target::Sync(reply),
        });
        result.await.unwrap_or(Err(ServerError::ShuttingDown))
    }

    /// Queues a v2 job; its outcome goes to the job store.
    pub fn submit(&self, slot: Slot, id: Uuid, input: Bytes, spec: JobSpec) {
        self.push(Task {
            slot,
            input,
            spec,
            target: Target::Job(id),
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

    /// Seconds until a slot is likely free: the queue's worth of average job time.
    fn retry_after(&self) -> u64 {
        let per_job = self.average_run_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let estimate = per_job * self.depth as f64 / f64::from(self.worker_count);
        (estimate.ceil() as u64).clamp(1, 600)
    }

    /// Shutdown: admits nothing more, fails the jobs not started, and waits until the running
    /// ones finish or `deadline` passes. Returns whether they all finished.
    pub async fn close(&self, deadline: Instant) -> bool {
        self.closed.store(true, Ordering::SeqCst);
        self.stop.cancel();
        tokio::time::timeout_at(deadline, self.workers.acquire_many(self.worker_count))
            .await
            .is_ok()
    }
}

struct Dispatcher {
    rx: mpsc::UnboundedReceiver<Task>,
    workers: Arc<Semaphore>,
    stop: CancellationToken,
    upscaler: Arc<dyn Upscaler>,
    jobs: Arc<JobStore>,
    average_run_ms: Arc<AtomicU64>,
}

impl Dispatcher {
    async fn run(mut self) {
        loop {
            // A worker first, then the oldest task: a task leaves the queue only to start.
            let worker = tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                worker = self.workers.clone().acquire_owned() => worker.expect("the worker semaphore is never closed"),
            };
            let task = tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                task = self.rx.recv() => match task {
                    Some(task) => task,
                    None => break,
                },
            };
            self.start(task, worker);
        }
        self.rx.close();
        while let Ok(task) = self.rx.try_recv() {
            task.reject(ServerError::ShuttingDown, &self.jobs);
        }
    }

    fn start(&self, task: Task, worker: OwnedSemaphorePermit) {
        let Task {
            slot,
            input,
            spec,
            target,
        } = task;
        let submitted = slot.submitted;
        drop(slot);
        let started = Instant::now();
        let wanted = match &target {
            Target::Sync(reply) => !reply.is_closed(),
            Target::Job(id) => self.jobs.begin(id, started),
        };
        if !wanted {
            return;
        }
        let upscaler = self.upscaler.clone();
        let jobs = self.jobs.clone();
        let average_run_ms = self.average_run_ms.clone();
        tokio::spawn(async move {
            // Held until the outcome is stored: shutdown waits for it.
            let _worker = worker;
            let outcome = tokio::task::spawn_blocking(move || {
                std::panic::catch_unwind(AssertUnwindSafe(|| upscaler.run(&input, &spec)))
                    .unwrap_or_else(|panic| Err(ServerError::Panic(panic_message(&*panic))))
            })
            .await
            .unwrap_or_else(|err| Err(ServerError::Panic(err.to_string())));
            let finished = Instant::now();
            record(&average_run_ms, finished - started);
            match (target, outcome) {
                (Target::Sync(reply), outcome) => {
                    let metrics = Metrics::between(submitted, Some(started), Some(finished));
                    let _ = reply.send(outcome.map(|png| Finished { png, metrics }));
                }
                (Target::Job(id), Ok(png)) => {
                    if let Err(err) = jobs.complete(&id, png).await {
                        jobs.fail(&id, format!("could not store the output: {err}"));
                    }
                }
                (Target::Job(id), Err(err)) => {
                    tracing::info!(%id, error = %err, "job failed");
                    jobs.fail(&id, err.to_string());
                }
            }
        });
    }
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
