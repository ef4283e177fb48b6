//! What requests share, built once from the settings: one field per part, each taken by the
//! handlers and middleware that use it through axum's `FromRef` (a handler's signature says
//! what it reads).

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::FromRef;

use crate::admission::Admission;
use crate::args::ServeArgs;
use crate::auth::Accounts;
use crate::conn::{BodyLimits, Timeouts};
use crate::emulation::Emulation;
use crate::error::{Invalid, ServerError};
use crate::fetch::Fetcher;
use crate::jobs::{JobBackend, MemoryJobs, RedisJobs};
use crate::queue::Queue;
use crate::upscaler::Upscaler;
use crate::worker::Workers;

/// Whether the default model is loaded (GET /health).
#[derive(Debug, Clone)]
pub enum Readiness {
    Loading,
    Ready,
    Failed(String),
}

/// What the server says about itself: its model, its URLs, its readiness.
pub struct Service {
    pub default_model: String,
    /// The fast engine's name, shown on every response, when jobs run on one.
    pub stand_in: Option<&'static str>,
    pub public_url: Option<String>,
    /// `http://<bound address>`, for requests without a usable Host header.
    pub local_url: OnceLock<String>,
    pub sync_deadline: Duration,
    pub shutdown_timeout: Duration,
    /// How long a connection may take to send a request head, or sit idle.
    pub timeouts: Timeouts,
    /// The admin API's key; without it there is no admin API.
    pub admin_key: Option<String>,
    pub upscaler: Arc<dyn Upscaler>,
    readiness: RwLock<Readiness>,
}

impl Service {
    pub fn readiness(&self) -> Readiness {
        self.readiness
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_readiness(&self, readiness: Readiness) {
        *self.readiness.write().unwrap_or_else(|p| p.into_inner()) = readiness;
    }
}

#[derive(Clone)]
pub struct AppState {
    pub(crate) service: Arc<Service>,
    /// Accepted keys; empty means the server is open.
    pub(crate) accounts: Arc<Accounts>,
    pub(crate) emulation: Arc<Emulation>,
    pub(crate) admission: Arc<Admission>,
    /// Where v2 jobs live: this process's memory or a cluster's Redis.
    pub(crate) jobs: Arc<dyn JobBackend>,
    pub(crate) queue: Arc<Queue>,
    pub(crate) workers: Arc<Workers>,
    pub(crate) body: BodyLimits,
}

macro_rules! sub_state {
    ($($field:ident: $type:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $type {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    )*};
}

sub_state!(
    service: Arc<Service>,
    accounts: Arc<Accounts>,
    emulation: Arc<Emulation>,
    admission: Arc<Admission>,
    jobs: Arc<dyn JobBackend>,
    queue: Arc<Queue>,
    workers: Arc<Workers>,
    body: BodyLimits,
);

impl AppState {
    /// Builds the shared state and starts the background tasks (job purge, workers): call it
    /// inside a Tokio runtime. `upscaler` is what jobs run: the engine in production.
    pub fn new(args: &ServeArgs, upscaler: Arc<dyn Upscaler>) -> Result<Self, ServerError> {
        Self::build(args, upscaler).map_err(|Invalid(reason)| ServerError::Config(reason))
    }

    fn build(args: &ServeArgs, upscaler: Arc<dyn Upscaler>) -> Result<Self, Invalid> {
        let public_url = args
            .public_url
            .as_deref()
            .map(check_public_url)
            .transpose()?;
        let jobs: Arc<dyn JobBackend> =
            match args.cluster.redis(args.result_ttl, args.queue_depth)? {
                Some(config) => Arc::new(RedisJobs::open(config)?),
                None => Arc::new(
                    MemoryJobs::start(
                        args.result_ttl,
                        args.output_memory_bytes,
                        args.spool_dir.as_deref(),
                    )
                    .map_err(|e| Invalid(format!("spool folder: {e}")))?,
                ),
            };
        crate::metrics::handle();
        let flags = &args.emulation;
        let seed = flags
            .chaos_seed
            .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
        tracing::info!(
            seed,
            "chaos seed (set --chaos-seed / UPRES_CHAOS_SEED to repeat a run)"
        );
        let emulation = Arc::new(Emulation::new(
            seed,
            flags.rules()?,
            flags.latency()?,
            flags.cost()?,
            flags.rate_limit_headers,
            flags.allow_fault_headers,
        )?);
        let accounts = Accounts::load(
            &args.load_api_keys().map_err(|e| Invalid(e.to_string()))?,
            flags.keys_file.as_deref(),
        )?;
        let workers = args.workers();
        let queue = Arc::new(Queue::new(args.queue_depth, workers.capacity));
        let fetcher = Arc::new(Fetcher::new(&args.fetch())?);
        let workers = Workers::start(
            workers,
            queue.clone(),
            jobs.clone(),
            upscaler.clone(),
            fetcher,
        );
        Ok(AppState {
            service: Arc::new(Service {
                default_model: args.model.clone(),
                stand_in: upscaler.stand_in(),
                public_url,
                local_url: OnceLock::new(),
                sync_deadline: args.sync_deadline,
                shutdown_timeout: args.shutdown_timeout,
                timeouts: Timeouts {
                    header_read: args.header_read_timeout,
                    keep_alive: args.keep_alive_timeout,
                },
                admin_key: flags.admin_key.clone().filter(|k| !k.is_empty()),
                upscaler: upscaler.clone(),
                readiness: RwLock::new(Readiness::Loading),
            }),
            accounts: Arc::new(accounts),
            admission: Arc::new(Admission::new(
                upscaler,
                queue.clone(),
                jobs.clone(),
                emulation.clone(),
                args.sync_deadline,
            )),
            emulation,
            jobs,
            queue,
            workers,
            body: BodyLimits {
                limit: args.body_limit(),
                timeout: args.body_timeout,
            },
        })
    }

    /// v2 jobs on record (submitted and not expired).
    pub fn jobs_on_record(&self) -> usize {
        self.jobs.len()
    }

    pub fn readiness(&self) -> Readiness {
        self.service.readiness()
    }
}

fn check_public_url(url: &str) -> Result<String, Invalid> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Invalid(format!("--public-url {url}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Invalid(format!(
            "--public-url {url}: must be an http or https URL"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}
