//! Benchmarks live in `benches/`; see `benches/run.sh`.

mod inputs;
pub mod quality;

pub use inputs::{env_list, photo_crop};
