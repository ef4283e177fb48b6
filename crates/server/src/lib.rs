//! upres-server: a local, drop-in reimplementation of the Segmind serverless API for the model
//! `bria-increase-resolution` (`/v1` synchronous, `/v2` asynchronous with polling), on the
//! upres engine.
//!
//! `upres serve` calls [`serve`]. Tests build an [`AppState`] around any [`Upscaler`] and
//! [`run`] it on a listener of their own.

mod admission;
mod args;
mod auth;
mod config_file;
mod conn;
pub mod emulation;
mod engine_args;
mod error;
mod fetch;
mod http;
mod jobs;
mod metrics;
mod playground;
mod queue;
mod state;
mod upscaler;
mod worker;

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use upres_engine::Engine;

pub use args::ServeArgs;
pub use engine_args::{EngineArgs, ModelsDir};
pub use error::{JobError, ServerError};
pub use http::{app, openapi_document};
pub use state::{AppState, Readiness};
pub use upres_request::{JobSpec, MODEL_SLUG};
pub use upscaler::{EngineKind, Finish, OfferedModel, Upscaler};

/// `upres serve`: loads the engine, listens, and serves until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<(), ServerError> {
    let engine = Engine::new(&args.engine.config()).map_err(JobError::from)?;
    if let Err(err) = engine.model(&args.model) {
        return Err(ServerError::Config(format!(
            "default model: {err}. Pick one with --model / UPRES_MODEL"
        )));
    }
    let upscaler = args.engine_kind.upscaler(Arc::new(engine));
    let state = AppState::new(&args, upscaler)?;
    let listener = TcpListener::bind((args.host, args.port))
        .await
        .map_err(|e| {
            ServerError::Config(format!("cannot listen on {}:{}: {e}", args.host, args.port))
        })?;
    run(listener, state, shutdown_signal()).await
}

/// Serves on `listener` until `shutdown` completes, then stops accepting, fails the jobs not
/// started yet, and lets running jobs and open requests finish within the shutdown timeout.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr()?;
    let service = state.service.clone();
    let _ = service.local_url.set(format!("http://{addr}"));
    if state.accounts.is_empty() {
        tracing::warn!(
            "no API key configured: the server is OPEN to anyone who can reach http://{addr}"
        );
    } else {
        tracing::info!(
            keys = state.accounts.len(),
            "x-api-key required on /v1 and /v2"
        );
    }
    tracing::info!(
        "listening on http://{addr} (default model {}, {} workers, queue depth {})",
        service.default_model,
        state.workers.workers(),
        state.queue.depth(),
    );
    if let Some(engine) = service.stand_in {
        tracing::warn!(
            engine,
            "load-testing engine: outputs are resized, not upscaled by a model"
        );
    }
    let warm = service.clone();
    tokio::task::spawn_blocking(move || {
        let model = &warm.default_model;
        match warm.upscaler.warm_up(model) {
            Ok(()) => {
                tracing::info!(model, "model loaded: ready");
                warm.set_readiness(Readiness::Ready);
            }
            Err(err) => {
                tracing::error!(model, error = %err, "model failed to load");
                warm.set_readiness(Readiness::Failed(err.to_string()));
            }
        }
    });

    let stop = CancellationToken::new();
    let mut server = tokio::spawn(
        axum::serve(
            conn::Acceptor::new(listener, service.timeouts),
            app(state.clone()).into_make_service_with_connect_info::<conn::Activity>(),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned())
        .into_future(),
    );
    tokio::select! {
        ended = &mut server => {
            state.jobs.close();
            return ended.map_err(|e| ServerError::Config(format!("server task: {e}")))?.map_err(ServerError::Io);
        }
        () = shutdown => {}
    }
    tracing::info!(
        "shutting down: no new connections, queued jobs dropped, running jobs get up to {} s",
        service.shutdown_timeout.as_secs_f64()
    );
    stop.cancel();
    let deadline = Instant::now() + service.shutdown_timeout;
    let (jobs_done, server_done) = tokio::join!(
        state.workers.close(deadline),
        tokio::time::timeout_at(deadline, server)
    );
    if !jobs_done {
        tracing::warn!("running jobs did not finish within the shutdown timeout");
    }
    state.jobs.release_running().await;
    if server_done.is_err() {
        tracing::warn!("open connections did not close within the shutdown timeout");
    }
    state.jobs.close();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
