//! Bria's official Python client (bria-client==0.3.1, pinned with hashes in
//! tests/bria/requirements.txt, installed into the workspace `.venv` by scripts/setup.sh)
//! against a real server on 127.0.0.1: on the real engine, and in load-testing mode sharing the
//! queue and the rate limits with Segmind's API. The checks are in tests/bria/bria_driver.py.

mod common;

use base64::Engine as _;
use common::python::{pinned_python, run_driver};
use common::*;
use upres_server::EngineKind;

/// Runs tests/bria/bria_driver.py in `mode` against `server`, with a `width` x `height` PNG.
async fn drive(server: &TestServer, mode: &str, (width, height): (u32, u32)) {
    let python = pinned_python("bria-client", "0.3.1");
    let image = base64::engine::general_purpose::STANDARD.encode(png(width, height, true));
    let env = [
        ("UPRES_BASE_URL", server.url.clone()),
        ("UPRES_MODE", mode.to_string()),
        ("UPRES_IMAGE", image),
        ("UPRES_IMAGE_SIZE", format!("{width}x{height}")),
    ];
    run_driver(
        &python,
        "bria/bria_driver.py",
        &env,
        "all Bria client checks passed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_bria_client_works_unchanged() {
    // Every moderated call is refused: the real classifier's score is always >= 0.
    let strict = ["--moderation-threshold", "0"];
    let engine = upres_engine::Engine::new(&args(&strict).engine.config()).unwrap();
    let flags = ["--model", "esrgan-slim", "--api-keys", "bria-key"];
    let server = TestServer::start(&flags, std::sync::Arc::new(engine)).await;
    drive(&server, "engine", (20, 14)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bria_and_segmind_calls_share_the_queue_and_the_limits() {
    let keys = tempfile::tempdir().unwrap();
    let keys_file = keys_file(
        keys.path(),
        &[("steady", ""), ("doomed", ""), ("free", "plan = 'free'")],
    );
    let flags = [
        "--engine",
        "fast-nearest",
        "--keys-file",
        keys_file.to_str().unwrap(),
        "--latency",
        "fixed",
        "--latency-median",
        "1.5",
        "--capacity",
        "1",
        "--queue-depth",
        "1",
        "--fault",
        "bria@doomed:1:fail=GPU exploded",
    ];
    let server = TestServer::start(&flags, EngineKind::FastNearest.upscaler(engine())).await;
    drive(&server, "emulation", (12, 10)).await;
}
