#!/usr/bin/env bash
# Benchmarks (speed; quality against the reference table; the server under concurrency), the
# large-image peak-memory check, and the tile-size, tile-context and border-pad sweeps behind
# models/manifest.json.
# Run from anywhere in the checkout after scripts/setup.sh. Prints ratios measured in this run
# (the machines are noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "benchmarks of $(date -u +%Y-%m-%d) on $(nproc) cores"
cargo build --release -p upres-benches --example tile_probe
benches/tiles.py
cargo bench -p upres-benches --bench engine_overhead
cargo bench -p upres-benches --bench cold_start
cargo bench -p upres-benches --bench latency
cargo bench -p upres-benches --bench quality
cargo bench -p upres-benches --bench load
cargo bench -p upres-benches --bench server_throughput
for model in $(ls .cache/models | sed -n 's/^\(.*\)-x[24]\.onnx$/\1/p' | sort -u); do
    UPRES_MEMORY_MODEL=$model cargo bench -p upres-benches --bench memory
done
cargo bench -p upres-engine --bench tile_context
cargo bench -p upres-engine --bench border_pad
