//! The Redis backend: several replicas sharing v2 jobs through Redis (or Valkey) 7. A stream
//! with one consumer group is the queue, small hashes with server-side expiry are the job
//! records, and every step that changes a job is one Lua script (`scripts.lua`) with Redis's
//! clock. Inputs and outputs go to a shared blob store, never into Redis.
//!
//! A replica claims a job only when it has a free place: first one whose lease ran out (the
//! stream entry's idle time, which heartbeats reset; XAUTOCLAIM), else a new one. Completion is
//! fenced by owner and attempt, so a job that ran twice after a stall is recorded once; after
//! `max_attempts` lost runs it is FAILED. v1 requests never come here.
//!
//! Credits live in the memory of the replica that admitted the job (`credits`): charged when
//! the job completes, on whichever replica, released when it fails or expires.

mod blobs;
mod credits;
mod lease;
mod records;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Script};
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use tokio::time::Instant;
use upres_request::{ImageSource, JobSpec};
use uuid::Uuid;

use self::blobs::BlobStore;
use self::credits::Held;
use self::lease::{Claim, RedisLease};
use self::records::{corrupt, job_view, split_scripts};
use super::backend::{Job, JobBackend, NewJob};
use super::view::JobView;
use crate::emulation::JobPlan;
use crate::error::{Invalid, JobError};

/// The consumer group every replica reads the job stream through.
const GROUP: &str = "workers";

/// How long a blocking wait for new work lasts before the replica looks for lost jobs again.
const WAKE_EVERY: Duration = Duration::from_millis(500);

/// Where the jobs are shared and how.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// redis://, rediss:// or unix:// URL.
    pub url: String,
    /// `file:///shared/dir`, a folder every replica mounts.
    pub blob_store: String,
    /// Prefix of every Redis key of this deployment.
    pub prefix: String,
    /// Time without a heartbeat after which another replica takes over a running job.
    pub lease: Duration,
    /// Runs of a job lost to stopped replicas before it is FAILED.
    pub max_attempts: u32,
    /// How long a job record (and its blobs) lives.
    pub ttl: Duration,
    /// Jobs waiting cluster-wide beyond which submits get 429.
    pub depth: u32,
}

pub struct RedisJobs {
    client: ::redis::Client,
    redis: ConnectionManager,
    blobs: BlobStore,
    prefix: String,
    stream: String,
    /// This replica's name in the consumer group: unique per process.
    consumer: String,
    config: RedisConfig,
    scripts: HashMap<String, Script>,
    /// Whether the stream and its group are known to exist.
    prepared: AtomicBool,
    /// Jobs this replica runs now (released at shutdown when they do not finish).
    running: DashMap<Uuid, Claim>,
    /// Credits of the jobs this replica admitted, until the jobs end.
    held: Held,
    /// The connection blocking waits for new work use.
    waiter: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

fn unavailable(err: ::redis::RedisError) -> JobError {
    JobError::StoreUnavailable(err.to_string())
}

impl RedisJobs {
    /// Connects lazily: the server starts (and /health says why it is not ready) while Redis is
    /// down, and reconnects by itself when it is back. Starts the blob and credit sweepers.
    pub fn open(config: RedisConfig) -> Result<Arc<Self>, Invalid> {
        let client = ::redis::Client::open(config.url.as_str())
            .map_err(|e| Invalid(format!("--redis-url: {e}")))?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let redis = ConnectionManager::new_lazy_with_config(client.clone(), manager)
            .map_err(|e| Invalid(format!("--redis-url: {e}")))?;
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into());
        let jobs = Arc::new(RedisJobs {
            client,
            redis,
            blobs: BlobStore::open(&config.blob_store)?,
            prefix: config.prefix.clone(),
            stream: format!("{}:jobs", config.prefix),
            consumer: format!(
                "{host}-{}-{}",
                std::process::id(),
                &Uuid::new_v4().simple().to_string()[..8]
            ),
            scripts: split_scripts(include_str!("scripts.lua")),
            config,
            prepared: AtomicBool::new(false),
            running: DashMap::new(),
            held: Held::default(),
            waiter: tokio::sync::Mutex::new(None),
        });
        tokio::spawn(jobs.clone().sweep_blobs());
        tokio::spawn(credits::settle_task(Arc::downgrade(&jobs)));
        Ok(jobs)
    }

    fn job_key(&self, id: &Uuid) -> String {
        format!("{}:job:{id}", self.prefix)
    }

    fn script(&self, name: &str) -> &Script {
        &self.scripts[name]
    }

    /// Creates the stream and its group when missing, and warns when Redis may evict job
    /// records. Safe to call on every start of every replica.
    async fn prepare(&self) -> Result<(), JobError> {
        let mut redis = self.redis.clone();
        let created: ::redis::RedisResult<()> = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut redis)
            .await;
        match created {
            Ok(()) => {}
            Err(err) if err.code() == Some("BUSYGROUP") => {}
            Err(err) => return Err(unavailable(err)),
        }
        let policy: ::redis::RedisResult<Vec<String>> = ::redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut redis)
            .await;
        match policy.as_deref() {
            Ok([_, policy]) if policy == "noeviction" => {}
            Ok([_, policy]) => tracing::warn!(
                policy,
                "Redis maxmemory-policy is not noeviction: under memory pressure it may evict job records"
            ),
            _ => tracing::warn!("could not read Redis's maxmemory-policy (CONFIG may be disabled)"),
        }
        tracing::info!(consumer = %self.consumer, stream = %self.stream, "sharing v2 jobs through Redis");
        Ok(())
    }

    /// One claim from the stream.
    async fn claim_once(self: &Arc<Self>) -> Result<Claimed, JobError> {
        let mut redis = self.redis.clone();
        let answer: Option<Vec<String>> = self
            .script("claim")
            .key(&self.stream)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.config.lease.as_millis() as u64)
            .arg(format!("{}:job:", self.prefix))
            .arg(self.config.max_attempts)
            .invoke_async(&mut redis)
            .await
            .map_err(unavailable)?;
        let Some(answer) = answer else {
            return Ok(Claimed::Nothing);
        };
        match answer.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["run", id, entry, attempt, spec, input, url, plan] => {
                let id = Uuid::parse_str(id).map_err(|e| corrupt(e.to_string()))?;
                let claim = Claim::new(id, entry, attempt);
                self.running.insert(id, claim.clone());
                let lease = RedisLease::new(self.clone(), claim);
                match self.load(&id, spec, input, url, plan).await {
                    Ok((spec, source, plan)) => Ok(Claimed::Job(Box::new(Job {
                        span: tracing::info_span!("job", job_id = %id, attempt = lease.attempt()),
                        submitted: Instant::now(),
                        spec,
                        source,
                        plan,
                        lease: Box::new(lease),
                    }))),
                    Err(err) => {
                        tracing::info!(job_id = %id, error = %err, "job failed before it ran");
                        crate::metrics::job_finished("v2", false);
                        lease.record_failure(&err.to_string(), None).await?;
                        Ok(Claimed::Dropped)
                    }
                }
            }
            ["failed", id] => {
                tracing::warn!(job_id = id, "job failed: out of attempts");
                crate::metrics::job_finished("v2", false);
                Ok(Claimed::Dropped)
            }
            _ => Ok(Claimed::Dropped),
        }
    }

    /// A claimed job's spec, input (read back from the blob store; an image URL is fetched by
    /// the worker) and plan.
    async fn load(
        &self,
        id: &Uuid,
        spec: &str,
        input: &str,
        url: &str,
        plan: &str,
    ) -> Result<(JobSpec, ImageSource, JobPlan), JobError> {
        let spec: JobSpec = serde_json::from_str(spec).map_err(|e| corrupt(e.to_string()))?;
        let plan: JobPlan = serde_json::from_str(plan).map_err(|e| corrupt(e.to_string()))?;
        let source = match url {
            "" => {
                ImageSource::Inline(Bytes::from(self.blobs.get(input).await.map_err(|e| {
                    JobError::StoreUnavailable(format!("input of job {id}: {e}"))
                })?))
            }
            url => ImageSource::Url(url.parse().map_err(|e| corrupt(format!("{e}")))?),
        };
        Ok((spec, source, plan))
    }

    /// Deletes blobs older than the result TTL, now and then, for the life of the process.
    async fn sweep_blobs(self: Arc<Self>) {
        let ttl = self.config.ttl;
        let every = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            tokio::time::sleep(every).await;
            let blobs = self.blobs.clone();
            let swept = tokio::task::spawn_blocking(move || blobs.sweep(ttl))
                .await
                .unwrap_or(0);
            if swept > 0 {
                tracing::debug!(swept, "deleted expired blobs");
            }
        }
    }
}

/// What one claim found.
enum Claimed {
    Job(Box<Job>),
    /// A job that had expired, finished, or run out of attempts: dropped; look again.
    Dropped,
    Nothing,
}

#[async_trait]
impl JobBackend for Arc<RedisJobs> {
    fn kind(&self) -> &'static str {
        "redis"
    }

    /// Admits a v2 job: its input (a request's inline image) goes to the blob store, then the
    /// job record and its stream entry are made in one step. An image URL is fetched by the
    /// replica that runs the job. 429 when the jobs waiting cluster-wide fill the queue.
    async fn submit(&self, job: NewJob) -> Result<Option<Job>, JobError> {
        let id = job.id;
        let (input, url) = match job.source {
            ImageSource::Inline(bytes) => {
                let key = BlobStore::input_key(&id);
                self.blobs.put(&key, &bytes).await?;
                (key, String::new())
            }
            ImageSource::Url(url) => (String::new(), url.to_string()),
        };
        let mut redis = self.redis.clone();
        let admitted = self
            .script("submit")
            .key(self.job_key(&id))
            .key(&self.stream)
            .arg(self.config.ttl.as_millis() as u64)
            .arg(self.config.depth)
            .arg(GROUP)
            .arg(id.to_string())
            .arg(serde_json::to_string(&job.spec).expect("a spec serialises"))
            .arg(&input)
            .arg(&url)
            .arg(serde_json::to_string(&job.plan).expect("a plan serialises"))
            .invoke_async::<i64>(&mut redis)
            .await
            .map_err(unavailable);
        if !matches!(admitted, Ok(1)) && !input.is_empty() {
            self.blobs.delete(&input).await;
        }
        match admitted? {
            1 => {
                if let Some(credits) = job.credits {
                    self.held.insert(id, credits);
                }
                Ok(None)
            }
            _ => Err(JobError::QueueFull {
                depth: self.config.depth as usize,
                retry_after: 1,
            }),
        }
    }

    async fn view(&self, id: &Uuid) -> Result<Option<JobView>, JobError> {
        let mut redis = self.redis.clone();
        let fields: HashMap<String, String> = ::redis::cmd("HGETALL")
            .arg(self.job_key(id))
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        Ok(job_view(&self.blobs, &fields))
    }

    /// Answers once Redis does.
    async fn check(&self) -> Result<(), JobError> {
        let mut redis = self.redis.clone();
        ::redis::cmd("PING")
            .query_async::<String>(&mut redis)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Takes one job to run (call only with a free place): one whose replica was lost first,
    /// else a new one. Jobs found expired, finished or out of attempts are dropped on the way.
    async fn claim(&self) -> Result<Option<Job>, JobError> {
        if !self.prepared.load(Ordering::SeqCst) {
            self.prepare().await?;
            self.prepared.store(true, Ordering::SeqCst);
        }
        loop {
            match self.claim_once().await {
                Ok(Claimed::Job(job)) => return Ok(Some(*job)),
                Ok(Claimed::Dropped) => {}
                Ok(Claimed::Nothing) => return Ok(None),
                Err(err) => {
                    // A Redis that comes back empty needs the stream and group again.
                    self.prepared.store(false, Ordering::SeqCst);
                    return Err(err);
                }
            }
        }
    }

    /// Waits until a job may have arrived (new stream entries), at most [`WAKE_EVERY`], on a
    /// connection of its own (a blocking read must not hold up other commands).
    async fn wait_for_work(&self) {
        let mut connection = self.waiter.lock().await;
        if connection.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(WAKE_EVERY + Duration::from_secs(2)));
            match self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(c) => *connection = Some(c),
                Err(_) => {
                    tokio::time::sleep(WAKE_EVERY).await;
                    return;
                }
            }
        }
        let Some(redis) = connection.as_mut() else {
            return;
        };
        let woke: ::redis::RedisResult<::redis::Value> = ::redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(WAKE_EVERY.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg("$")
            .query_async(redis)
            .await;
        if woke.is_err() {
            *connection = None;
        }
    }

    async fn release_running(&self) {
        lease::release_running(self).await;
    }
}
