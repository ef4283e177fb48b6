//! The Dockerfiles, checked without a Docker daemon: hadolint (pinned in
//! docker/requirements.txt, installed into `.venv` by scripts/setup.sh) at warning level, and
//! what the image relies on from this repository.

use std::path::Path;
use std::process::Command;

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn hadolint(dockerfile: &Path) -> std::process::Output {
    let hadolint = workspace().join(".venv/bin/hadolint");
    assert!(
        hadolint.exists(),
        "{} missing: run scripts/setup.sh",
        hadolint.display()
    );
    Command::new(hadolint)
        .args(["--no-color", "--failure-threshold", "warning"])
        .arg(dockerfile)
        .output()
        .unwrap()
}

#[test]
fn dockerfiles_pass_hadolint_at_warning_level() {
    let dockerfile = workspace().join("docker/Dockerfile");
    let lint = hadolint(&dockerfile);
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    // The lint can fail: an unpinned apt install is a warning.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        "FROM debian:bookworm-slim\nRUN apt-get install -y curl\n",
    )
    .unwrap();
    assert!(!hadolint(bad.path()).status.success());
}

#[test]
fn the_image_checks_its_health_runs_unprivileged_and_logs_json() {
    let text = std::fs::read_to_string(workspace().join("docker/Dockerfile")).unwrap();
    let runtime = text.rsplit("\nFROM ").next().unwrap();
    assert!(
        runtime.contains("CMD [\"upres\", \"healthcheck\"]"),
        "HEALTHCHECK through the binary"
    );
    assert!(
        runtime.contains("USER 10001:10001"),
        "a numeric non-root user"
    );
    assert!(
        runtime.contains("UPRES_JSON_OUTPUT=true"),
        "JSON logs by default"
    );
    assert!(text.contains("cargo chef cook"), "dependency caching");
    // Every UPRES_* variable the image sets is one the binary reads.
    let help = Command::new(env!("CARGO_BIN_EXE_upres"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for name in runtime
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("UPRES_"))
    {
        assert!(
            help.contains(name) || name == "UPRES_HOME",
            "{name} is not a setting of upres serve"
        );
    }
}
