//! Benchmarks live in `benches/`; see `benches/run.sh`.
