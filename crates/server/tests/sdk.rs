//! The official Segmind Python SDK (segmind==1.3.0, pinned with hashes in
//! tests/sdk/requirements.txt, installed into the workspace `.venv` by scripts/setup.sh) against
//! a real server on 127.0.0.1 with the real engine. The checks are in tests/sdk/sdk_driver.py.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

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

    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/sdk_driver.py");
    let output = tokio::process::Command::new(python)
        .arg(driver)
        .env("UPRES_BASE_URL", format!("{}/v1", server.url))
        .env("UPRES_API_KEY", "sdk-test-key")
        .env("UPRES_IMAGE_URL", format!("{host}/img.png"))
        .env("UPRES_MISSING_URL", format!("{host}/missing"))
        .env("UPRES_IMAGE_SIZE", format!("{width}x{height}"))
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
        "SDK driver failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all SDK checks passed"));
}
