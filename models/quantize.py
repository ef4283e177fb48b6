r"""Static int8 (QDQ) quantization of the super-resolution models, and its measurement.

Issue 10's int8 item: ONNX Runtime's static QDQ quantization of the fp32 models in
.cache/models, calibrated on scikit-image photos that are NOT in the quality bench (the bench
uses astronaut, chelsea, coffee, rocket and ihc), then the int8 - fp32 Y-PSNR delta with the
quality bench's protocol and the int8 / fp32 speed ratio with interleaved repetitions.

Needs onnxruntime (the Python package), onnx, numpy and Pillow (only for the quality
protocol's Pillow BICUBIC downscale), e.g. in a scratch venv:
    python3.11 -m venv /tmp/q/venv
    /tmp/q/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r models/requirements.txt -r models/quantize-requirements.txt

Usage (from the repository root):
    python models/quantize.py ops                                # op counts, conv share of MACs
    python models/quantize.py quantize esrgan-thick 4 -o /tmp/q/esrgan-thick-x4-int8.onnx \
        [--act uint8|int8] [--weights int8|uint8] [--full-range] [--per-tensor]
        [--calib minmax|percentile|entropy] [--ops all|conv] [--exclude NODE...]
        [--crop 64] [--crops-per-photo 4] [--cache RANGES.json]
    python models/quantize.py quality esrgan-thick 4 /tmp/q/esrgan-thick-x4-int8.onnx [...]
    python models/quantize.py flat esrgan-thick 4 /tmp/q/esrgan-thick-x4-int8.onnx  # flat image
    python models/quantize.py speed esrgan-thick 4 /tmp/q/esrgan-thick-x4-int8.onnx [...] \
        --size 128 --reps 5
    python models/quantize.py sensitivity span 4                 # one Conv quantized at a time
    python models/quantize.py calibrate esrgan-slim-int8         # (re)make its committed ranges

`calibrate ID` takes an int8 id of the manifest (an entry with a `quantize` section), calibrates
its base model's fp32 ONNX in .cache/models (MinMax, the crops below) and writes the activation
ranges to the file the entry names (models/quantize/<base>-x<scale>.json), which
models/provision.py then quantizes with at set-up (convert/int8.py), without calibrating. Rerun
it when the base model's conversion, the calibration photos or crops, or ONNX Runtime's
calibrator change; the ranges file is in the item's stamp, so set-up rebuilds the int8 model.

The defaults are the setting that is fast on x86 without VNNI (uint8 activations, per-channel
int8 weights with reduce_range, i.e. 7 bits, every supported op, MinMax): with full 8-bit
weights ONNX Runtime's u8s8 kernels saturate on AVX2, and int8 activations (s8s8) mostly do not
run faster than fp32 there. `--cache` keeps the calibrated activation ranges (ONNX Runtime's
calibration cache): given an existing file, no calibration runs and the output is the same
bytes.

Everything is deterministic: fixed photos, fixed crop positions (numpy seed 0), and ORT's
calibration is a pure function of the model and the data.
"""

import argparse
import json
import os
import statistics
import sys
import time
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / ".cache" / "models"
TESTDATA = ROOT / ".cache" / "testdata"
SKIMAGE_WHEEL = (ROOT / ".cache" / "downloads" /
                 "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl")

# Calibration photos: bundled with scikit-image 0.26.0, none of them in the quality bench.
# Colour photos first; the grey ones (textures, a portrait, coins, the moon) are repeated on the
# three channels.
CALIBRATION_PHOTOS = [
    "motorcycle_left.png", "hubble_deep_field.jpg", "retina.jpg",
    "camera.png", "brick.png", "grass.png", "gravel.png", "coins.png", "moon.png",
]
BENCH_PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "ihc.png"]
assert not set(CALIBRATION_PHOTOS) & set(BENCH_PHOTOS)


def manifest_entry(model_id):
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    for entry in manifest["models"]:
        if entry["id"] == model_id:
            return entry
    raise SystemExit(f"{model_id}: not in models/manifest.json")


def tiling(model_id):
    t = manifest_entry(model_id).get("tiling", {})
    return t.get("border", "reflect"), t.get("context", 16), t.get("shrink", 0)


def native_scale(model_id, scale):
    """The model's own scale that serves `scale`: itself, or x4 for x2 from an x4-only model."""
    return scale if scale in manifest_entry(model_id)["scales"] else 4


def fp32_path(model_id, scale):
    return MODELS / f"{model_id}-x{scale}.onnx"


# ---------------------------------------------------------------------------------- images

def load_rgb(data):
    from PIL import Image
    image = Image.open(BytesIO(data))
    return np.asarray(image.convert("RGB"))


def calibration_photos():
    with zipfile.ZipFile(SKIMAGE_WHEEL) as z:
        return {name: load_rgb(z.read(f"skimage/data/{name}")) for name in CALIBRATION_PHOTOS}


def calibration_inputs(model_id, crop, per_photo):
    """NCHW float32 [0,1] crops of `crop` px plus the model's margin on every side, taken from
    the photos at full size and at half size (Pillow BICUBIC, like a low-resolution input)."""
    from PIL import Image
    _, context, shrink = tiling(model_id)
    size = crop + 2 * (context + shrink)
    rng = np.random.RandomState(0)
    out = []
    for name, photo in calibration_photos().items():
        half = np.asarray(Image.fromarray(photo).resize(
            (photo.shape[1] // 2, photo.shape[0] // 2), Image.BICUBIC))
        for k in range(per_photo):
            source = photo if k % 2 == 0 else half
            h, w, _ = source.shape
            s = min(size, h, w)
            y, x = rng.randint(0, h - s + 1), rng.randint(0, w - s + 1)
            tile = source[y:y + s, x:x + s]
            out.append(to_nchw(tile))
    return out


def to_nchw(rgb8):
    return (rgb8.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def to_rgb8(nchw):
    return np.round(np.clip(nchw[0].transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- quantization

def quantize(model_id, scale, out, act="uint8", calib="minmax", ops="all", crop=64,
             per_photo=4, exclude_ends=False, reduce_range=True, exclude=(), cache=None,
             quiet=False, weights="int8", per_channel=True):
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod,
                                          QuantFormat, QuantType, quantize_static)

    cached = cache and Path(cache).is_file()
    inputs = [] if cached else calibration_inputs(model_id, crop, per_photo)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(inputs)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"input": x}

        def rewind(self):
            self.it = iter(inputs)

    src = fp32_path(model_id, scale)
    model = onnx.load(src)
    convs = [n.name for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    if any(not name for name in convs):
        raise SystemExit(f"{src}: unnamed nodes; cannot exclude them")
    op_types = {"conv": ["Conv", "ConvTranspose"], "all": None}[ops]
    exclude = [*([convs[0], convs[-1]] if exclude_ends else []), *exclude]
    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[calib]
    extra = {}
    if calib == "percentile":
        extra["CalibPercentile"] = 99.999
    started = time.perf_counter()
    quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=op_types, per_channel=per_channel,
                    reduce_range=reduce_range, activation_type=qtype[act],
                    weight_type=qtype[weights],
                    nodes_to_exclude=exclude, calibrate_method=method, extra_options=extra,
                    calibration_cache_path=cache)
    seconds = time.perf_counter() - started
    if not quiet:
        data = f"ranges from {cache}" if cached else f"{len(inputs)} crops of {crop} px + margin"
        print(f"{model_id} x{scale}: {data}, act {act}, "
              f"{calib}, ops {ops}{', ends fp32' if exclude_ends else ''}"
              f", weights {weights} {'per channel' if per_channel else 'per tensor'}"
              f"{', reduce_range' if reduce_range else ''}"
              f"{', excluded ' + ' '.join(exclude) if exclude else ''} -> {out} "
              f"({os.path.getsize(out) / 1e6:.1f} MB) in {seconds:.1f} s", flush=True)
    return seconds


def calibrate(int8_id, crop=64, per_photo=4):
    """Writes the activation ranges an int8 id of the manifest is built with at set-up."""
    entry = manifest_entry(int8_id)
    q = entry.get("quantize")
    if not q:
        raise SystemExit(f"{int8_id}: no `quantize` section in models/manifest.json")
    if q["calibration"] != "MinMax":
        raise SystemExit(f"{int8_id}: calibration {q['calibration']} not supported")
    for scale in entry["scales"]:
        ranges = ROOT / q["ranges"][f"x{scale}"]
        ranges.parent.mkdir(parents=True, exist_ok=True)
        tmp_ranges = ranges.with_name(ranges.name + ".tmp")
        tmp_model = Path(f"/tmp/quantize-{int8_id}-x{scale}.onnx")
        tmp_ranges.unlink(missing_ok=True)  # quantize() would reuse it instead of calibrating
        quantize(q["from"], scale, tmp_model, act=q["activations"], calib="minmax", ops=q["ops"],
                 crop=crop, per_photo=per_photo, reduce_range=q["reduce_range"],
                 exclude=q.get("fp32_nodes", ()), cache=str(tmp_ranges), weights=q["weights"],
                 per_channel=q["per_channel"])
        # ONNX Runtime writes the tensors in no fixed order: sorted, the file is the same bytes
        # for the same ranges, and diffs show what moved.
        raw = json.loads(tmp_ranges.read_text())
        tmp_ranges.write_text(json.dumps(raw, indent=1, sort_keys=True) + "\n")
        tmp_ranges.chmod(0o644)
        os.replace(tmp_ranges, ranges)
        tmp_model.unlink(missing_ok=True)
        print(f"{int8_id} x{scale}: ranges -> {ranges.relative_to(ROOT)}")


# -------------------------------------------------------------------------------- running

def session(path, threads=2):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def upscale_whole(sess, model_id, native_scale, rgb8):
    """The whole image at once, padded as the engine pads a tile (mirrored context, or the
    edge-replicated pixels an unpadded network consumes), 8-bit rounded."""
    border, context, shrink = tiling(model_id)
    margin = context + shrink
    mode = {"reflect": "reflect", "replicate": "edge"}[border]
    x = np.pad(rgb8, ((margin, margin), (margin, margin), (0, 0)), mode=mode)
    y = sess.run(None, {"input": to_nchw(x)})[0]
    c = context * native_scale
    h, w = rgb8.shape[0] * native_scale, rgb8.shape[1] * native_scale
    return y[:, :, c:c + h, c:c + w]


def upscale(sess, model_id, native_scale, scale, rgb8):
    y = upscale_whole(sess, model_id, native_scale, rgb8)
    k = native_scale // scale
    if k > 1:  # x2 from an x4-only model: x4, then a 2x2 area downscale
        n, ch, h, w = y.shape
        y = y.reshape(n, ch, h // k, k, w // k, k).mean(axis=(3, 5))
    return to_rgb8(y)


# -------------------------------------------------------------------------------- quality

def luma(rgb8):
    r, g, b = (rgb8[..., i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def psnr(a, b):
    return 10.0 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2))


def bench_cases(scale):
    from PIL import Image
    cases = []
    for name in BENCH_PHOTOS:
        photo = np.asarray(Image.open(TESTDATA / name).convert("RGB"))
        h, w = photo.shape[0] // 4 * 4, photo.shape[1] // 4 * 4
        truth = photo[:h, :w]
        lr = np.asarray(Image.fromarray(truth).resize((w // scale, h // scale), Image.BICUBIC))
        cases.append((name, truth, lr))
    return cases


def quality(model_id, scale, variants, photos=None):
    """Mean Y-PSNR over the bench photos of the fp32 model and each variant at `scale`."""
    native = native_scale(model_id, scale)
    files = [fp32_path(model_id, native), *map(Path, variants)]
    sessions = [session(f) for f in files]
    cases = bench_cases(scale)
    if photos:
        cases = [c for c in cases if c[0] in photos]
    scores = np.zeros((len(files), len(cases)))
    for j, (name, truth, lr) in enumerate(cases):
        y_truth = luma(truth)[scale:-scale, scale:-scale]
        for i, sess in enumerate(sessions):
            out = upscale(sess, model_id, native, scale, lr)
            scores[i, j] = psnr(y_truth, luma(out)[scale:-scale, scale:-scale])
        print(f"  {name}: " + " ".join(f"{s:.3f}" for s in scores[:, j]), flush=True)
    mean = scores.mean(axis=1)
    print(f"{model_id} x{scale} fp32 {mean[0]:.3f} dB")
    for f, m, row in zip(files[1:], mean[1:], scores[1:]):
        worst = (row - scores[0]).min()
        print(f"{model_id} x{scale} {f.name}: {m:.3f} dB, delta {m - mean[0]:+.3f} "
              f"(worst photo {worst:+.3f})")
    return mean


# The flat colours of crates/engine/tests/common/mod.rs (near white, a saturated blue, a dark brown).
FLAT_COLOURS = [(250, 250, 250), (12, 140, 230), (128, 64, 32)]


def flat(model_id, scale, variants):
    """The engine's flat-image check (crates/engine/tests/tiling.rs, bound: 1 level): the worst
    difference in levels between any output pixel of a flat 37x29 image and its centre pixel,
    over the flat colours, for the fp32 model and each variant."""
    native = native_scale(model_id, scale)
    for f in [fp32_path(model_id, native), *map(Path, variants)]:
        sess = session(f)
        worst = 0
        for colour in FLAT_COLOURS:
            out = upscale(sess, model_id, native, scale,
                          np.full((29, 37, 3), colour, np.uint8)).astype(int)
            centre = out[out.shape[0] // 2, out.shape[1] // 2]
            worst = max(worst, int(np.abs(out - centre).max()))
        print(f"{model_id} x{scale} {f.name}: flat image, worst pixel {worst} levels", flush=True)


def sensitivity(model_id, scale, act, calib, photo="astronaut.png", reduce_range=False):
    """Y-PSNR delta on one bench photo when only one Conv is quantized, for every Conv: which
    layers the int8 loss comes from."""
    src = fp32_path(model_id, scale)
    convs = [n.name for n in onnx.load(src).graph.node if n.op_type in ("Conv", "ConvTranspose")]
    cache = Path(f"/tmp/quantize-{model_id}-x{scale}-{calib}.json")
    tmp = Path(f"/tmp/quantize-{model_id}-x{scale}-sens.onnx")
    (name, truth, lr), = [c for c in bench_cases(scale) if c[0] == photo]
    y_truth = luma(truth)[scale:-scale, scale:-scale]

    def score(path):
        out = upscale(session(path), model_id, scale, scale, lr)
        return psnr(y_truth, luma(out)[scale:-scale, scale:-scale])

    base = score(src)
    for i, conv in enumerate(convs):
        quantize(model_id, scale, tmp, act, calib, "conv", exclude=[c for c in convs if c != conv],
                 cache=str(cache), reduce_range=reduce_range, quiet=True)
        print(f"{i:3d} {conv}: {score(tmp) - base:+.3f} dB", flush=True)


# ---------------------------------------------------------------------------------- speed

def speed(model_id, scale, variants, size=256, reps=7, threads=2):
    """Median over repetitions of t(fp32) / t(variant) on a size x size centre crop of the
    astronaut photo (plus the model's margin), the variants interleaved in every repetition."""
    from PIL import Image
    border, context, shrink = tiling(model_id)
    photo = np.asarray(Image.open(TESTDATA / "astronaut.png").convert("RGB"))
    s = size + 2 * (context + shrink)
    y0, x0 = (photo.shape[0] - s) // 2, (photo.shape[1] - s) // 2
    x = to_nchw(photo[y0:y0 + s, x0:x0 + s]) if s <= 512 else to_nchw(
        np.asarray(Image.fromarray(photo).resize((s, s), Image.LANCZOS)))
    files = [fp32_path(model_id, scale), *map(Path, variants)]
    sessions = [session(f, threads) for f in files]
    for sess in sessions:  # warm-up
        sess.run(None, {"input": x})
    times = [[] for _ in files]
    for _ in range(reps):
        for i, sess in enumerate(sessions):
            t = time.perf_counter()
            sess.run(None, {"input": x})
            times[i].append(time.perf_counter() - t)
    base = times[0]
    print(f"{model_id} x{scale} {size}x{size} (+{context + shrink} px margin), {threads} threads, "
          f"{reps} reps: fp32 median {statistics.median(base):.3f} s", flush=True)
    ratios = []
    for f, t in zip(files[1:], times[1:]):
        r = statistics.median(b / v for b, v in zip(base, t))
        ratios.append(r)
        print(f"  {f.name}: median {statistics.median(t):.3f} s, speed-up x{r:.2f} "
              f"(per-rep {min(b / v for b, v in zip(base, t)):.2f}..."
              f"{max(b / v for b, v in zip(base, t)):.2f})", flush=True)
    return ratios


# ------------------------------------------------------------------------------------ ops

def conv_share(path, size=64):
    """Op counts and the share of multiply-adds in Conv/ConvTranspose at a size x size input."""
    model = onnx.load(path)
    inp = model.graph.input[0]
    for d, v in zip(inp.type.tensor_type.shape.dim, [1, 3, size, size]):
        d.ClearField("dim_param")
        d.dim_value = v
    model = shape_inference.infer_shapes(model)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in [*model.graph.value_info, *model.graph.output, *model.graph.input]}
    inits = {i.name: numpy_helper.to_array(i).shape for i in model.graph.initializer}
    conv, other, counts = 0, 0, {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
        out = shapes.get(n.output[0])
        elems = int(np.prod(out)) if out else 0
        if n.op_type == "Conv":
            w = inits[n.input[1]]
            conv += elems * int(np.prod(w[1:]))
        elif n.op_type == "ConvTranspose":
            w = inits[n.input[1]]
            conv += int(np.prod(shapes[n.input[0]])) * int(np.prod(w[1:]))
        else:
            other += elems
    return counts, conv, other


def ops_report():
    for path in sorted(MODELS.glob("*-x?.onnx")):
        if "denoise" in path.name:
            continue
        counts, conv, other = conv_share(path)
        print(f"{path.name}: conv {conv / 64 / 64 / 1e3:.1f} kMAC/px, elementwise "
              f"{other / 64 / 64 / 1e3:.2f} kop/px, conv share {conv / (conv + other):.2%}; "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ops")
    q = sub.add_parser("quantize")
    q.add_argument("model")
    q.add_argument("scale", type=int)
    q.add_argument("-o", "--out", required=True)
    q.add_argument("--act", choices=["uint8", "int8"], default="uint8")
    q.add_argument("--calib", choices=["minmax", "percentile", "entropy"], default="minmax")
    q.add_argument("--ops", choices=["conv", "all"], default="all")
    q.add_argument("--crop", type=int, default=64)
    q.add_argument("--crops-per-photo", type=int, default=4)
    q.add_argument("--exclude-ends", action="store_true")
    q.add_argument("--reduce-range", dest="reduce_range", action="store_true", default=True,
                   help="7-bit weights (the default): no int16 saturation in ONNX Runtime's "
                   "u8s8 kernels on x86 without VNNI")
    q.add_argument("--full-range", dest="reduce_range", action="store_false",
                   help="8-bit weights: with uint8 activations on AVX2 this saturates")
    q.add_argument("--weights", choices=["uint8", "int8"], default="int8")
    q.add_argument("--per-tensor", action="store_true")
    q.add_argument("--exclude", nargs="*", default=[], help="node names left in fp32")
    q.add_argument("--cache", help="calibration cache (JSON): reused when it exists")
    ql = sub.add_parser("quality")
    ql.add_argument("model")
    ql.add_argument("scale", type=int)
    ql.add_argument("variants", nargs="*")
    ql.add_argument("--photos", nargs="*")
    se = sub.add_parser("sensitivity")
    se.add_argument("model")
    se.add_argument("scale", type=int)
    se.add_argument("--act", choices=["uint8", "int8"], default="int8")
    se.add_argument("--calib", choices=["minmax", "percentile", "entropy"], default="minmax")
    se.add_argument("--reduce-range", action="store_true")
    fl = sub.add_parser("flat")
    fl.add_argument("model")
    fl.add_argument("scale", type=int)
    fl.add_argument("variants", nargs="*")
    s = sub.add_parser("speed")
    s.add_argument("model")
    s.add_argument("scale", type=int)
    s.add_argument("variants", nargs="+")
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--reps", type=int, default=7)
    s.add_argument("--threads", type=int, default=2)
    c = sub.add_parser("calibrate")
    c.add_argument("model", help="an int8 id of the manifest, e.g. esrgan-slim-int8")
    c.add_argument("--crop", type=int, default=64)
    c.add_argument("--crops-per-photo", type=int, default=4)
    a = p.parse_args()
    if a.cmd == "ops":
        ops_report()
    elif a.cmd == "quantize":
        quantize(a.model, a.scale, a.out, a.act, a.calib, a.ops, a.crop, a.crops_per_photo,
                 a.exclude_ends, a.reduce_range, a.exclude, a.cache, weights=a.weights,
                 per_channel=not a.per_tensor)
    elif a.cmd == "quality":
        quality(a.model, a.scale, a.variants, a.photos)
    elif a.cmd == "flat":
        flat(a.model, a.scale, a.variants)
    elif a.cmd == "calibrate":
        calibrate(a.model, a.crop, a.crops_per_photo)
    elif a.cmd == "sensitivity":
        sensitivity(a.model, a.scale, a.act, a.calib, reduce_range=a.reduce_range)
    else:
        speed(a.model, a.scale, a.variants, a.size, a.reps, a.threads)


if __name__ == "__main__":
    sys.exit(main())
