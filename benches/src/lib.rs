//! Benchmarks live in `benches/`; see `benches/run.sh`.

mod inputs;
mod process;
pub mod quality;
mod server;

pub use inputs::{env_list, env_or, median, photo_crop};
pub use process::status_kib;
pub use server::{engine_config, file_server, serve_args, start_server};
