//! What every request shares.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use crate::args::ServeArgs;
use crate::cluster::Cluster;
use crate::conn::Timeouts;
use crate::emulation::{Accounts, Emulation};
use crate::error::ServerError;
use crate::fetch::Fetcher;
use crate::jobs::JobStore;
use crate::queue::Queue;
use crate::store::Store;
use crate::upscaler::Upscaler;

/// Whether the default model is loaded (GET /health).
#[derive(Debug, Clone)]
pub enum Readiness {
    Loading,
    Ready,
    Failed(String),
}

#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Shared>);

pub(crate) struct Shared {
    /// Accepted keys; empty means the server is open.
    pub accounts: Accounts,
    pub emulation: Emulation,
    /// The admin API's key; without it there is no admin API.
    pub admin_key: Option<String>,
    /// The fast engine's name, shown on every response, when jobs run on one.
    pub stand_in: Option<&'static str>,
    pub public_url: Option<String>,
    /// `http://<bound address>`, for requests without a usable Host header.
    pub local_url: OnceLock<String>,
    pub default_model: String,
    pub body_limit: usize,
    pub body_timeout: Duration,
    /// How long a connection may take to send a request head, or sit idle.
    pub timeouts: Timeouts,
    pub sync_deadline: Duration,
    pub shutdown_timeout: Duration,
    pub fetcher: Arc<Fetcher>,
    /// Where v2 jobs live: this process's memory or a cluster's Redis.
    pub jobs: Store,
    /// This process's own job store: the queue's, for v2 jobs without a cluster.
    pub local_jobs: Arc<JobStore>,
    pub queue: Queue,
    pub upscaler: Arc<dyn Upscaler>,
    pub readiness: RwLock<Readiness>,
}

impl AppState {
    /// Builds the shared state and starts the background tasks (job purge, dispatcher): call it
    /// inside a Tokio runtime. `upscaler` is what jobs run: the engine in production.
    pub fn new(args: &ServeArgs, upscaler: Arc<dyn Upscaler>) -> Result<Self, ServerError> {
        let public_url = args
            .public_url
            .as_deref()
            .map(check_public_url)
            .transpose()?;
        let jobs = JobStore::start(
            args.result_ttl,
            args.output_memory_bytes,
            args.spool_dir.as_deref(),
        )
        .map_err(|e| ServerError::Config(format!("spool folder: {e}")))?;
        let fetcher = Arc::new(Fetcher::new(args)?);
        let cluster = Cluster::open(
            &args.cluster,
            args.result_ttl,
            args.queue_depth,
            fetcher.clone(),
        )?;
        if let Some(cluster) = &cluster {
            tokio::spawn(cluster.clone().sweep_blobs());
        }
        let store = match &cluster {
            Some(cluster) => Store::Redis(cluster.clone()),
            None => Store::Memory(jobs.clone()),
        };
        crate::metrics::handle();
        let emulation = &args.emulation;
        let seed = emulation
            .chaos_seed
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
        tracing::info!(
            seed,
            "chaos seed (set --chaos-seed / UPRES_CHAOS_SEED to repeat a run)"
        );
        let config = |e: String| ServerError::Config(e);
        Ok(AppState(Arc::new(Shared {
            accounts: Accounts::load(&args.load_api_keys()?, emulation.keys_file.as_deref())
                .map_err(config)?,
            emulation: Emulation::new(
                seed,
                emulation.rules().map_err(config)?,
                emulation.latency().map_err(config)?,
                emulation.cost().map_err(config)?,
                emulation.rate_limit_headers,
                emulation.allow_fault_headers,
            )
            .map_err(config)?,
            admin_key: emulation.admin_key.clone().filter(|k| !k.is_empty()),
            stand_in: upscaler.stand_in(),
            public_url,
            local_url: OnceLock::new(),
            default_model: args.model.clone(),
            body_limit: args.body_limit(),
            body_timeout: args.body_timeout,
            timeouts: Timeouts {
                header_read: args.header_read_timeout,
                keep_alive: args.keep_alive_timeout,
            },
            sync_deadline: args.sync_deadline,
            shutdown_timeout: args.shutdown_timeout,
            fetcher,
            queue: Queue::start(
                args.workers,
                emulation.capacity(args.workers),
                args.queue_depth,
                upscaler.clone(),
                jobs.clone(),
                cluster,
            ),
            jobs: store,
            local_jobs: jobs,
            upscaler,
            readiness: RwLock::new(Readiness::Loading),
        })))
    }

    /// v2 jobs on record (submitted and not expired).
    pub fn jobs_on_record(&self) -> usize {
        self.0.jobs.len()
    }

    pub fn readiness(&self) -> Readiness {
        self.0
            .readiness
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn set_readiness(&self, readiness: Readiness) {
        *self.0.readiness.write().unwrap_or_else(|p| p.into_inner()) = readiness;
    }
}

fn check_public_url(url: &str) -> Result<String, ServerError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ServerError::Config(format!("--public-url {url}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ServerError::Config(format!(
            "--public-url {url}: must be an http or https URL"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}
