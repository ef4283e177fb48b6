//! The in-memory store of v2 jobs: state, timings, outputs (in memory up to a byte budget, then
//! spooled to disk), and expiry a fixed time after submission by a background purge task.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::emulation::Hold;

/// Where a finished output is kept.
#[derive(Debug, Clone)]
pub enum Output {
    Memory(Bytes),
    Spooled(PathBuf),
    /// In the cluster's blob store, under this key.
    Blob(String),
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
}

/// A job as seen by a request.
#[derive(Debug, Clone)]
pub struct JobView {
    pub state: JobState,
    pub metrics: Metrics,
    /// The fault rule that made the job fail (load-testing mode).
    pub fault: Option<String>,
}

struct Job {
    state: JobState,
    fault: Option<String>,
    /// (cost, balance after) once charged.
    charge: Option<(f64, f64)>,
    submitted: Instant,
    started: Option<Instant>,
    finished: Option<Instant>,
}

pub struct JobStore {
    jobs: DashMap<Uuid, Job>,
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

impl JobStore {
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
        let store = Arc::new(JobStore {
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
    pub fn insert(&self, id: Uuid) {
        let now = Instant::now();
        self.jobs.insert(
            id,
            Job {
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
    pub fn view(&self, id: &Uuid) -> Option<JobView> {
        let job = self.jobs.get(id)?;
        (Instant::now() < job.submitted + self.ttl).then(|| JobView {
            state: job.state.clone(),
            metrics: Metrics {
                cost: job.charge.map(|(cost, _)| cost),
                remaining_credits: job.charge.map(|(_, remaining)| remaining),
                ..Metrics::between(job.submitted, job.started, job.finished)
            },
            fault: job.fault.clone(),
        })
    }

    /// Marks a queued job PROCESSING; false when it is gone (expired), so it should not run.
    pub fn begin(&self, id: &Uuid, at: Instant) -> bool {
        match self.jobs.get_mut(id) {
            Some(mut job) => {
                job.state = JobState::Processing;
                job.started = Some(at);
                true
            }
            None => false,
        }
    }

    pub fn fail(&self, id: &Uuid, error: String) {
        self.end_failed(id, error, None);
    }

    /// Fails the job on behalf of a fault rule, which its answers then name.
    pub fn fail_injected(&self, id: &Uuid, error: String, rule: String) {
        self.end_failed(id, error, Some(rule));
    }

    fn end_failed(&self, id: &Uuid, error: String, fault: Option<String>) {
        if let Some(mut job) = self.jobs.get_mut(id) {
            job.state = JobState::Failed(error);
            job.fault = fault;
            job.finished = Some(Instant::now());
        }
    }

    /// Stores the output (in memory while within the budget, else in a spool file), and then
    /// charges the job's credits, if it holds any. A job that expired meanwhile is not charged.
    pub async fn complete(
        &self,
        id: &Uuid,
        png: Vec<u8>,
        hold: Option<Hold>,
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
            Output::Spooled(path)
        };
        match self.jobs.get_mut(id) {
            Some(mut job) => {
                job.state = JobState::Completed(output);
                job.finished = Some(Instant::now());
                job.charge = hold.map(|hold| (hold.amount(), hold.charge().total()));
            }
            // Expired while running: nobody can ask for it.
            None => self.release(output),
        }
        Ok(())
    }

    /// Jobs on record.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Bytes of outputs held in memory.
    pub fn memory_used(&self) -> usize {
        self.memory_used.load(Ordering::SeqCst)
    }

    /// Stops the purge task (at shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_purger.notify_one();
    }

    fn release(&self, output: Output) {
        match output {
            Output::Memory(bytes) => {
                self.memory_used.fetch_sub(bytes.len(), Ordering::SeqCst);
            }
            Output::Spooled(path) => {
                if let Err(err) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), %err, "could not delete a spooled output");
                }
            }
            Output::Blob(_) => {}
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
                Job {
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

impl Drop for JobStore {
    fn drop(&mut self) {
        // Records die with the process: so do their spooled outputs.
        for entry in self.jobs.iter() {
            if let JobState::Completed(Output::Spooled(path)) = &entry.state {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

async fn purge_task(store: Arc<JobStore>) {
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
        let store = JobStore::start(Duration::from_secs(60), 10, Some(spool.path())).unwrap();
        let (small, big) = (Uuid::new_v4(), Uuid::new_v4());
        store.insert(small);
        store.insert(big);
        assert!(store.begin(&small, Instant::now()));
        store.complete(&small, vec![1; 8], None).await.unwrap();
        store.complete(&big, vec![2; 8], None).await.unwrap();
        assert_eq!(store.memory_used(), 8);
        let spooled = spool.path().join(format!("{big}.png"));
        assert_eq!(std::fs::read(&spooled).unwrap(), vec![2; 8]);
        assert!(matches!(
            store.view(&big).unwrap().state,
            JobState::Completed(Output::Spooled(_))
        ));

        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(store.view(&small).is_some());
        tokio::time::advance(Duration::from_secs(2)).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(store.view(&small).is_none() && store.view(&big).is_none());
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
