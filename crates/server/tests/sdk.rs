//! The official Segmind Python SDK (segmind==1.3.0, pinned with hashes in
//! tests/sdk/requirements.txt, installed into the workspace `.venv` by scripts/setup.sh) against
//! a real server on 127.0.0.1 with the real engine. The checks are in tests/sdk/sdk_driver.py.

mod common;

use std::path::PathBuf;

use common::python::{pinned_python, run_driver};
use common::*;
use upres_server::EngineKind;

/// `.venv/bin/python`, checked to hold the pinned SDK.
fn sdk_python() -> PathBuf {
    pinned_python("segmind", "1.3.0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_works_unchanged() {
    let python = sdk_python();
    let (width, height) = (20, 14);
    let host = image_host(png(width, height, true)).await;
    let flags = [
        "--model",
        "esrgan-slim",
        "--api-keys",
        "sdk-test-key",
        "--allow-private-urls",
    ];
    let server = TestServer::start(&flags, engine()).await;

    let env = [
        ("UPRES_BASE_URL", format!("{}/v1", server.url)),
        ("UPRES_API_KEY", "sdk-test-key".to_string()),
        ("UPRES_IMAGE_URL", format!("{host}/img.png")),
        ("UPRES_MISSING_URL", format!("{host}/missing")),
        ("UPRES_IMAGE_SIZE", format!("{width}x{height}")),
    ];
    run_driver(&python, "sdk/sdk_driver.py", &env, "all SDK checks passed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_sees_the_hosted_errors_in_load_testing_mode() {
    let python = sdk_python();
    let keys = tempfile::tempdir().unwrap();
    let keys_file = keys_file(
        keys.path(),
        &[
            ("free", "plan = 'free'"),
            ("broke", "credits = 0"),
            ("blocked", "models = []"),
            ("flaky", ""),
            ("doomed", ""),
            ("steady", ""),
        ],
    );
    let flags = [
        "--engine",
        "fast-nearest",
        "--keys-file",
        keys_file.to_str().unwrap(),
        "--latency",
        "lognormal",
        "--latency-scale",
        "0.01",
        "--fault",
        "v1@flaky:1:502",
        "--fault",
        "submit@flaky:1:500",
        "--fault",
        "submit@doomed:1:fail=GPU exploded",
    ];
    let server = TestServer::start(&flags, EngineKind::FastNearest.upscaler(engine())).await;
    let env = [
        ("UPRES_BASE_URL", format!("{}/v1", server.url)),
        ("UPRES_IMAGE", data_uri(&png(12, 10, true))),
    ];
    run_driver(
        &python,
        "sdk/emulation_driver.py",
        &env,
        "all emulation checks passed",
    )
    .await;
}
