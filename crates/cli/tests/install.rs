//! The binary outside the checkout: `scripts/install.sh` puts it, ONNX Runtime and the models
//! in place, and it works from any folder; without them it says where it looked.

use std::path::Path;
use std::process::Command;

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

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

#[test]
fn the_installed_binary_works_from_any_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (prefix, home, work) = (
        tmp.path().join("prefix"),
        tmp.path().join("home"),
        tmp.path().join("work"),
    );
    std::fs::create_dir(&work).unwrap();
    let install = Command::new(workspace().join("scripts/install.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_upres")])
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
