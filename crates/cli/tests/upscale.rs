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

/// A tree of photos: `in/a.png`, `in/sub/b.png`, `in/sub/deeper/c.jpg`.
fn photo_tree(root: &Path) -> std::path::PathBuf {
    let inputs = root.join("in");
    std::fs::create_dir_all(inputs.join("sub/deeper")).unwrap();
    std::fs::copy(golden_png(), inputs.join("a.png")).unwrap();
    std::fs::copy(golden_png(), inputs.join("sub/b.png")).unwrap();
    image::open(golden_png())
        .unwrap()
        .to_rgb8()
        .save(inputs.join("sub/deeper/c.jpg"))
        .unwrap();
    inputs
}

fn size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

#[test]
fn folders_warn_about_subfolders_and_recursive_keeps_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = photo_tree(dir.path());
    let flat = dir.path().join("flat");
    let run = upres(&[
        inputs.to_str().unwrap(),
        "-s",
        "2",
        "-o",
        flat.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains("sub") && stderr.contains("--recursive"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&flat).unwrap().count(), 1);

    let tree = dir.path().join("tree");
    let run = upres(&[
        inputs.to_str().unwrap(),
        "-r",
        "-s",
        "2",
        "-o",
        tree.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for output in ["a_x2.png", "sub/b_x2.png", "sub/deeper/c_x2.png"] {
        assert_eq!(size(&tree.join(output)), (80, 48), "{output}");
    }

    // Again with --skip-existing: nothing is redone, a new input is.
    let before = std::fs::metadata(tree.join("sub/b_x2.png"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::copy(golden_png(), inputs.join("sub/new.png")).unwrap();
    let run = upres(&[
        inputs.to_str().unwrap(),
        "-r",
        "-s",
        "2",
        "--skip-existing",
        "-o",
        tree.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("skipped 3 of 4"), "{stderr}");
    assert_eq!(
        std::fs::metadata(tree.join("sub/b_x2.png"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    assert_eq!(size(&tree.join("sub/new_x2.png")), (80, 48));
}

/// Sizes other than x2 and x4: a factor, a width, a box; each checked against a Lanczos3
/// resize of the input, which a model's output must resemble (and the exact size).
#[test]
fn any_factor_and_exact_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let input = golden_png();
    let input_str = input.to_str().unwrap();
    for (flags, name, expected) in [
        (vec!["--scale", "3"], "x3.png", (120, 72)),
        (vec!["--scale", "1.5"], "x1.5.png", (60, 36)),
        (vec!["--width", "100"], "w100.png", (100, 60)),
        (vec!["--width", "50", "--height", "50"], "box.png", (50, 30)),
        (vec!["--scale", "8"], "x8.png", (320, 192)),
    ] {
        let out = dir.path().join(name);
        let run = upres(&[&[input_str, "-o", out.to_str().unwrap()], flags.as_slice()].concat());
        assert!(
            run.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(size(&out), expected, "{flags:?}");
        let output = image::open(&out).unwrap().to_rgb8();
        let lanczos = image::imageops::resize(
            &image::open(&input).unwrap().to_rgb8(),
            expected.0,
            expected.1,
            image::imageops::FilterType::Lanczos3,
        );
        let mean_difference = output
            .as_raw()
            .iter()
            .zip(lanczos.as_raw())
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / output.as_raw().len() as f64;
        assert!(
            mean_difference < 12.0,
            "{flags:?}: {mean_difference} levels from Lanczos"
        );
    }
    let named = upres(&[
        input_str,
        "--scale",
        "3",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert!(named.status.success());
    assert_eq!(
        size(&dir.path().join("input_astronaut_24x40_x3.png")),
        (120, 72)
    );

    for (flags, message) in [
        (vec!["--scale", "17"], "from 1 to 16"),
        (vec!["--scale", "0.5"], "from 1 to 16"),
        (vec!["--scale", "3", "--width", "10"], "cannot be used with"),
    ] {
        let run = upres(&[&[input_str], flags.as_slice()].concat());
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
}

/// `--model PATH.onnx`: one of our converted models copied elsewhere runs as a user's own (its
/// scale probed, the default tiling), close to the same model run by id; files that are not
/// super-resolution models are refused with what is wrong.
#[test]
fn a_model_file_of_ones_own() {
    let dir = tempfile::tempdir().unwrap();
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models");
    let mine = dir.path().join("my-upscaler.onnx");
    std::fs::copy(models.join("esrgan-slim-x2.onnx"), &mine).unwrap();
    let by_path = dir.path().join("by_path.png");
    let by_id = dir.path().join("by_id.png");
    let input = golden_png();
    let input = input.to_str().unwrap();
    for (model, out, scale) in [
        (mine.to_str().unwrap(), &by_path, "2"),
        ("esrgan-slim", &by_id, "2"),
    ] {
        let run = run_upres(&[
            "upscale",
            input,
            "--model",
            model,
            "-s",
            scale,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let (a, b) = (
        image::open(&by_path).unwrap().to_rgb8(),
        image::open(&by_id).unwrap().to_rgb8(),
    );
    assert_eq!(a.dimensions(), (80, 48));
    assert_eq!(a.dimensions(), b.dimensions());
    let mean = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    // Only the border pad differs (the default 16 px against esrgan-slim's measured 8).
    assert!(mean < 1.0, "{mean} levels apart");

    // x3 from the x2-only file: the chain x2, x2, then a resample.
    let x3 = dir.path().join("x3.png");
    let run = run_upres(&[
        "upscale",
        input,
        "--model",
        mine.to_str().unwrap(),
        "-s",
        "3",
        "-o",
        x3.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(size(&x3), (120, 72));

    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"not a model").unwrap();
    for (file, reason) in [
        (junk.to_str().unwrap().to_string(), "cannot load it"),
        (
            models.join("open-nsfw.onnx").to_str().unwrap().to_string(),
            "not [batch, 3, height, width]",
        ),
        (
            dir.path().join("absent.onnx").to_str().unwrap().to_string(),
            "no such file",
        ),
    ] {
        let run = run_upres(&[
            "upscale",
            input,
            "--model",
            &file,
            "-o",
            dir.path().join("x.png").to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains("not a super-resolution model") && stderr.contains(reason),
            "{file}: {stderr}"
        );
    }
}
