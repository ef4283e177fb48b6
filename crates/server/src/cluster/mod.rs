//! Several replicas sharing v2 jobs through Redis (or Valkey) 7: a stream with one consumer
//! group is the queue, small hashes with server-side expiry are the job records, and every step
//! that changes a job is one Lua script (`scripts.lua`) with Redis's clock. Inputs and outputs
//! go to a shared blob store, never into Redis.
//!
//! A replica claims a job only when it has a free place: first one whose lease ran out (the
//! stream entry's idle time, which heartbeats reset; XAUTOCLAIM), else a new one. Completion is
//! fenced by owner and attempt, so a job that ran twice after a stall is recorded once; after
//! `--max-attempts` lost runs it is FAILED. v1 requests never come here.

mod blobs;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Script};
use upres_request::{ImageSource, JobSpec};
use uuid::Uuid;

pub use blobs::BlobStore;

use crate::emulation::JobFault;
use crate::error::ServerError;
use crate::fetch::Fetcher;
use crate::jobs::{JobState, JobView, Metrics, Output};

/// The consumer group every replica reads the job stream through.
const GROUP: &str = "workers";

/// How long a blocking wait for new work lasts before the replica looks for lost jobs again.
const WAKE_EVERY: Duration = Duration::from_millis(500);

/// `--redis-url` and what goes with it.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// Share v2 jobs with other replicas through this Redis (or Valkey) 7: redis://host:port,
    /// rediss://host:port (TLS) or unix:///path/to/socket. Without it jobs live in this
    /// process's memory.
    #[arg(long, env = "UPRES_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Where replicas keep job inputs and outputs: file:///shared/dir, a folder every replica
    /// mounts. Needed with --redis-url.
    #[arg(long, env = "UPRES_BLOB_STORE")]
    pub blob_store: Option<String>,
    /// Prefix of every Redis key this deployment uses (several deployments can share a Redis).
    #[arg(long, env = "UPRES_REDIS_PREFIX", default_value = "upres")]
    pub redis_prefix: String,
    /// Seconds without a heartbeat after which another replica takes over a running job.
    #[arg(long, env = "UPRES_LEASE", default_value = "30", value_parser = crate::args::seconds)]
    pub lease: Duration,
    /// Runs of a job lost to stopped replicas before it is FAILED.
    #[arg(long, env = "UPRES_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
}

/// One run of a job by this replica: what fences its later steps.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: Uuid,
    entry: String,
    attempt: String,
}

impl Claim {
    pub fn attempt(&self) -> u32 {
        self.attempt.parse().unwrap_or(0)
    }
}

/// A job this replica claimed, with what it needs to run.
#[derive(Debug)]
pub struct ClaimedJob {
    pub claim: Claim,
    pub spec: JobSpec,
    pub input: Bytes,
    pub latency: Option<Duration>,
    /// The load-testing mode decided at submit that this job fails or crashes its replica.
    pub failure: Option<(String, JobFault)>,
}

/// What a claim found.
#[derive(Debug)]
pub enum Claimed {
    Job(ClaimedJob),
    /// A job that had expired, finished, or run out of attempts: dropped; look again.
    Dropped,
    /// Nothing to do now.
    Nothing,
}

pub struct Cluster {
    client: redis::Client,
    redis: ConnectionManager,
    pub blobs: BlobStore,
    prefix: String,
    stream: String,
    /// This replica's name in the consumer group: unique per process.
    consumer: String,
    lease: Duration,
    max_attempts: u32,
    ttl: Duration,
    depth: u32,
    scripts: HashMap<String, Script>,
    /// Downloads the image URLs of the jobs this replica runs.
    fetcher: Arc<Fetcher>,
    /// Jobs this replica runs now (released at shutdown when they do not finish).
    running: DashMap<Uuid, Claim>,
}

fn unavailable(err: redis::RedisError) -> ServerError {
    ServerError::StoreUnavailable(err.to_string())
}

impl Cluster {
    /// Connects lazily: the server starts (and /health says why it is not ready) while Redis is
    /// down, and reconnects by itself when it is back.
    pub fn open(
        args: &ClusterArgs,
        ttl: Duration,
        depth: u32,
        fetcher: Arc<Fetcher>,
    ) -> Result<Option<Arc<Self>>, ServerError> {
        let Some(url) = &args.redis_url else {
            return Ok(None);
        };
        let blob_store = args.blob_store.as_deref().ok_or_else(|| {
            ServerError::Config("--redis-url needs --blob-store file:///shared/dir".into())
        })?;
        let client = redis::Client::open(url.as_str())
            .map_err(|e| ServerError::Config(format!("--redis-url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let redis = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| ServerError::Config(format!("--redis-url: {e}")))?;
        let scripts = split_scripts(include_str!("scripts.lua"));
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".into());
        Ok(Some(Arc::new(Cluster {
            client,
            redis,
            blobs: BlobStore::open(blob_store)?,
            prefix: args.redis_prefix.clone(),
            stream: format!("{}:jobs", args.redis_prefix),
            consumer: format!(
                "{host}-{}-{}",
                std::process::id(),
                &Uuid::new_v4().simple().to_string()[..8]
            ),
            lease: args.lease,
            max_attempts: args.max_attempts,
            ttl,
            depth,
            scripts,
            fetcher,
            running: DashMap::new(),
        })))
    }

    fn job_key(&self, id: &Uuid) -> String {
        format!("{}:job:{id}", self.prefix)
    }

    fn script(&self, name: &str) -> &Script {
        &self.scripts[name]
    }

    /// Creates the stream and its group when missing, and warns when Redis may evict job
    /// records. Safe to call on every start of every replica.
    pub async fn prepare(&self) -> Result<(), ServerError> {
        let mut redis = self.redis.clone();
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
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
        let policy: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
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

    /// Answers once Redis does (for /health).
    pub async fn ping(&self) -> Result<(), ServerError> {
        let mut redis = self.redis.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut redis)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Admits a v2 job: its input (a request's inline image) goes to the blob store, then the
    /// job record and its stream entry are made in one step. An image URL is fetched by the
    /// replica that runs the job. 429 when the jobs waiting cluster-wide fill the queue.
    pub async fn submit(
        &self,
        id: &Uuid,
        spec: &JobSpec,
        latency: Option<Duration>,
        failure: Option<&(String, JobFault)>,
        source: ImageSource,
    ) -> Result<(), ServerError> {
        let (input, url) = match source {
            ImageSource::Inline(bytes) => {
                let key = BlobStore::input_key(id);
                self.blobs.put(&key, &bytes).await?;
                (key, String::new())
            }
            ImageSource::Url(url) => (String::new(), url.to_string()),
        };
        let (rule, message, crash) = match failure {
            None => ("", "", ""),
            Some((rule, JobFault::Fail(message))) => (rule.as_str(), message.as_str(), ""),
            Some((rule, JobFault::Crash)) => (rule.as_str(), "", "1"),
        };
        let mut redis = self.redis.clone();
        let admitted = self
            .script("submit")
            .key(self.job_key(id))
            .key(&self.stream)
            .arg(self.ttl.as_millis() as u64)
            .arg(self.depth)
            .arg(GROUP)
            .arg(id.to_string())
            .arg(serde_json::to_string(spec).expect("a spec serialises"))
            .arg(&input)
            .arg(&url)
            .arg(latency.map_or(String::new(), |l| l.as_millis().to_string()))
            .arg(rule)
            .arg(message)
            .arg(crash)
            .invoke_async::<i64>(&mut redis)
            .await
            .map_err(unavailable);
        if !matches!(admitted, Ok(1)) && !input.is_empty() {
            self.blobs.delete(&input).await;
        }
        match admitted? {
            1 => Ok(()),
            _ => Err(ServerError::QueueFull {
                depth: self.depth as usize,
                retry_after: 1,
            }),
        }
    }

    /// The job, unless unknown or expired.
    pub async fn view(&self, id: &Uuid) -> Result<Option<JobView>, ServerError> {
        let mut redis = self.redis.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.job_key(id))
            .query_async(&mut redis)
            .await
            .map_err(unavailable)?;
        Ok(job_view(&fields))
    }

    /// Takes one job to run, if there is one. Call only with a free place.
    pub async fn claim(&self) -> Result<Claimed, ServerError> {
        let mut redis = self.redis.clone();
        let answer: Option<Vec<String>> = self
            .script("claim")
            .key(&self.stream)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.lease.as_millis() as u64)
            .arg(format!("{}:job:", self.prefix))
            .arg(self.max_attempts)
            .invoke_async(&mut redis)
            .await
            .map_err(unavailable)?;
        let Some(answer) = answer else {
            return Ok(Claimed::Nothing);
        };
        match answer.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["run", id, entry, attempt, spec, input, url, latency, rule, message, crash] => {
                let id = Uuid::parse_str(id).map_err(|e| corrupt(e.to_string()))?;
                let claim = Claim {
                    id,
                    entry: entry.to_string(),
                    attempt: attempt.to_string(),
                };
                self.running.insert(id, claim.clone());
                let loaded = async {
                    let spec: JobSpec =
                        serde_json::from_str(spec).map_err(|e| corrupt(e.to_string()))?;
                    let input = match url {
                        "" => Bytes::from(self.blobs.get(input).await.map_err(|e| {
                            ServerError::StoreUnavailable(format!("input of job {id}: {e}"))
                        })?),
                        url => {
                            let url = url.parse().map_err(|e| corrupt(format!("{e}")))?;
                            self.fetcher.load(ImageSource::Url(url)).await?
                        }
                    };
                    Ok::<_, ServerError>((spec, input))
                };
                match loaded.await {
                    Ok((spec, input)) => Ok(Claimed::Job(ClaimedJob {
                        claim,
                        spec,
                        input,
                        latency: latency.parse().ok().map(Duration::from_millis),
                        failure: (!rule.is_empty()).then(|| {
                            let fault = match crash {
                                "1" => JobFault::Crash,
                                _ => JobFault::Fail(message.to_string()),
                            };
                            (rule.to_string(), fault)
                        }),
                    })),
                    Err(err) => {
                        tracing::info!(job_id = %id, error = %err, "job failed before it ran");
                        crate::metrics::job_finished("v2", false);
                        self.fail(&claim, &err.to_string(), None).await?;
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

    /// Renews a running job's lease; false when another replica has taken it over.
    pub async fn heartbeat(&self, claim: &Claim) -> Result<bool, ServerError> {
        self.fenced("heartbeat", claim, &[]).await
    }

    /// Stores the output and records the job COMPLETED, unless this run lost the job; then its
    /// output is deleted. Returns whether it was recorded.
    pub async fn complete(
        &self,
        claim: &Claim,
        png: &[u8],
        charge: Option<(f64, f64)>,
    ) -> Result<bool, ServerError> {
        let key = BlobStore::output_key(&claim.id, claim.attempt());
        self.blobs.put(&key, png).await?;
        let (cost, remaining) = charge.map_or((String::new(), String::new()), |(c, r)| {
            (c.to_string(), r.to_string())
        });
        let recorded = self
            .fenced("complete", claim, &[&key, &cost, &remaining])
            .await;
        if !matches!(recorded, Ok(true)) {
            self.blobs.delete(&key).await;
        }
        self.finished(claim, &recorded).await;
        recorded
    }

    /// Records the job FAILED (with the fault rule that failed it, if any).
    pub async fn fail(
        &self,
        claim: &Claim,
        error: &str,
        rule: Option<&str>,
    ) -> Result<bool, ServerError> {
        let recorded = self
            .fenced("fail", claim, &[error, rule.unwrap_or("")])
            .await;
        self.finished(claim, &recorded).await;
        recorded
    }

    /// At shutdown: every job still running here goes back to the stream for another replica.
    pub async fn release_running(&self) {
        let claims: Vec<Claim> = self.running.iter().map(|c| c.value().clone()).collect();
        for claim in claims {
            match self.fenced("release", &claim, &[]).await {
                Ok(true) => {
                    tracing::info!(job_id = %claim.id, "released a running job for another replica")
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(job_id = %claim.id, %err, "could not release a running job; it is taken over after the lease")
                }
            }
            self.running.remove(&claim.id);
        }
    }

    /// This replica's run of a job has ended with `recorded` (its outcome recorded, stale, or
    /// not known while Redis is away: then the run stays on the list to release at shutdown).
    /// Only a recorded outcome ends the job's need for its input: after a stale run, the job's
    /// current run may still be lost and need it again.
    async fn finished(&self, claim: &Claim, recorded: &Result<bool, ServerError>) {
        if let Ok(recorded) = recorded {
            self.running.remove(&claim.id);
            if *recorded {
                self.blobs.delete(&BlobStore::input_key(&claim.id)).await;
            }
        }
    }

    /// A step fenced by this run's owner and attempt.
    async fn fenced(&self, name: &str, claim: &Claim, extra: &[&str]) -> Result<bool, ServerError> {
        let mut redis = self.redis.clone();
        let mut invocation = self.script(name).prepare_invoke();
        invocation
            .key(self.job_key(&claim.id))
            .key(&self.stream)
            .arg(GROUP)
            .arg(&claim.entry)
            .arg(&self.consumer)
            .arg(&claim.attempt);
        for arg in extra {
            invocation.arg(*arg);
        }
        let done: i64 = invocation
            .invoke_async(&mut redis)
            .await
            .map_err(unavailable)?;
        if done == 0 && name != "heartbeat" {
            tracing::warn!(job_id = %claim.id, step = name, "stale run: another replica took the job over");
        }
        Ok(done == 1)
    }

    /// Waits until a job may have arrived (new stream entries), at most [`WAKE_EVERY`], on a
    /// connection of its own (a blocking read must not hold up other commands).
    pub async fn wait_for_work(&self, connection: &mut Option<MultiplexedConnection>) {
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
        let woke: redis::RedisResult<redis::Value> = redis::cmd("XREAD")
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

    /// Seconds between heartbeats of a running job.
    pub fn heartbeat_every(&self) -> Duration {
        self.lease / 3
    }

    /// Deletes blobs older than the result TTL, now and then, for the life of the process.
    pub async fn sweep_blobs(self: Arc<Self>) {
        let every = (self.ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            tokio::time::sleep(every).await;
            let blobs = self.blobs.clone();
            let ttl = self.ttl;
            let swept = tokio::task::spawn_blocking(move || blobs.sweep(ttl))
                .await
                .unwrap_or(0);
            if swept > 0 {
                tracing::debug!(swept, "deleted expired blobs");
            }
        }
    }

    /// The body of a completed job's output.
    pub async fn output(&self, key: &str) -> std::io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.blobs.path(key)).await
    }
}

fn corrupt(reason: String) -> ServerError {
    ServerError::StoreUnavailable(format!("a job record is not readable: {reason}"))
}

/// A job record as a request sees it; `None` for a missing (expired, unknown) one.
fn job_view(fields: &HashMap<String, String>) -> Option<JobView> {
    let ms = |name: &str| fields.get(name).and_then(|v| v.parse::<u64>().ok());
    let submitted = ms("submitted")?;
    let text = |name: &str| fields.get(name).filter(|v| !v.is_empty()).cloned();
    let state = match fields.get("state")?.as_str() {
        "QUEUED" => JobState::Queued,
        "PROCESSING" => JobState::Processing,
        "COMPLETED" => JobState::Completed(Output::Blob(text("output")?)),
        _ => JobState::Failed(text("error").unwrap_or_default()),
    };
    let after = |t: Option<u64>| t.map(|t| t.saturating_sub(submitted) as f64 / 1000.0);
    let number = |name: &str| fields.get(name).and_then(|v| v.parse::<f64>().ok());
    Some(JobView {
        metrics: Metrics {
            cost: number("cost"),
            remaining_credits: number("remaining"),
            ..Metrics::from_offsets(after(ms("started")), after(ms("finished")))
        },
        state,
        fault: text("fault"),
    })
}

/// The scripts of `scripts.lua` by name, each with the helpers above the first `--@` line.
fn split_scripts(source: &str) -> HashMap<String, Script> {
    let mut parts = source.split("\n--@ ");
    let helpers = parts.next().expect("scripts.lua starts with its helpers");
    parts
        .map(|part| {
            let (name, body) = part.split_once('\n').expect("a script has a body");
            (
                name.trim().to_string(),
                Script::new(&format!("{helpers}\n{body}")),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_script() {
        let scripts = split_scripts(include_str!("scripts.lua"));
        let mut names: Vec<&str> = scripts.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "claim",
                "complete",
                "fail",
                "heartbeat",
                "release",
                "submit"
            ]
        );
    }

    #[test]
    fn a_record_reads_as_a_job() {
        let record = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(job_view(&record(&[])).is_none());
        let done = job_view(&record(&[
            ("state", "COMPLETED"),
            ("submitted", "1000"),
            ("started", "1300"),
            ("finished", "2000"),
            ("output", "outputs/x-1.png"),
        ]))
        .unwrap();
        assert!(
            matches!(done.state, JobState::Completed(Output::Blob(ref k)) if k == "outputs/x-1.png")
        );
        assert_eq!(
            (
                done.metrics.queue_time,
                done.metrics.inference_time,
                done.metrics.total_time
            ),
            (Some(0.3), Some(0.7), Some(1.0))
        );
        let failed = job_view(&record(&[
            ("state", "FAILED"),
            ("submitted", "1000"),
            ("finished", "1500"),
            ("error", "boom"),
            ("fault", "flaky"),
        ]))
        .unwrap();
        assert!(matches!(failed.state, JobState::Failed(ref e) if e == "boom"));
        assert_eq!(failed.fault.as_deref(), Some("flaky"));
    }
}
