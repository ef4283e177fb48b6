//! The in-memory backend: job records, timings, outputs (in memory up to a byte budget, then
//! spooled to disk), and expiry a fixed time after submission by a background purge task. A
//! submitted job goes straight back to this process's queue.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::backend::{Job, JobBackend, Lease, NewJob};
use super::view::{JobState, JobView, Metrics, Output};
use crate::auth::{Charge, Settle};
use crate::error::JobError;

struct Record {
    state: JobState,
    fault: Option<String>,
    charge: Option<Charge>,
    submitted: Instant,
    started: Option<Instant>,
    finished: Option<Instant>,
}

pub struct MemoryJobs {
    jobs: DashMap<Uuid, Record>,
    /// Submission order is expiry order: every job lives `ttl`.
    expiries: Mutex<VecDeque<(Instant, Uuid)>>,
    wake_purger: Notify,
    closed: AtomicBool,
    ttl: Duration,
    memory_budget: usize,
    memory_used: AtomicUsize,
    spool_dir: PathBuf,
    /// The spool folder when the server made it; removed with the store.
    _own_spool: Option<tempfile::TempDir>,
}

impl MemoryJobs {
    /// A store keeping jobs `ttl`, outputs in memory up to `memory_budget` bytes, and the rest in
    /// `spool_dir` (a new temporary folder when `None`). Starts the purge task.
    pub fn start(
        ttl: Duration,
        memory_budget: usize,
        spool_dir: Option<&Path>,
    ) -> std::io::Result<Arc<Self>> {
        let (spool_dir, own_spool) = match spool_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                (dir.to_path_buf(), None)
            }
            None => {
                let dir = tempfile::Builder::new().prefix("upres-spool-").tempdir()?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        let store = Arc::new(MemoryJobs {
            jobs: DashMap::new(),
            expiries: Mutex::default(),
            wake_purger: Notify::new(),
            closed: AtomicBool::new(false),
            ttl,
            memory_budget,
            memory_used: AtomicUsize::new(0),
            spool_dir,
            _own_spool: own_spool,
        });
        tokio::spawn(purge_task(store.clone()));
        Ok(store)
    }

    /// Adds a QUEUED job.
    fn insert(&self, id: Uuid, now: Instant) {
        self.jobs.insert(
            id,
            Record {
                state: JobState::Queued,
                fault: None,
                charge: None,
                submitted: now,
                started: None,
                finished: None,
            },
        );
        self.expiries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((now + self.ttl, id));
        self.wake_purger.notify_one();
    }

    /// The job, unless unknown or expired.
    fn find(&self, id: &Uuid) -> Option<JobView> {
        let job = self.jobs.get(id)?;
        (Instant::now() < job.submitted + self.ttl).then(|| JobView {
            state: job.state.clone(),
            metrics: Metrics::between(job.submitted, job.started, job.finished).charged(job.charge),
            fault: job.fault.clone(),
        })
    }

    /// Marks a queued job PROCESSING; false when it is gone (expired), so it should not run.
    fn begin(&self, id: &Uuid, at: Instant) -> bool {
        match self.jobs.get_mut(id) {
            Some(mut job) => {
                job.state = JobState::Processing;
                job.started = Some(at);
                true
            }
            None => false,
        }
    }

    /// Fails the job; with the fault rule behind it, which its answers then name.
    fn fail(&self, id: &Uuid, error: String, fault: Option<String>) {
        if let Some(mut job) = self.jobs.get_mut(id) {
            job.state = JobState::Failed(error);
            job.fault = fault;
            job.finished = Some(Instant::now());
        }
    }

    /// Stores the output (in memory while within the budget, else in a spool file), and then
    /// charges the job's credits, if it holds any. A job that expired meanwhile is not charged.
    async fn complete(
        &self,
        id: &Uuid,
        png: Vec<u8>,
        credits: Option<Box<dyn Settle>>,
    ) -> std::io::Result<()> {
        let size = png.len();
        let within_budget = self
            .memory_used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                (used + size <= self.memory_budget).then_some(used + size)
            })
            .is_ok();
        let output = if within_budget {
            Output::Memory(Bytes::from(png))
        } else {
            let path = self.spool_dir.join(format!("{id}.png"));
            tokio::fs::write(&path, png).await?;
            Output::File(path)
        };
        match self.jobs.get_mut(id) {
            Some(mut job) => {
                job.state = JobState::Completed(output);
                job.finished = Some(Instant::now());
                job.charge = credits.map(|credits| credits.charge());
            }
            // Expired while running: nobody can ask for it.
            None => self.release(output),
        }
        Ok(())
    }

    fn release(&self, output: Output) {
        match output {
            Output::Memory(bytes) => {
                self.memory_used.fetch_sub(bytes.len(), Ordering::SeqCst);
            }
            Output::File(path) => {
                if let Err(err) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), %err, "could not delete a spooled output");
                }
            }
        }
    }

    /// Removes expired jobs; returns when the next one expires.
    fn purge_expired(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut expiries = self.expiries.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(when, id)) = expiries.front() {
            if when > now {
                return Some(when);
            }
            expiries.pop_front();
            if let Some((
                _,
                Record {
                    state: JobState::Completed(output),
                    ..
                },
            )) = self.jobs.remove(&id)
            {
                self.release(output);
            }
        }
        None
    }
}

impl Drop for MemoryJobs {
    fn drop(&mut self) {
        // Records die with the process: so do their spooled outputs.
        for entry in self.jobs.iter() {
            if let JobState::Completed(Output::File(path)) = &entry.state {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[async_trait]
impl JobBackend for Arc<MemoryJobs> {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn submit(&self, job: NewJob) -> Result<Option<Job>, JobError> {
        let submitted = Instant::now();
        self.insert(job.id, submitted);
        Ok(Some(Job {
            span: tracing::info_span!("job", job_id = %job.id),
            submitted,
            spec: job.spec,
            source: job.source,
            plan: job.plan,
            lease: Box::new(MemoryLease {
                jobs: self.clone(),
                id: job.id,
                credits: job.credits,
            }),
        }))
    }

    async fn view(&self, id: &Uuid) -> Result<Option<JobView>, JobError> {
        Ok(self.find(id))
    }

    fn memory_used(&self) -> usize {
        self.memory_used.load(Ordering::SeqCst)
    }

    fn len(&self) -> usize {
        self.jobs.len()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_purger.notify_one();
    }
}

/// A job of this process's memory, run here.
struct MemoryLease {
    jobs: Arc<MemoryJobs>,
    id: Uuid,
    credits: Option<Box<dyn Settle>>,
}

#[async_trait]
impl Lease for MemoryLease {
    async fn begin(&mut self, at: Instant) -> bool {
        // Its record is gone only when its TTL ran out while it waited.
        let on_record = self.jobs.begin(&self.id, at);
        if !on_record {
            crate::metrics::job_expired();
            tracing::info!("job expired before it started");
        }
        on_record
    }

    async fn complete(self: Box<Self>, png: Vec<u8>) {
        let stored = self.jobs.complete(&self.id, png, self.credits).await;
        crate::metrics::job_finished("v2", stored.is_ok());
        if let Err(err) = stored {
            let error = format!("could not store the output: {err}");
            self.jobs.fail(&self.id, error, None);
        }
    }

    async fn fail(self: Box<Self>, error: JobError, rule: Option<String>) {
        crate::metrics::job_finished("v2", false);
        tracing::info!(error = %error, "job failed");
        self.jobs.fail(&self.id, error.to_string(), rule);
    }

    async fn refuse(self: Box<Self>, error: JobError) {
        self.jobs.fail(&self.id, error.to_string(), None);
    }
}

async fn purge_task(store: Arc<MemoryJobs>) {
    while !store.closed.load(Ordering::SeqCst) {
        match store.purge_expired() {
            Some(when) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(when) => {}
                    _ = store.wake_purger.notified() => {}
                }
            }
            None => store.wake_purger.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn jobs_expire_and_their_outputs_go_with_them() {
        let spool = tempfile::tempdir().unwrap();
        let store = MemoryJobs::start(Duration::from_secs(60), 10, Some(spool.path())).unwrap();
        let (small, big) = (Uuid::new_v4(), Uuid::new_v4());
        store.insert(small, Instant::now());
        store.insert(big, Instant::now());
        assert!(store.begin(&small, Instant::now()));
        store.complete(&small, vec![1; 8], None).await.unwrap();
        store.complete(&big, vec![2; 8], None).await.unwrap();
        assert_eq!(store.memory_used(), 8);
        let spooled = spool.path().join(format!("{big}.png"));
        assert_eq!(std::fs::read(&spooled).unwrap(), vec![2; 8]);
        assert!(matches!(
            store.find(&big).unwrap().state,
            JobState::Completed(Output::File(_))
        ));

        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(store.find(&small).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(store.find(&small).is_none() && store.find(&big).is_none());
        assert_eq!(store.memory_used(), 0);
        assert!(!spooled.exists());
        assert!(store.jobs.is_empty());
    }

    #[test]
    fn metrics_follow_the_job() {
        let t0 = Instant::now();
        let (t1, t2) = (
            t0 + Duration::from_millis(300),
            t0 + Duration::from_millis(1000),
        );
        let done = Metrics::between(t0, Some(t1), Some(t2));
        assert_eq!(
            (done.queue_time, done.inference_time, done.total_time),
            (Some(0.3), Some(0.7), Some(1.0))
        );
        let failed_before_start = Metrics::between(t0, None, Some(t2));
        assert_eq!(failed_before_start.queue_time, Some(1.0));
        assert_eq!(failed_before_start.inference_time, None);
        assert_eq!(Metrics::between(t0, None, None), Metrics::default());
    }
}
