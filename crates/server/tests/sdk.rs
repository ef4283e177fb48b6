//! The official Segmind Python SDK (segmind==1.3.0, pinned with hashes in
//! tests/sdk/requirements.txt, installed into the workspace `.venv` by scripts/setup.sh) against
//! a real server on 127.0.0.1 with the real engine. The checks are in tests/sdk/sdk_driver.py.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use upres_server::EngineKind;

/// `.venv/bin/python`, checked to hold the pinned SDK.
fn sdk_python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let check = Command::new(&python)
        .args([
            "-c",
            "from importlib.metadata import version; assert version('segmind') == '1.3.0'",
        ])
        .status();
    assert!(
        check.is_ok_and(|s| s.success()),
        "{} lacks segmind 1.3.0: run scripts/setup.sh",
        python.display()
    );
    python
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
    run_driver(&python, "sdk_driver.py", &env, "all SDK checks passed").await;
}

/// Runs a driver script of tests/sdk with `env`; fails unless it succeeds and prints `done`.
async fn run_driver(python: &Path, script: &str, env: &[(&str, String)], done: &str) {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(script);
    let output = tokio::process::Command::new(python)
        .arg(driver)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("SEGMIND_API_KEY")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(done));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_sees_the_hosted_errors_in_load_testing_mode() {
    let python = sdk_python();
    let keys = tempfile::tempdir().unwrap();
    let keys_file = keys.path().join("keys.toml");
    std::fs::write(
        &keys_file,
        [
            ("free", "plan = 'free'"),
            ("broke", "credits = 0"),
            ("blocked", "models = []"),
            ("flaky", ""),
            ("doomed", ""),
            ("steady", ""),
        ]
        .map(|(name, extra)| format!("[[keys]]\nkey = 'sk-{name}'\nname = '{name}'\n{extra}\n"))
        .concat(),
    )
    .unwrap();
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
        "emulation_driver.py",
        &env,
        "all emulation checks passed",
    )
    .await;
}
