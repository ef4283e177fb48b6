"""Python runners of the peer benchmark: one process, one model, one measurement.

    python runner.py ort   --model span --input in.png --warmup warm.png [--output out.png]
    python runner.py ncnn  --model span --input in.png --warmup warm.png --ncnn-dir DIR
    python runner.py torch --model realesrgan-x4plus --input in.png --warmup warm.png

Each loads the model, upscales the warm-up image once, then times the input image from its PNG
bytes (already read into memory) to the output PNG bytes: decode (Pillow), upscale x4 on the
whole image, encode (Pillow, default settings). Prints one JSON line: seconds (that wall time),
peak_rss_kib (getrusage ru_maxrss of this process), and the phases.

- ort: onnxruntime on `.cache/models/<id>-x4.onnx`, default session options (all graph
  optimisations, one intra-op thread per physical core), one `session.run` on the whole image.
  The converted models take and return RGB in [0, 1] (NCHW); output: round(clip(v, 0, 1) * 255).
- ncnn: the `ncnn` package on the original `.param/.bin` (extracted by prepare.py), CPU, 2
  threads, the library's default options otherwise. The models' own pre/post-processing, as
  realesrgan-ncnn-vulkan does it: RGB pixels scaled by 1/255 in, output scaled by 255, clamped
  and rounded to 8 bits.
- torch: PyTorch CPU (2 threads, inference mode) running spandrel's copy of the official
  architecture (RRDBNet for realesrgan-x4plus, SRVGGNetCompact for realesr-general-x4v3, SPAN
  for span), its weights copied from the ONNX file's initializers (prepare.py writes them as a
  state dict and checks the output against onnxruntime).
"""

import argparse
import io
import json
import os
import resource
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def decode(png):
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def encode(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def to_u8(chw01):
    """NCHW/CHW float in [0, 1] -> HWC uint8, round(clip(v, 0, 1) * 255)."""
    chw = chw01.reshape(chw01.shape[-3:])
    return (np.clip(chw, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def to_nchw01(rgb):
    return (rgb.astype(np.float32) / np.float32(255.0)).transpose(2, 0, 1)[None].copy()


class Ort:
    def __init__(self, args):
        import onnxruntime as ort

        self.version = ort.__version__
        path = os.path.join(args.models_dir, f"{args.model}-x4.onnx")
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, rgb):
        (out,) = self.session.run(None, {self.input: to_nchw01(rgb)})
        return to_u8(out)


class Ncnn:
    def __init__(self, args):
        import ncnn

        self.ncnn = ncnn
        self.version = ncnn.__version__
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = args.threads
        base = os.path.join(args.ncnn_dir, args.model)
        if self.net.load_param(base + ".param") or self.net.load_model(base + ".bin"):
            raise SystemExit(f"ncnn could not load {base}.param/.bin")
        self.options = {
            k: getattr(self.net.opt, k)
            for k in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic",
                      "use_bf16_storage", "use_winograd_convolution", "use_sgemm_convolution")
        }

    def __call__(self, rgb):
        ncnn = self.ncnn
        h, w, _ = rgb.shape
        mat = ncnn.Mat.from_pixels(np.ascontiguousarray(rgb), ncnn.Mat.PixelType.PIXEL_RGB, w, h)
        mat.substract_mean_normalize([], [1 / 255.0] * 3)
        ex = self.net.create_extractor()
        ex.input("data", mat)
        ret, out = ex.extract("output")
        if ret != 0:
            raise SystemExit(f"ncnn extract failed: {ret}")
        return to_u8(np.array(out))


class Torch:
    def __init__(self, args):
        import torch

        torch.set_num_threads(args.threads)
        self.torch = torch
        self.version = torch.__version__
        sys.path.insert(0, HERE)
        from prepare import TORCH_ARCH, import_spandrel_arch

        arch_module, cls, kwargs = TORCH_ARCH[args.model]
        self.model = getattr(import_spandrel_arch(arch_module), cls)(**kwargs).eval()
        state = torch.load(os.path.join(args.torch_dir, f"{args.model}.pt"), weights_only=True)
        self.model.load_state_dict(state)
        self.arch = f"spandrel {cls}"

    def __call__(self, rgb):
        torch = self.torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(to_nchw01(rgb)))
        return to_u8(out.numpy())


RUNNERS = {"ort": Ort, "ncnn": Ncnn, "torch": Torch}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runner", choices=sorted(RUNNERS))
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--warmup", required=True)
    p.add_argument("--output")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models-dir", default=os.path.join(ROOT, ".cache/models"))
    p.add_argument("--ncnn-dir", default=os.path.join(ROOT, ".cache/peers/ncnn"))
    p.add_argument("--torch-dir", default=os.path.join(ROOT, ".cache/peers/torch"))
    args = p.parse_args()

    t = time.perf_counter()
    run = RUNNERS[args.runner](args)
    load_seconds = time.perf_counter() - t

    def once(png):
        t0 = time.perf_counter()
        rgb = decode(png)
        t1 = time.perf_counter()
        out = run(rgb)
        t2 = time.perf_counter()
        encoded = encode(out)
        t3 = time.perf_counter()
        return encoded, out.shape, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)

    with open(args.warmup, "rb") as f:
        warm = f.read()
    warmup_seconds = once(warm)[2][3]
    with open(args.input, "rb") as f:
        png = f.read()
    encoded, shape, (dec, infer, enc, total) = once(png)
    if args.output:
        with open(args.output, "wb") as f:
            f.write(encoded)
    result = {
        "runner": args.runner,
        "model": args.model,
        "seconds": total,
        "peak_rss_kib": peak_rss_kib(),
        "decode_seconds": dec,
        "infer_seconds": infer,
        "encode_seconds": enc,
        "load_seconds": load_seconds,
        "warmup_seconds": warmup_seconds,
        "output": [shape[1], shape[0]],
        "version": run.version,
    }
    for extra in ("options", "arch"):
        if hasattr(run, extra):
            result[extra] = getattr(run, extra)
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
