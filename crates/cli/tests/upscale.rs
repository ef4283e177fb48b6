//! `upres upscale` as a user runs it: the real binary over real files.

use std::path::Path;
use std::process::Command;

fn golden_png() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden/input_astronaut_24x40.png")
}

/// The `upres` binary run with `args`.
fn run_upres(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_upres"))
        .args(args)
        .output()
        .unwrap()
}

/// `upres upscale` with the fast model.
fn upres(args: &[&str]) -> std::process::Output {
    run_upres(&[&["upscale", "--model", "esrgan-slim"], args].concat())
}

#[test]
fn single_file_to_named_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("photo_x4.png");
    let run = upres(&[
        golden_png().to_str().unwrap(),
        "--scale",
        "4",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let img = image::open(&out).unwrap();
    assert_eq!((img.width(), img.height()), (160, 96));
}

#[test]
fn folder_and_glob_with_a_bad_file_reports_it_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    std::fs::copy(golden_png(), inputs.join("a.png")).unwrap();
    std::fs::copy(golden_png(), inputs.join("b.png")).unwrap();
    std::fs::write(inputs.join("broken.jpg"), b"not a jpeg at all").unwrap();
    let outdir = dir.path().join("out");
    let run = upres(&[
        inputs.to_str().unwrap(),
        "--scale",
        "2",
        "--format",
        "webp",
        "-o",
        outdir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(1),
        "a failed file must fail the run: {stderr}"
    );
    assert!(
        stderr.contains("broken.jpg"),
        "the failure names the file: {stderr}"
    );
    for name in ["a_x2.webp", "b_x2.webp"] {
        let img = image::open(outdir.join(name)).unwrap();
        assert_eq!((img.width(), img.height()), (80, 48), "{name}");
    }
    assert!(!outdir.join("broken_x2.webp").exists());

    let glob = format!("{}/*.png", inputs.display());
    let outdir2 = dir.path().join("out2");
    let run = upres(&[&glob, "--no-alpha", "-o", outdir2.to_str().unwrap()]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(std::fs::read_dir(&outdir2).unwrap().count(), 2);
}

#[test]
fn missing_runtime_gives_one_clear_message() {
    let run = run_upres(&[
        "upscale",
        golden_png().to_str().unwrap(),
        "--ort-library",
        "/nonexistent/libonnxruntime.so",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        stderr.contains("/nonexistent/libonnxruntime.so") && stderr.contains("setup"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `upres models` with the models installed, then with an empty models folder; and the
/// unknown-model error that points to it.
#[test]
fn models_lists_installed_and_installable_models() {
    let list = |args: &[&str]| {
        let run = run_upres(&[&["models"], args].concat());
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        String::from_utf8(run.stdout).unwrap()
    };
    let installed = list(&[]);
    let span = installed
        .lines()
        .find(|l| l.starts_with("span (default)"))
        .unwrap_or_else(|| panic!("no default span row:\n{installed}"));
    for column in ["yes", "x2 x4", "faithful", "MP/s", "Apache-2.0"] {
        assert!(span.contains(column), "{column} missing from {span}");
    }
    assert!(installed.contains("realesr-general-x4v3") && installed.contains("GAN"));
    let empty = tempfile::tempdir().unwrap();
    let none = list(&["--models-dir", empty.path().to_str().unwrap()]);
    assert!(
        none.lines().skip(1).filter(|l| l.contains(" no ")).count() >= 7,
        "{none}"
    );
    assert!(none.contains("scripts/setup.sh"), "{none}");

    let run = run_upres(&[
        "upscale",
        golden_png().to_str().unwrap(),
        "--model",
        "no-such-model",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown model 'no-such-model'") && stderr.contains("upres models"),
        "{stderr}"
    );
}
