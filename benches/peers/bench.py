"""The peer benchmark's driver: runs every runner on every (model, size) as separate processes,
in interleaved repetitions (for each repetition: for each (model, size): the runners in a
shuffled order), then writes a markdown table and the raw results as JSON.

    python bench.py [--models a,b] [--sizes 256,512] [--reps 5] [--model-reps id=N,...]
                    [--runners upres,ort,ncnn,tfjs,torch] [--budget-minutes M] [--out DIR]

Run it through run.sh, which installs the runners into the scratch folder first. Needs numpy
and Pillow (for the output-agreement check), so it runs in the scratch venv.
"""

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# upres-exact: upres with `--tile-context 0`, no border pad and no context, so it computes exactly
# what the whole-image peers compute (their output, zero-padding frame included).
RUNNERS = ["upres", "upres-exact", "ort", "ncnn", "tfjs", "torch"]
LABEL = {
    "upres": "**upres**",
    "upres-exact": "upres `--tile-context 0`",
    "ort": "ONNX Runtime (Python)",
    "ncnn": "ncnn (Python)",
    "tfjs": "UpscalerJS, TF.js WASM",
    "torch": "PyTorch CPU",
}
TORCH_MODELS = ("realesrgan-x4plus", "realesr-general-x4v3")
# Each model's slowest runner takes minutes per image at 512x512: one repetition by default.
SLOW_REPS = {"realesrgan-x4plus": 1, "esrgan-thick": 1}


def cpu_info():
    """Model name, clock (MHz, /proc/cpuinfo's "cpu MHz" of the first core: on this VM the
    nominal clock; a turbo clock would make the real peak higher), usable cores, and the fp32
    FLOP per cycle per core: 32 with AVX2 + FMA (two 8-wide FMA pipes), 64 with AVX-512."""
    text = open("/proc/cpuinfo").read()
    field = lambda k: next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith(k)), "")
    flags = field("flags").split()
    per_cycle = 64 if "avx512f" in flags else 32 if ("avx2" in flags and "fma" in flags) else 16
    mhz = float(field("cpu MHz") or 0)
    cores = len(os.sched_getaffinity(0))
    return {
        "model": field("model name"),
        "mhz": mhz,
        "cores": cores,
        "flop_per_cycle_per_core": per_cycle,
        "peak_gflops": cores * per_cycle * mhz / 1000,
        "isa": [f for f in ("avx2", "fma", "avx512f") if f in flags],
    }


def applicable(runner, model, have):
    if runner not in have:
        return False
    if runner == "ncnn":
        return model["converter"] == "ncnn"
    if runner == "tfjs":
        return model["converter"] == "tfjs"
    if runner == "torch":
        return model["id"] in TORCH_MODELS
    return True


def command(runner, model, inp, warm, out, scratch):
    io = ["--model", model, "--input", inp, "--warmup", warm, "--output", out]
    py = os.path.join(scratch, "venv/bin/python")
    if runner in ("upres", "upres-exact"):
        exact = ["--tile-context", "0"] if runner == "upres-exact" else []
        return [os.path.join(ROOT, "target/release/examples/peer")] + io + exact
    if runner in ("ort", "ncnn"):
        return [py, os.path.join(HERE, "runner.py"), runner] + io + ["--ncnn-dir", os.path.join(scratch, "ncnn")]
    if runner == "torch":
        return [os.path.join(scratch, "torchvenv/bin/python"), os.path.join(HERE, "runner.py"), "torch"] + io + [
            "--torch-dir", os.path.join(scratch, "torch")]
    if runner == "tfjs":
        # TF.js's threaded WASM build cannot start in Node (see README): one thread.
        return ["node", os.path.join(scratch, "node/runner.mjs")] + io + ["--threads", "1"]
    raise ValueError(runner)


def run_one(cmd, timeout):
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout} s"}
    wall = time.perf_counter() - t
    for line in reversed(p.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                r = json.loads(line)
                r["process_seconds"] = wall
                return r
            except json.JSONDecodeError:
                pass
    return {"error": f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[-600:]}"}


def psnr(a, b, border=0):
    if a.shape != b.shape:
        return None
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def load(path):
    return np.asarray(Image.open(path).convert("RGB")) if os.path.exists(path) else None


def fmt_psnr(v):
    return "-" if v is None else "identical" if v == float("inf") else f"{v:.1f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="", help="comma-separated ids (default: every x4 model installed)")
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--model-reps", default=",".join(f"{k}={v}" for k, v in SLOW_REPS.items()),
                   help="per-model repetitions, id=N,... (default: %(default)s)")
    p.add_argument("--runners", default=",".join(RUNNERS))
    p.add_argument("--budget-minutes", type=float, default=0, help="start no repetition after this")
    p.add_argument("--timeout", type=float, default=3600, help="per process, seconds")
    p.add_argument("--scratch", default=os.path.join(ROOT, ".cache/peers"))
    p.add_argument("--out", default="", help="results folder (default: <scratch>/results/<UTC time>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--render", metavar="DIR", help="only rewrite DIR/results.md from DIR/results.json")
    args = p.parse_args()
    if args.render:
        raw = json.load(open(os.path.join(args.render, "results.json")))
        results = {(x["model"], x["size"], x["runner"]): x["runs"] for x in raw["runs"]}
        manifest = json.load(open(os.path.join(ROOT, "models/manifest.json")))
        models = [m for m in manifest["models"] if m["id"] in raw["reps"]]
        stamp = datetime.datetime.fromisoformat(raw["date"])
        report(results, models, raw["sizes"], raw["reps"], raw["cpu"], raw["flops"], stamp,
               raw["stopped_early"], args.render)
        return

    scratch = os.path.abspath(args.scratch)
    flops_all = json.load(open(os.path.join(scratch, "prepared.json")))["flops"]
    manifest = json.load(open(os.path.join(ROOT, "models/manifest.json")))
    models = [m for m in manifest["models"] if m.get("kind") == "sr" and 4 in m.get("scales", [])
              and os.path.exists(os.path.join(ROOT, f".cache/models/{m['id']}-x4.onnx"))]
    if args.models:
        wanted = args.models.split(",")
        models = [m for m in models if m["id"] in wanted]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    have = set(args.runners.split(","))
    if not os.path.exists(os.path.join(scratch, "torchvenv/bin/python")):
        have.discard("torch")
    if not os.path.exists(os.path.join(scratch, "node/node_modules")):
        have.discard("tfjs")
    model_reps = {k: int(v) for k, v in (kv.split("=") for kv in args.model_reps.split(",") if kv)}
    reps = {m["id"]: min(args.reps, model_reps.get(m["id"], args.reps)) for m in models}
    stamp = datetime.datetime.now(datetime.timezone.utc)
    out = args.out or os.path.join(scratch, "results", stamp.strftime("%Y%m%dT%H%M%SZ"))
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    cpu = cpu_info()
    rng = random.Random(args.seed)
    inputs = os.path.join(scratch, "inputs")
    warm = os.path.join(inputs, "warm32.png")

    results = {}  # (model, size, runner) -> list of run dicts
    started = time.time()
    stopped_early = False
    for rep in range(max(reps.values(), default=0)):
        if args.budget_minutes and time.time() - started > args.budget_minutes * 60:
            stopped_early = True
            print(f"budget reached before repetition {rep + 1}", flush=True)
            break
        for m in models:
            if rep >= reps[m["id"]]:
                continue
            for size in sizes:
                runners = [r for r in RUNNERS if applicable(r, m, have)]
                rng.shuffle(runners)
                for r in runners:
                    img = os.path.join(out, "images", f"{m['id']}-{size}-{r}.png")
                    cmd = command(r, m["id"], os.path.join(inputs, f"astronaut-{size}.png"), warm, img, scratch)
                    res = run_one(cmd, args.timeout)
                    res["rep"] = rep
                    results.setdefault((m["id"], size, r), []).append(res)
                    shown = f"{res['seconds']:.2f} s, {res['peak_rss_kib'] / 1024:.0f} MiB" if "seconds" in res else res["error"]
                    print(f"rep {rep + 1}/{reps[m['id']]} {m['id']} {size} {r}: {shown}", flush=True)

    report(results, models, sizes, reps, cpu, {m["id"]: flops_all.get(m["id"], {}) for m in models},
           stamp, stopped_early, out)


def report(results, models, sizes, reps, cpu, flops_by_model, stamp, stopped_early, out):
    """Writes out/results.md and out/results.json from the runs, and prints the tables."""
    rows = []
    versions = {}
    for m in models:
        for size in sizes:
            flops = flops_by_model.get(m["id"], {}).get(str(size))
            base = None
            cells = {}
            for r in RUNNERS:
                runs = [x for x in results.get((m["id"], size, r), []) if "seconds" in x]
                errors = [x["error"] for x in results.get((m["id"], size, r), []) if "error" in x]
                if not runs:
                    cells[r] = {"errors": errors} if errors else None
                    continue
                secs = [x["seconds"] for x in runs]
                infer = [x.get("infer_seconds") for x in runs if x.get("infer_seconds") is not None]
                cell = {
                    "n": len(runs),
                    "min": min(secs),
                    "median": statistics.median(secs),
                    "infer_median": statistics.median(infer) if infer else None,
                    "peak_rss_mib": max(x["peak_rss_kib"] for x in runs) / 1024,
                    "errors": errors,
                }
                if flops and cell["infer_median"]:
                    cell["gflops"] = flops / 1e9 / cell["infer_median"]
                    cell["peak_percent"] = 100 * cell["gflops"] / cpu["peak_gflops"]
                versions[r] = runs[0].get("version")
                cells[r] = cell
                if r == "upres":
                    base = cell["median"]
            # Output agreement (first repetition's images).
            ref = load(os.path.join(out, "images", f"{m['id']}-{size}-upres.png"))
            ort_img = load(os.path.join(out, "images", f"{m['id']}-{size}-ort.png"))
            for r, cell in cells.items():
                if not cell or "median" not in cell:
                    continue
                img = load(os.path.join(out, "images", f"{m['id']}-{size}-{r}.png"))
                if img is not None:
                    cell["psnr_vs_upres"] = psnr(img, ref) if ref is not None and r != "upres" else None
                    cell["psnr_vs_upres_interior"] = psnr(img, ref, 32) if ref is not None and r != "upres" else None
                    cell["psnr_vs_ort"] = psnr(img, ort_img) if ort_img is not None and r != "ort" else None
                    if ort_img is not None and r != "ort" and img.shape == ort_img.shape:
                        cell["max_abs_diff_vs_ort"] = int(np.abs(img.astype(int) - ort_img.astype(int)).max())
                if base:
                    cell["ratio"] = cell["median"] / base
            rows.append({"model": m["id"], "size": size, "flops": flops, "cells": cells})

    # Markdown.
    date = stamp.strftime("%Y-%m-%d")
    names = {"upres": "upres", "ort": "onnxruntime", "ncnn": "ncnn", "tfjs": "@tensorflow/tfjs + tfjs-backend-wasm (UpscalerJS 1.0.0)", "torch": "torch"}
    ver = ", ".join(f"{names[r]} {versions[r]}" + (" (ONNX Runtime 1.31.1)" if r == "upres" else "")
                    for r in RUNNERS if versions.get(r) and r != "upres-exact")
    lines = [
        f"Measured {date} on {cpu['model']}, {cpu['cores']} cores, {'+'.join(cpu['isa']).upper()}; "
        f"fp32 peak {cpu['peak_gflops']:.0f} GFLOP/s = {cpu['cores']} cores x {cpu['flop_per_cycle_per_core']} FLOP/cycle "
        f"x {cpu['mhz'] / 1000:.2f} GHz (/proc/cpuinfo). Versions: {ver}. "
        f"Repetitions per model: {', '.join(f'{k} {v}' for k, v in reps.items())}"
        + (" (time budget reached: fewer)" if stopped_early else "") + ".",
        "",
        "Summary: median end-to-end seconds (ratio to upres) / peak RSS MiB; - where the peer does not run the model.",
        "",
        "| model | input | " + " | ".join(LABEL[r] for r in RUNNERS) + " |",
        "|---|---|" + "---|" * len(RUNNERS),
    ]
    for row in rows:
        cols = []
        for r in RUNNERS:
            c = row["cells"].get(r)
            if not c:
                cols.append("-")
            elif "median" not in c:
                cols.append("failed")
            else:
                ratio = f" ({c['ratio']:.2f}x)" if c.get("ratio") and r != "upres" else ""
                cols.append(f"{c['median']:.2f} s{ratio} / {c['peak_rss_mib']:.0f}")
        lines.append(f"| {row['model']} | {row['size']}x{row['size']} | " + " | ".join(cols) + " |")
    lines += [
        "",
        "Details: min and median end-to-end seconds, median ratio to upres, median seconds of the model phase alone "
        "(no decode/encode), peak RSS, and achieved GFLOP/s: the whole image's graph FLOPs over the model phase's median "
        "(for upres the useful rate: its tiles' context and overlap are extra work on top).",
        "",
        "| model | input | runner | min s | median s | x upres | model s | peak RSS MiB | GFLOP/s | % of peak |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for r in RUNNERS:
            c = row["cells"].get(r)
            name = f"{row['model']} | {row['size']}x{row['size']} | {LABEL[r]}"
            if c is None:
                if not any(applicable(r, m, set(RUNNERS)) for m in models if m["id"] == row["model"]):
                    continue
                lines.append(f"| {name} | - | - | - | - | - | - | - |")
                continue
            if "median" not in c:
                lines.append(f"| {name} | failed | | | | | | |")
                continue
            g = f"{c['gflops']:.0f}" if c.get("gflops") else "-"
            pp = f"{c['peak_percent']:.0f}%" if c.get("peak_percent") else "-"
            ratio = f"{c['ratio']:.2f}" if c.get("ratio") else "-"
            infer = f"{c['infer_median']:.2f}" if c.get("infer_median") else "-"
            lines.append(f"| {name} | {c['min']:.2f} | {c['median']:.2f} | {ratio} | {infer} | {c['peak_rss_mib']:.0f} | {g} | {pp} |")
    lines += [
        "",
        "Output agreement (first repetition): PSNR in dB of each runner's 8-bit output against upres's (whole image / "
        "without a 32 px border, where upres's mirrored context and the whole-image runs' zero padding differ) and against "
        "ONNX Runtime's whole-image run (max abs difference in 8-bit levels).",
        "",
        "| model | input | runner | vs upres | vs upres, interior | vs ONNX Runtime | max diff vs ONNX Runtime |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for r in RUNNERS:
            c = row["cells"].get(r)
            if not c or "median" not in c or r == "upres":
                continue
            md = c.get("max_abs_diff_vs_ort")
            lines.append(f"| {row['model']} | {row['size']}x{row['size']} | {LABEL[r]} | {fmt_psnr(c.get('psnr_vs_upres'))} | "
                         f"{fmt_psnr(c.get('psnr_vs_upres_interior'))} | {fmt_psnr(c.get('psnr_vs_ort'))} | {'-' if md is None else md} |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table)
    raw = {
        "date": stamp.isoformat(),
        "cpu": cpu,
        "python": platform.python_version(),
        "versions": versions,
        "reps": reps,
        "sizes": sizes,
        "flops": flops_by_model,
        "stopped_early": stopped_early,
        "rows": rows,
        "runs": [{"model": k[0], "size": k[1], "runner": k[2], "runs": v} for k, v in results.items()],
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(raw, f, indent=1, default=str)
    print()
    print(table)
    print(f"results: {out}/results.md, results.json, images/")


if __name__ == "__main__":
    main()
