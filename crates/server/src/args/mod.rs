//! `upres serve` settings: each one a flag with an `UPRES_*` environment variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

mod cluster;
mod emulation;
mod parse;

use crate::engine_args::EngineArgs;

pub use self::cluster::ClusterArgs;
pub use self::emulation::EmulationArgs;
use self::parse::seconds;
use crate::fetch::FetchConfig;
use crate::upscaler::EngineKind;
use crate::worker::WorkerConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on. The default only accepts local connections; use 0.0.0.0 to expose.
    #[arg(long, env = "UPRES_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "UPRES_PORT", default_value_t = 8765)]
    pub port: u16,
    /// Base of the absolute URLs the server returns (status_url, response_url, output), e.g.
    /// https://upres.example.org. Without it they are built from the request's
    /// X-Forwarded-Proto / X-Forwarded-Host / Host headers.
    #[arg(long, env = "UPRES_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Accepted x-api-key values, comma-separated. With no key (here or in --api-keys-file) the
    /// server runs open.
    #[arg(
        long,
        env = "UPRES_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,
    /// File with one accepted API key per line (blank lines and lines starting with # ignored).
    #[arg(long, env = "UPRES_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Allow image URLs that resolve to loopback, private, link-local, unspecified or multicast
    /// addresses (for local set-ups). Off by default.
    #[arg(long, env = "UPRES_ALLOW_PRIVATE_URLS")]
    pub allow_private_urls: bool,
    /// Model used when a request does not name one (its `model` field).
    #[arg(long, env = "UPRES_MODEL", default_value = upres_engine::catalog::DEFAULT_MODEL)]
    pub model: String,
    /// Jobs run at the same time (each on its own blocking thread).
    #[arg(long, env = "UPRES_WORKERS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
    /// Jobs admitted but not started yet (v1 and v2 share the queue); beyond it submits get 429.
    #[arg(long, env = "UPRES_QUEUE_DEPTH", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub queue_depth: u32,
    /// Seconds a v2 job (record and output) is kept after submission.
    #[arg(long, env = "UPRES_RESULT_TTL", default_value = "3600", value_parser = seconds)]
    pub result_ttl: Duration,
    /// Bytes of finished outputs kept in memory; outputs beyond it are written to --spool-dir.
    #[arg(long, env = "UPRES_OUTPUT_MEMORY_BYTES", default_value_t = 512 << 20)]
    pub output_memory_bytes: usize,
    /// Folder for outputs beyond --output-memory-bytes (default: a fresh temporary folder,
    /// removed at exit). Spooled files are deleted when their job expires.
    #[arg(long, env = "UPRES_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Largest request body in bytes (default: room for --max-input-bytes as base64).
    #[arg(long, env = "UPRES_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds allowed to receive a request body.
    #[arg(long, env = "UPRES_BODY_TIMEOUT", default_value = "60", value_parser = seconds)]
    pub body_timeout: Duration,
    /// Seconds a client has to send a request's head (request line and headers), counted from
    /// its first byte, or from the connection's opening for its first request; past it the
    /// connection is closed (slowloris and silent connections).
    #[arg(long, env = "UPRES_HEADER_READ_TIMEOUT", default_value = "10", value_parser = seconds)]
    pub header_read_timeout: Duration,
    /// Seconds a connection may sit idle between requests before the server closes it.
    #[arg(long, env = "UPRES_KEEP_ALIVE_TIMEOUT", default_value = "30", value_parser = seconds)]
    pub keep_alive_timeout: Duration,
    /// Seconds allowed to download an image URL, redirects included.
    #[arg(long, env = "UPRES_FETCH_TIMEOUT", default_value = "30", value_parser = seconds)]
    pub fetch_timeout: Duration,
    /// Seconds allowed to connect to an image URL's host.
    #[arg(long, env = "UPRES_FETCH_CONNECT_TIMEOUT", default_value = "5", value_parser = seconds)]
    pub fetch_connect_timeout: Duration,
    /// Redirects followed when downloading an image URL.
    #[arg(long, env = "UPRES_FETCH_MAX_REDIRECTS", default_value_t = 3)]
    pub fetch_max_redirects: usize,
    /// Seconds a v1 (synchronous) request may take, download and queue wait included; past it
    /// the answer is 504 and the job is dropped.
    #[arg(long, env = "UPRES_SYNC_DEADLINE", default_value = "120", value_parser = seconds)]
    pub sync_deadline: Duration,
    /// Seconds to let running jobs and open requests finish after Ctrl-C / SIGTERM.
    #[arg(long, env = "UPRES_SHUTDOWN_TIMEOUT", default_value = "30", value_parser = seconds)]
    pub shutdown_timeout: Duration,
    /// What jobs run on: `model` (the super-resolution models), or for load tests a plain
    /// resize that keeps the whole image contract at a fraction of the cost: `fast-lanczos`,
    /// `fast-nearest`. A fast engine is named on every response (`x-upres-engine`) and on
    /// /health.
    #[arg(long = "engine", env = "UPRES_ENGINE", value_enum, default_value_t = EngineKind::Model)]
    pub engine_kind: EngineKind,
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub emulation: EmulationArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

impl ServeArgs {
    /// How image URLs are downloaded.
    pub fn fetch(&self) -> FetchConfig {
        FetchConfig {
            allow_private: self.allow_private_urls,
            max_redirects: self.fetch_max_redirects,
            timeout: self.fetch_timeout,
            connect_timeout: self.fetch_connect_timeout,
            max_bytes: self.engine.max_input_bytes,
        }
    }

    /// How many jobs run at once.
    pub fn workers(&self) -> WorkerConfig {
        WorkerConfig {
            workers: self.workers,
            capacity: self.emulation.capacity(self.workers),
        }
    }

    /// The body limit: the engine's input limit as base64 (4/3) plus room for the other fields.
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
            .unwrap_or(self.engine.max_input_bytes / 3 * 4 + (64 << 10))
    }

    /// Keys from --api-keys and --api-keys-file, blanks dropped.
    pub fn load_api_keys(&self) -> std::io::Result<Vec<String>> {
        let mut keys: Vec<String> = self.api_keys.iter().map(|k| k.trim().to_string()).collect();
        if let Some(path) = &self.api_keys_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("API keys file {}: {e}", path.display()))
            })?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.starts_with('#'))
                    .map(str::to_string),
            );
        }
        keys.retain(|k| !k.is_empty());
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn parses_seconds_and_keys() {
        let keys = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(keys.path(), "# team keys\nfrom-file\n\n  spaced  \n").unwrap();
        let cli = Cli::parse_from([
            "upres",
            "--api-keys",
            "a,b, ,c",
            "--api-keys-file",
            keys.path().to_str().unwrap(),
            "--sync-deadline",
            "0.25",
        ]);
        assert_eq!(cli.serve.sync_deadline, Duration::from_millis(250));
        assert_eq!(
            cli.serve.load_api_keys().unwrap(),
            ["a", "b", "c", "from-file", "spaced"]
        );
        assert!(Cli::try_parse_from(["upres", "--result-ttl", "soon"]).is_err());
        assert!(Cli::try_parse_from(["upres", "--workers", "0"]).is_err());
    }
}
