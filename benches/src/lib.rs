//! Benchmarks live in `benches/`; see `benches/run.sh`.

mod inputs;
mod process;
pub mod quality;

pub use inputs::{env_list, photo_crop};
pub use process::status_kib;
