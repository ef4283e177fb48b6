#!/usr/bin/env bash
# Benchmarks (speed; quality against the reference table), the large-image memory check and
# the tile-context sweep behind models/manifest.json.
# Run from anywhere in the checkout after scripts/setup.sh. Prints ratios measured in this run
# (the machines are noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p upres-benches --bench engine_overhead
cargo bench -p upres-benches --bench latency
cargo bench -p upres-benches --bench quality
cargo bench -p upres-benches --bench load
cargo test --release -p upres-engine --test memory -- --ignored --nocapture
cargo test --release -p upres-engine --test tiling -- --ignored --nocapture
