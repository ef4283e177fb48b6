#!/usr/bin/env bash
# Benchmarks and the large-image memory check. Run from anywhere in the checkout after
# scripts/setup.sh. Prints ratios measured in this run (the machines are noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p upres-benches --bench engine_overhead
cargo bench -p upres-benches --bench latency
cargo test --release -p upres-engine --test memory -- --ignored --nocapture
