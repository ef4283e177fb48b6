//! The binary outside the checkout: `scripts/install.sh` puts it, ONNX Runtime and the models
//! in place, and it works from any folder; without them it says where it looked.

mod common;

use std::path::Path;
use std::process::Command;

use common::workspace;

/// `upres` run in `dir` with only the given upres settings in its environment.
fn upres_in(
    binary: &Path,
    dir: &Path,
    env: &[(&str, &Path)],
    args: &[&str],
) -> std::process::Output {
    let mut command = Command::new(binary);
    command.current_dir(dir).args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("UPRES_") || name == "XDG_DATA_HOME" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied()).output().unwrap()
}

/// `scripts/install.sh` the way a user runs it: `cargo install --path crates/cli` (into the
/// workspace's target folder, so the release build of this test run is reused).
#[test]
fn a_cargo_installed_binary_works_from_any_folder() {
    installed_binary_works_from_any_folder(&[]);
}

/// `scripts/install.sh --binary`: a copied, already built binary.
#[test]
fn a_copied_binary_works_from_any_folder() {
    installed_binary_works_from_any_folder(&["--binary", env!("CARGO_BIN_EXE_upres")]);
}

fn installed_binary_works_from_any_folder(install_args: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let (prefix, home, work) = (
        tmp.path().join("prefix"),
        tmp.path().join("home"),
        tmp.path().join("work"),
    );
    std::fs::create_dir(&work).unwrap();
    let mut install = Command::new(workspace().join("scripts/install.sh"));
    // As from a shell: without the variables `cargo test` sets, which would make cargo
    // rebuild what their build scripts watch.
    for (name, _) in std::env::vars() {
        if name.starts_with("CARGO_") && name != "CARGO_HOME" {
            install.env_remove(name);
        }
    }
    let install = install
        .args(install_args)
        .env("CARGO_TARGET_DIR", workspace().join("target"))
        .env("PREFIX", &prefix)
        .env("UPRES_HOME", &home)
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let binary = prefix.join("bin/upres");
    std::fs::copy(
        workspace().join("../shared/golden/input_astronaut_24x40.png"),
        work.join("in.png"),
    )
    .unwrap();

    let run = upres_in(
        &binary,
        &work,
        &[("UPRES_HOME", &home)],
        &[
            "upscale",
            "in.png",
            "--scale",
            "2",
            "--model",
            "esrgan-slim",
            "-o",
            "out.png",
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = image::open(work.join("out.png")).unwrap();
    assert_eq!((out.width(), out.height()), (80, 48));

    // Without an upres home the error says where it looked.
    let empty = tmp.path().join("empty");
    let run = upres_in(
        &binary,
        &work,
        &[("HOME", &empty)],
        &["upscale", "in.png", "-o", "out2.png"],
    );
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("looked for .cache/onnxruntime"), "{stderr}");
    assert!(
        stderr.contains(
            &empty
                .join(".local/share/upres/onnxruntime")
                .display()
                .to_string()
        ),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/install.sh"), "{stderr}");
}
