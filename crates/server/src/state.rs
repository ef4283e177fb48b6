//! What every request shares.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use crate::args::ServeArgs;
use crate::error::ServerError;
use crate::fetch::Fetcher;
use crate::jobs::JobStore;
use crate::queue::Queue;
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
    pub keys: Vec<String>,
    pub public_url: Option<String>,
    /// `http://<bound address>`, for requests without a usable Host header.
    pub local_url: OnceLock<String>,
    pub default_model: String,
    pub body_limit: usize,
    pub body_timeout: Duration,
    pub sync_deadline: Duration,
    pub shutdown_timeout: Duration,
    pub fetcher: Fetcher,
    pub jobs: Arc<JobStore>,
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
        Ok(AppState(Arc::new(Shared {
            keys: args.load_api_keys()?,
            public_url,
            local_url: OnceLock::new(),
            default_model: args.model.clone(),
            body_limit: args.body_limit(),
            body_timeout: args.body_timeout,
            sync_deadline: args.sync_deadline,
            shutdown_timeout: args.shutdown_timeout,
            fetcher: Fetcher::new(args)?,
            queue: Queue::start(
                args.workers,
                args.queue_depth,
                upscaler.clone(),
                jobs.clone(),
            ),
            jobs,
            upscaler,
            readiness: RwLock::new(Readiness::Loading),
        })))
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
