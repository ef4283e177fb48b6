//! `upres`: upscale image files offline (`upres upscale`) or serve the Segmind-compatible
//! HTTP API (`upres serve`).

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Upscale files, globs and folders of images.
    Upscale(upscale::UpscaleArgs),
    /// Serve the Segmind-compatible HTTP API (/v1 sync, /v2 async).
    Serve(Box<upres_server::ServeArgs>),
    /// List the models: installed and installable, with scales, look, speed and license.
    Models(models::ModelsArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("UPRES_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Upscale(args) => upscale::run(args),
        Command::Models(args) => models::run(args).map(|()| true),
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
