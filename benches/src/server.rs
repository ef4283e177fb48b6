//! A real server in this process, on its own Tokio runtime and a 127.0.0.1 socket, and a tiny
//! file server beside it for image URLs.

use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::routing::get;
use clap::Parser;
use upres_engine::EngineConfig;
use upres_server::{AppState, EngineArgs, Readiness, ServeArgs, Upscaler};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Settings as `upres serve` would parse them from these flags (and the `UPRES_*` environment).
pub fn serve_args(flags: &[&str]) -> ServeArgs {
    Cli::parse_from(std::iter::once("upres").chain(flags.iter().copied())).serve
}

#[derive(Parser)]
struct EngineCli {
    #[command(flatten)]
    engine: EngineArgs,
}

/// The engine's settings as `upres` builds them without flags: the defaults and the `UPRES_*`
/// environment.
pub fn engine_config() -> EngineConfig {
    EngineCli::parse_from(["upres"]).engine.config()
}

/// Starts the server with `args` and `upscaler` on a new runtime with `threads` workers, on
/// 127.0.0.1 (any free port), and waits until the default model is loaded. Returns its URL and
/// the runtime: dropping it stops the server.
pub fn start_server(
    args: &ServeArgs,
    upscaler: Arc<dyn Upscaler>,
    threads: usize,
) -> (String, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    let url = runtime.block_on(async {
        let state = AppState::new(args, upscaler).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let ready = state.clone();
        tokio::spawn(upres_server::run(listener, state, std::future::pending()));
        loop {
            match ready.readiness() {
                Readiness::Ready => break,
                Readiness::Failed(err) => panic!("the model failed to load: {err}"),
                Readiness::Loading => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        url
    });
    (url, runtime)
}

/// Serves each `(name, PNG bytes)` at `/<name>` on 127.0.0.1, on `runtime`; returns the base URL.
pub fn file_server(runtime: &tokio::runtime::Runtime, files: Vec<(String, Vec<u8>)>) -> String {
    let mut app = axum::Router::new();
    for (name, bytes) in files {
        let bytes = bytes::Bytes::from(bytes);
        app = app.route(
            &format!("/{name}"),
            get(move || async move { ([(header::CONTENT_TYPE, "image/png")], bytes) }),
        );
    }
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    })
}
