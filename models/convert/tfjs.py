"""TF.js layers-model (model.json + weight shards) -> ONNX graph, NHWC turned into NCHW.

Layers: InputLayer, Conv2D (linear/relu), Activation (relu), Concatenate (channels), Add,
UpSampling2D (nearest) and the UpscalerJS custom layers MultiplyBeta (x * beta) and
PixelShuffle{2,4}x (tf.depthToSpace). Anything else is an error. Every weight must be used.
"""

import json
import posixpath

import numpy as np


def read_weights(manifest, base, files):
    """-> ({weight name: float32 array}, shard paths used); a group's shards are concatenated."""
    weights = {}
    used = set()
    for group in manifest:
        paths = [posixpath.join(base, p) for p in group["paths"]]
        used.update(paths)
        data = b"".join(files[p] for p in paths)
        offset = 0
        for spec in group["weights"]:
            if spec["dtype"] != "float32" or "quantization" in spec:
                raise ValueError(f"{spec['name']}: only unquantized float32 weights are supported")
            count = int(np.prod(spec["shape"]))
            weights[spec["name"]] = np.frombuffer(data, "<f4", count, offset).reshape(spec["shape"])
            offset += 4 * count
        if offset != len(data):
            raise ValueError(f"{paths}: read {offset} of {len(data)} bytes")
    return weights, used


def _conv2d(g, x, cfg, weights):
    name = cfg["name"]
    if (cfg["data_format"], cfg["strides"], cfg["dilation_rate"], cfg["groups"]) != (
            "channels_last", [1, 1], [1, 1], 1):
        raise ValueError(f"{name}: only channels_last, stride 1, dilation 1, groups 1")
    kernel = weights.pop(f"{name}/kernel").transpose(3, 2, 0, 1)  # HWIO -> OIHW
    bias = weights.pop(f"{name}/bias") if cfg["use_bias"] else None
    kh, kw = cfg["kernel_size"]
    if cfg["padding"] == "same" and kh % 2 and kw % 2:
        pads = (kh // 2, kw // 2, kh // 2, kw // 2)
    elif cfg["padding"] == "valid":
        pads = (0, 0, 0, 0)
    else:
        raise ValueError(f"{name}: unsupported padding {cfg['padding']} for kernel {kh}x{kw}")
    return _activation(g, g.conv(x, kernel, bias, pads, name), cfg)


def _activation(g, x, cfg):
    if cfg["activation"] == "linear":
        return x
    if cfg["activation"] == "relu":
        return g.op("Relu", [x])
    raise ValueError(f"{cfg['name']}: unsupported activation {cfg['activation']}")


def _concatenate(g, xs, cfg):
    if cfg["axis"] not in (3, -1):
        raise ValueError(f"{cfg['name']}: only channel concatenation is supported")
    return g.op("Concat", xs, axis=1)


def _upsampling2d(g, x, cfg):
    (h, w), mode = cfg["size"], cfg["interpolation"]
    if h != w or mode != "nearest" or cfg["data_format"] != "channels_last":
        raise ValueError(f"{cfg['name']}: only square nearest channels_last upsampling")
    return g.upsample_nearest(x, h)


def _layer(g, cls, xs, cfg, weights):
    if cls == "Conv2D":
        return _conv2d(g, *xs, cfg, weights)
    if cls == "Activation":
        return _activation(g, *xs, cfg)
    if cls == "Concatenate":
        return _concatenate(g, xs, cfg)
    if cls == "Add":
        return g.add(*xs)
    if cls == "MultiplyBeta":
        return g.mul(*xs, cfg["beta"])
    if cls in ("PixelShuffle2x", "PixelShuffle4x"):
        return g.depth_to_space(*xs, cfg["scale"], "DCR")
    if cls == "UpSampling2D":
        return _upsampling2d(g, *xs, cfg)
    raise ValueError(f"unsupported TF.js layer {cls} ({cfg['name']})")


def build(g, x, files):
    """files: {path: bytes} holding model.json then its shards. Returns the output tensor."""
    (json_path, raw), *shards = files.items()
    model = json.loads(raw)
    if model["format"] != "layers-model":
        raise ValueError(f"{json_path}: not a TF.js layers-model")
    weights, used = read_weights(model["weightsManifest"], posixpath.dirname(json_path), files)
    if used != {path for path, _ in shards}:
        raise ValueError(f"{json_path}: the manifest's shard list does not match the model")
    config = model["modelTopology"]["model_config"]["config"]
    ((input_name, _, _),) = config["input_layers"]
    ((output_name, _, _),) = config["output_layers"]
    tensors = {}
    for layer in config["layers"]:
        cls, name = layer["class_name"], layer["name"]
        if cls == "InputLayer" and name == input_name:
            tensors[name] = x
            continue
        (inbound,) = layer["inbound_nodes"]
        xs = [tensors[src] for src, node, index, _ in inbound if (node, index) == (0, 0)]
        if len(xs) != len(inbound):
            raise ValueError(f"{name}: only single-node, single-output inputs are supported")
        tensors[name] = _layer(g, cls, xs, layer["config"], weights)
    if weights:
        raise ValueError(f"{json_path}: unused weights {sorted(weights)}")
    return tensors[output_name]
