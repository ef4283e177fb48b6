#!/usr/bin/env python3
"""Tile sizes by measurement: for each model, bare session runs on photo crops of several tile
sizes (each in its own process: `examples/tile_probe.rs`), interleaved over rounds; prints the
time per useful megapixel relative to the model's 192 px tile measured in the same run, and the
working memory per input pixel (the largest seen, over sizes and rounds), which goes into
models/manifest.json as `tiling.bytes_per_pixel` (for a split model, the trunk's; its tail's
per feature pixel of a strip as `tiling.tail.bytes_per_pixel`).

    cargo build --release -p upres-benches --example tile_probe
    benches/tiles.py [--rounds 2] [--models span,esrgan-slim] [--sizes 128,192,256,384,512]

stdlib only; run from the checkout after scripts/setup.sh.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

OVERLAP = 16
# Native scale to sweep per model (the larger one where there are two: it needs more memory).
MODELS = {
    "span": 4,
    "esrgan-slim": 4,
    "esrgan-slim-int8": 2,
    "esrgan-medium": 4,
    "esrgan-thick": 4,
    "realesr-general-x4v3": 4,
    "realesrgan-x4plus": 4,
    "waifu2x-photo": 2,
}
# The slow models get smaller tiles only: a 512 px RRDB tile runs for minutes.
SLOW = {"esrgan-thick": 256, "realesrgan-x4plus": 192}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--sizes", default="96,128,192,256,384,512")
    ap.add_argument("--probe", default="target/release/examples/tile_probe")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    models = args.models.split(",")
    points = [(m, t) for m in models for t in sizes if t <= SLOW.get(m, 10**9)]
    seen = {}
    for r in range(args.rounds):
        for model, tile in points:
            out = subprocess.run(
                [args.probe, model, str(MODELS[model]), str(tile), "2"],
                check=True, capture_output=True, text=True,
            ).stdout
            # A split model's probe prints its tail's line first: merged into one result.
            result = {k: v for line in out.splitlines() for k, v in json.loads(line).items()}
            seen.setdefault((model, tile), []).append(result)
            print(f"round {r + 1}: {out.strip()}", file=sys.stderr)
    print(f"# tile sizes, {datetime.date.today()}, {os.cpu_count()} cores, {args.rounds} rounds")
    print("| model | tile | time per useful Mpx vs 192 px | KiB per input px |")
    print("|---|---|---|---|")
    memory, tail_memory = {}, {}
    for model in models:
        per_mpx = {
            tile: min(r["seconds"] for r in seen[(model, tile)]) / (tile - OVERLAP) ** 2
            for tile in sizes
            if (model, tile) in seen
        }
        base = per_mpx.get(192)
        for tile, t in per_mpx.items():
            bpp = max(r["bytes_per_px"] for r in seen[(model, tile)])
            memory[model] = max(memory.get(model, 0), bpp)
            for r in seen[(model, tile)]:
                if "tail_bytes_per_px" in r:
                    tail_memory[model] = max(tail_memory.get(model, 0), r["tail_bytes_per_px"])
            rel = f"{t / base:.2f}x" if base else "-"
            print(f"| {model} | {tile} | {rel} | {bpp / 1024:.2f} |")
    print("\nbytes_per_pixel for the manifest (largest seen, rounded up to 256):")
    def rounded(bpp):
        return -(-int(bpp) // 256) * 256

    for model, bpp in memory.items():
        print(f"  {model}: {rounded(bpp)}")
    for model, bpp in tail_memory.items():
        print(f"  {model}: tail.bytes_per_pixel {rounded(bpp)}")


if __name__ == "__main__":
    main()
