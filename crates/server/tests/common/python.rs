//! The official Python clients (installed into the workspace `.venv` by scripts/setup.sh, pinned
//! with hashes) driven by scripts of their own against a real server.

use std::path::{Path, PathBuf};

/// `.venv/bin/python`, checked to hold `dist` at exactly `version`.
pub fn pinned_python(dist: &str, version: &str) -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let check = std::process::Command::new(&python)
        .arg("-c")
        .arg(format!(
            "from importlib.metadata import version; assert version('{dist}') == '{version}'"
        ))
        .status();
    assert!(
        check.is_ok_and(|s| s.success()),
        "{} lacks {dist} {version}: run scripts/setup.sh",
        python.display()
    );
    python
}

/// Runs `tests/<script>` with `env`; fails unless it succeeds and prints `done`.
pub async fn run_driver(python: &Path, script: &str, env: &[(&str, String)], done: &str) {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let output = tokio::process::Command::new(python)
        .arg(driver)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("SEGMIND_API_KEY")
        .env_remove("BRIA_API_TOKEN")
        .env_remove("BRIA_BASE_URL")
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
