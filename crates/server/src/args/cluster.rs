//! The cluster's flags: `--redis-url` and what goes with it.

use std::time::Duration;

use super::parse::seconds;
use crate::error::Invalid;
use crate::jobs::RedisConfig;

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
    #[arg(long, env = "UPRES_LEASE", default_value = "30", value_parser = seconds)]
    pub lease: Duration,
    /// Runs of a job lost to stopped replicas before it is FAILED.
    #[arg(long, env = "UPRES_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
}

impl ClusterArgs {
    /// The Redis backend's settings, when `--redis-url` is set.
    pub fn redis(&self, ttl: Duration, depth: u32) -> Result<Option<RedisConfig>, Invalid> {
        let Some(url) = &self.redis_url else {
            return Ok(None);
        };
        let blob_store = self
            .blob_store
            .clone()
            .ok_or_else(|| Invalid::from("--redis-url needs --blob-store file:///shared/dir"))?;
        Ok(Some(RedisConfig {
            url: url.clone(),
            blob_store,
            prefix: self.redis_prefix.clone(),
            lease: self.lease,
            max_attempts: self.max_attempts,
            ttl,
            depth,
        }))
    }
}
