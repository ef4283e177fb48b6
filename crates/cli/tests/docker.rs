//! The Dockerfiles (CPU and CUDA), checked without a Docker daemon:
//! - hadolint (pinned in docker/requirements.txt, installed into `.venv` by scripts/setup.sh)
//!   at warning level;
//! - the final stage of each replayed on the host: its COPYs into a scratch root, its RUN, ENV
//!   and USER, its ENTRYPOINT + CMD started there, its HEALTHCHECK polled until healthy, then
//!   one v1 call. (The build stages run `scripts/setup.sh` and `cargo build`, which `make
//!   test` runs on the host itself; the CUDA image's GPU runtime is fetched by
//!   scripts/test-tools.sh. Only cargo-chef's caching is left to a real Docker build.)
//! - the apt pins of the build stage resolve in Debian bookworm;
//! - the CUDA file's build stages are the CPU file's, plus the GPU runtime.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{exchange, v1_request, workspace};

const DOCKERFILES: [&str; 2] = ["docker/Dockerfile", "docker/Dockerfile.cuda"];

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

/// One instruction: its keyword and its arguments, continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
struct Instruction {
    keyword: String,
    args: String,
}

/// The stages of a Dockerfile, each starting with its FROM.
fn stages(dockerfile: &str) -> Vec<Vec<Instruction>> {
    let text = std::fs::read_to_string(workspace().join(dockerfile)).unwrap();
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for line in logical.iter().filter(|l| !l.trim().is_empty()) {
        let (keyword, args) = line.split_once(' ').unwrap_or((line, ""));
        let instruction = Instruction {
            keyword: keyword.to_uppercase(),
            args: args.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("FROM first").push(instruction);
    }
    stages
}

fn json_words(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not a JSON list ({e}): {args}"))
}

/// Whether the tests run as root (asked once: replays call it for every command).
fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        let id = Command::new("id").arg("-u").output().unwrap();
        String::from_utf8_lossy(&id.stdout).trim() == "0"
    })
}

fn copy_all(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_all(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}

/// What the image would run, set up under a scratch root on the host.
struct Replay {
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
    user: Option<(u32, u32)>,
    healthcheck: Vec<String>,
    command: Vec<String>,
}

impl Replay {
    /// Replays the final stage's instructions; `None` when a file it copies is not on this
    /// host (outside CI only: under `CI=true` that fails).
    fn final_stage(dockerfile: &str) -> Option<Replay> {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            root.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mut replay = Replay {
            root,
            env: Vec::new(),
            user: None,
            healthcheck: Vec::new(),
            command: Vec::new(),
        };
        let mut entrypoint = Vec::new();
        let mut cmd = Vec::new();
        for instruction in stages(dockerfile).pop().unwrap().into_iter().skip(1) {
            let args = instruction.args.as_str();
            match instruction.keyword.as_str() {
                "COPY" => {
                    let words: Vec<&str> = args.split(' ').collect();
                    let ["--from=build", source, target] = words[..] else {
                        panic!("COPY {args}: the replay knows COPY --from=build only");
                    };
                    let relative = source.strip_prefix("/src/").unwrap();
                    let on_host = match relative {
                        "target/release/upres" => PathBuf::from(env!("CARGO_BIN_EXE_upres")),
                        other => workspace().join(other),
                    };
                    if !on_host.exists() {
                        assert!(
                            std::env::var("CI").is_err(),
                            "{} missing: run scripts/test-tools.sh",
                            on_host.display()
                        );
                        eprintln!("{} missing: skipped {dockerfile}", on_host.display());
                        return None;
                    }
                    copy_all(&on_host, &replay.rooted(target));
                }
                "RUN" => {
                    let mut command = args
                        .split(' ')
                        .map(|w| match w.starts_with('/') {
                            true => replay.rooted(w).display().to_string(),
                            false => w.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ");
                    if !is_root() {
                        // Only root can give files away; the server then runs as this user.
                        command = command.replace("chown ", "true ");
                    }
                    let status = Command::new("sh").args(["-c", &command]).status().unwrap();
                    assert!(status.success(), "RUN {args}");
                }
                "ENV" => {
                    for pair in args.split(' ') {
                        let (name, value) = pair.split_once('=').unwrap();
                        let value = match value.starts_with('/') {
                            true => replay.rooted(value).display().to_string(),
                            false => value.to_string(),
                        };
                        replay.env.push((name.to_string(), value));
                    }
                }
                "USER" => {
                    let (uid, gid) = args.split_once(':').unwrap();
                    replay.user = Some((uid.parse().unwrap(), gid.parse().unwrap()));
                }
                "HEALTHCHECK" => {
                    replay.healthcheck = json_words(args.split_once("CMD ").unwrap().1);
                }
                "ENTRYPOINT" => entrypoint = json_words(args),
                "CMD" => cmd = json_words(args),
                "EXPOSE" => {}
                other => panic!("the replay does not know {other}"),
            }
        }
        replay.command = [entrypoint, cmd].concat();
        Some(replay)
    }

    fn rooted(&self, path: &str) -> PathBuf {
        self.root.path().join(path.trim_start_matches('/'))
    }

    /// A command as the image runs it: its environment only (PATH through the image's
    /// folders), in its root folder, as its user when this host can switch users. The
    /// server listens on 127.0.0.1 and a free port here instead of 0.0.0.0:8765.
    fn command(&self, words: &[String], port: u16) -> Command {
        let mut command = Command::new(&words[0]);
        command
            .args(&words[1..])
            .current_dir(self.root.path())
            .env_clear()
            .env(
                "PATH",
                format!("{}:/usr/bin:/bin", self.rooted("/usr/local/bin").display()),
            )
            .env("HOME", self.root.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("UPRES_HOST", "127.0.0.1")
            .env("UPRES_PORT", port.to_string());
        if let (Some((uid, gid)), true) = (self.user, is_root()) {
            command.uid(uid).gid(gid);
        }
        command
    }
}

/// Starts the image's command from its replayed root, waits until its HEALTHCHECK passes,
/// upscales once, and checks the logs are JSON and say `expected` (when given).
fn run_the_image(dockerfile: &str, expected: Option<&str>) {
    let Some(replay) = Replay::final_stage(dockerfile) else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut server = replay
        .command(&replay.command, port)
        .stdout(Stdio::null())
        .stderr(logs.reopen().unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let healthy = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break Err(format!("the server exited: {status}"));
        }
        let check = replay.command(&replay.healthcheck, port).output().unwrap();
        if check.status.success() {
            break Ok(());
        }
        if started.elapsed() > Duration::from_secs(120) {
            break Err("not healthy within the start period".to_string());
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let address = format!("127.0.0.1:{port}");
    let answer = healthy.map(|()| exchange(&address, &v1_request(&address, None)));
    let _ = server.kill();
    let _ = server.wait();
    let log = std::fs::read_to_string(logs.path()).unwrap();
    let (head, body) = answer.unwrap_or_else(|e| panic!("{dockerfile}: {e}\n{log}"));
    assert!(
        head.starts_with("http/1.1 200"),
        "{dockerfile}: {head}\n{log}"
    );
    let output = image::load_from_memory(&body).unwrap();
    assert_eq!((output.width(), output.height()), (12, 8), "{dockerfile}");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("{dockerfile}: not a JSON log line ({e}): {line}"));
    }
    if let Some(expected) = expected {
        assert!(
            log.contains(expected),
            "{dockerfile}: no {expected:?} in\n{log}"
        );
    }
}

#[test]
fn dockerfiles_pass_hadolint_at_warning_level() {
    for dockerfile in DOCKERFILES {
        let lint = hadolint(&workspace().join(dockerfile));
        assert!(
            lint.status.success(),
            "{dockerfile}: {}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
    }
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
fn the_cpu_image_runs_on_the_host() {
    run_the_image("docker/Dockerfile", None);
}

/// With no GPU here, the GPU runtime loads, its CUDA provider cannot, and the server says so
/// and runs on the CPU.
#[test]
fn the_cuda_image_runs_on_the_host_without_a_gpu() {
    let gpu = Path::new("/dev/nvidia0").exists();
    run_the_image(
        "docker/Dockerfile.cuda",
        (!gpu).then_some("libonnxruntime_providers_cuda.so"),
    );
}

#[test]
fn the_images_check_their_health_run_unprivileged_and_log_json() {
    let help = Command::new(env!("CARGO_BIN_EXE_upres"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for dockerfile in DOCKERFILES {
        let Some(replay) = Replay::final_stage(dockerfile) else {
            continue;
        };
        assert_eq!(replay.healthcheck, ["upres", "healthcheck"], "{dockerfile}");
        assert_eq!(replay.user, Some((10001, 10001)), "{dockerfile}");
        assert!(
            replay
                .env
                .contains(&("UPRES_JSON_OUTPUT".into(), "true".into())),
            "{dockerfile}: JSON logs by default"
        );
        // Every UPRES_* variable the image sets is one the binary reads.
        for (name, _) in &replay.env {
            assert!(
                help.contains(name.as_str()) || name == "UPRES_HOME",
                "{dockerfile}: {name} is not a setting of upres serve"
            );
        }
    }
}

/// The CUDA file builds exactly as the CPU one, except that its set-up also fetches the GPU
/// runtime; the apt pins both use exist in Debian bookworm.
#[test]
fn the_build_stages_agree_and_their_apt_pins_resolve() {
    let (cpu, cuda) = (stages(DOCKERFILES[0]), stages(DOCKERFILES[1]));
    assert_eq!(cpu.len(), cuda.len());
    let build = cpu.len() - 2;
    assert_eq!(cpu[..build], cuda[..build], "chef and planner stages");
    assert_eq!(cpu[build].len(), cuda[build].len());
    assert!(cpu[build]
        .iter()
        .any(|i| i.args.contains("cargo chef cook")));
    for (a, b) in cpu[build].iter().zip(&cuda[build]) {
        if a.args.starts_with("scripts/setup.sh") {
            assert_eq!(b.args, format!("UPRES_GPU_RUNTIME=1 {}", a.args));
        } else {
            assert_eq!(a, b);
        }
    }
    let pins: Vec<&str> = cpu[build]
        .iter()
        .filter(|i| i.args.contains("apt-get install"))
        .flat_map(|i| i.args.split(' '))
        .filter(|w| w.contains('='))
        .collect();
    assert!(pins.len() >= 3, "{pins:?}");
    let Ok(simulated) = Command::new("apt-get")
        .args(["install", "--simulate", "--no-install-recommends"])
        .args(&pins)
        .output()
    else {
        assert!(std::env::var("CI").is_err(), "apt-get is required in CI");
        return;
    };
    let said = String::from_utf8_lossy(&simulated.stderr);
    assert!(!said.contains("was not found"), "{pins:?}: {said}");
}
