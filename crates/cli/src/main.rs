//! `upres`: upscale image files offline (`upres upscale`) or serve the Segmind-compatible
//! HTTP API (`upres serve`).

mod healthcheck;
mod models;
mod upscale;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "upres",
    version,
    about = "Image super-resolution (x2, x4) with ONNX models"
)]
struct Cli {
    /// Log one JSON object per line (for log collectors) instead of text.
    #[arg(long, global = true, env = "UPRES_JSON_OUTPUT")]
    json_output: bool,
    /// What to log: a level (error, warn, info, debug, trace) or tracing directives such as
    /// `info,upres_server=debug`. Default: the RUST_LOG variable, else info.
    #[arg(long, global = true, env = "UPRES_LOG_LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Logs go to stderr: text (coloured on a terminal) or JSON lines.
fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let directives = cli
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .map_err(|e| anyhow::anyhow!("--log-level {directives}: {e}"))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.json_output {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Upscale files, globs and folders of images.
    Upscale(upscale::UpscaleArgs),
    /// Serve the Segmind-compatible HTTP API (/v1 sync, /v2 async).
    Serve(Box<upres_server::ServeArgs>),
    /// List the models: installed and installable, with scales, look, speed and license.
    Models(models::ModelsArgs),
    /// Exit 0 if a running server's /health answers 200, else 1 (for container health checks).
    Healthcheck(healthcheck::HealthcheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = init_logging(&cli) {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    let outcome = match cli.command {
        Command::Upscale(args) => upscale::run(args),
        Command::Models(args) => models::run(args).map(|()| true),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Serve(args) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(upres_server::serve(*args))
                    .map_err(anyhow::Error::from)
            })
            .map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
