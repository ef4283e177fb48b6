"""ncnn .param/.bin -> ONNX graph (the layer types Real-ESRGAN, SPAN and waifu2x use).

Layers: Input, MemoryData (per-channel constant), Convolution (stride 1, fused ReLU/LeakyReLU),
Deconvolution (strided), Split, Concat (channels), Eltwise (sum with coefficients), BinaryOp
(two blobs, or a blob and a scalar), PReLU, Swish, Sigmoid, Interp (nearest), PixelShuffle.
Anything else, or an unknown parameter, is an error rather than a silent mis-conversion. The
.bin is read in layer order and must be consumed exactly. .param lines may end in CRLF.
"""

import numpy as np

MAGIC = "7767517"
FP16_TAG = 0x01306B47
FP32_TAG = 0
ARRAY_KEY_BASE = -23300
RELU, LEAKY_RELU = 1, 2  # Convolution param 9 (activation type)

# BinaryOp param 0 -> (ONNX op, operands swapped)
BINARY_OPS = {0: ("Add", False), 1: ("Sub", False), 2: ("Mul", False), 3: ("Div", False),
              4: ("Max", False), 5: ("Min", False), 6: ("Pow", False), 7: ("Sub", True),
              8: ("Div", True)}

# Parameter ids each layer type may carry (anything else is rejected).
CONV_PARAMS = {0, 1, 11, 2, 12, 3, 13, 4, 14, 15, 16, 5, 6, 9, 10}
KNOWN_PARAMS = {
    "Input": {0, 1, 2},
    "MemoryData": {0, 1, 2},
    "Convolution": CONV_PARAMS,
    "Deconvolution": CONV_PARAMS,
    "Split": set(),
    "Concat": {0},
    "Eltwise": {0, 1},
    "BinaryOp": {0, 1, 2},
    "PReLU": {0},
    "Swish": set(),
    "Sigmoid": set(),
    "Interp": {0, 1, 2},
    "PixelShuffle": {0},
}


def _number(token):
    return float(token) if any(c in token for c in ".eE") else int(token)


def _params(tokens):
    params = {}
    for token in tokens:
        key, value = token.split("=", 1)
        key = int(key)
        if key <= ARRAY_KEY_BASE:
            count, *values = value.split(",")
            if int(count) != len(values):
                raise ValueError(f"bad array parameter {token!r}")
            params[ARRAY_KEY_BASE - key] = [_number(v) for v in values]
        else:
            params[key] = _number(value)
    return params


def parse_param(text):
    """-> list of (type, name, inputs, outputs, params)."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if lines[0] != [MAGIC]:
        raise ValueError("not an ncnn .param file")
    layer_count = int(lines[1][0])
    layers = []
    for kind, name, n_in, n_out, *fields in lines[2:]:
        start, end = int(n_in), int(n_in) + int(n_out)
        ins, outs, params = fields[:start], fields[start:end], _params(fields[end:])
        unknown = params.keys() - KNOWN_PARAMS.get(kind, set())
        if kind not in KNOWN_PARAMS or unknown:
            raise ValueError(f"unsupported ncnn layer {kind} {name} (params {sorted(unknown)})")
        layers.append((kind, name, ins, outs, params))
    if len(layers) != layer_count:
        raise ValueError(f".param declares {layer_count} layers, has {len(layers)}")
    return layers


class BinReader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, count, dtype):
        array = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += array.nbytes
        return array.astype(np.float32)

    def tagged(self, count):
        """(De)convolution weights: a 4-byte tag, then fp16 (padded to 4 bytes) or fp32 values."""
        tag = int(np.frombuffer(self.data, "<u4", 1, self.pos)[0])
        self.pos += 4
        if tag == FP16_TAG:
            values = self._take(count, "<f2")
            self.pos += -self.pos % 4
            return values
        if tag == FP32_TAG:
            return self._take(count, "<f4")
        raise ValueError(f"unsupported ncnn weight tag {tag:#010x} at byte {self.pos - 4}")

    def raw(self, count):
        return self._take(count, "<f4")


def _convolution(g, x, name, p, weights, transposed):
    """Convolution, or (transposed) Deconvolution: weights [out][in][kh][kw] in both."""
    out_ch, kw = p[0], p[1]
    kh = p.get(11, kw)
    if (p.get(2, 1), p.get(12, p.get(2, 1))) != (1, 1):
        raise ValueError(f"{name}: only dilation 1 is supported")
    strides = [p.get(13, p.get(3, 1)), p.get(3, 1)]
    if strides != [1, 1] and not transposed:
        raise ValueError(f"{name}: only stride 1 is supported for Convolution")
    left = p.get(4, 0)
    top, right = p.get(14, left), p.get(15, left)
    bottom = p.get(16, top)
    if min(left, top, right, bottom) < 0:
        raise ValueError(f"{name}: automatic (negative) padding is not supported")
    count = p[6]
    in_ch, rest = divmod(count, out_ch * kh * kw)
    if rest:
        raise ValueError(f"{name}: weight count {count} does not match the kernel shape")
    weight = weights.tagged(count).reshape(out_ch, in_ch, kh, kw)
    bias = weights.raw(out_ch) if p.get(5, 0) else None
    pads = (top, left, bottom, right)  # Deconvolution: ncnn and ONNX both crop them off the output
    if transposed:
        y = g.conv(x, weight.transpose(1, 0, 2, 3), bias, pads, name, "ConvTranspose",
                   strides=strides)
    else:
        y = g.conv(x, weight, bias, pads, name)
    activation = p.get(9, 0)
    if activation == 0:
        return y
    if activation == RELU:
        return g.op("Relu", [y])
    if activation == LEAKY_RELU:
        return g.op("LeakyRelu", [y], alpha=p[10][0])
    raise ValueError(f"{name}: unsupported activation {activation}")


def _eltwise(g, xs, name, p):
    if p.get(0, 1) != 1:
        raise ValueError(f"{name}: only Eltwise sum is supported")
    coeffs = p.get(1) or [1.0] * len(xs)
    return g.add(*(x if c == 1 else g.mul(x, c) for x, c in zip(xs, coeffs, strict=True)))


def _memory_data(g, name, p, weights):
    w, h, c = p.get(0, 0), p.get(1, 0), p.get(2, 0)
    if (w, h) != (1, 1) or c < 1:
        raise ValueError(f"{name}: only per-channel MemoryData (w=1 h=1 c=C) is supported")
    return g.const(weights.raw(c).reshape(1, c, 1, 1), name)


def _binary_op(g, xs, name, p):
    op_type = p.get(0, 0)
    with_scalar = p.get(1, 0)
    if op_type not in BINARY_OPS or with_scalar not in (0, 1) or len(xs) != 2 - with_scalar:
        raise ValueError(f"{name}: unsupported BinaryOp {op_type} on {len(xs)} blob(s)")
    onnx_op, swapped = BINARY_OPS[op_type]
    a, b = (xs[0], g.const(p.get(2, 0.0), name)) if with_scalar else xs
    return g.op(onnx_op, [b, a] if swapped else [a, b])


def _prelu(g, x, name, p, weights):
    slopes = weights.raw(p[0])
    return g.op("PRelu", [x, g.const(slopes.reshape(-1, 1, 1), f"{name}.slope")])


def _interp(g, x, name, p):
    h, w = p.get(1, 1.0), p.get(2, 1.0)
    if p.get(0) != 1 or h != w or h != int(h):
        raise ValueError(f"{name}: only nearest Interp with one integer scale is supported")
    return g.upsample_nearest(x, int(h))


def _layer(g, kind, xs, name, p, weights):
    if kind == "MemoryData":
        return _memory_data(g, name, p, weights)
    if kind == "Split":
        return xs[0]
    if kind in ("Convolution", "Deconvolution"):
        return _convolution(g, *xs, name, p, weights, kind == "Deconvolution")
    if kind == "Concat":
        if p.get(0, 0) != 0:
            raise ValueError(f"{name}: only channel Concat is supported")
        return g.op("Concat", xs, axis=1)
    if kind == "Eltwise":
        return _eltwise(g, xs, name, p)
    if kind == "BinaryOp":
        return _binary_op(g, xs, name, p)
    if kind == "PReLU":
        return _prelu(g, *xs, name, p, weights)
    if kind == "Swish":
        return g.op("Mul", [*xs, g.op("Sigmoid", xs)])
    if kind == "Sigmoid":
        return g.op("Sigmoid", xs)
    if kind == "Interp":
        return _interp(g, *xs, name, p)
    return g.depth_to_space(*xs, p[0], "CRD")  # PixelShuffle


def build(g, x, files):
    """files: {path: bytes} holding the .param then the .bin. Returns the output tensor."""
    (param_path, param), (bin_path, data) = files.items()
    if not (param_path.endswith(".param") and bin_path.endswith(".bin")):
        raise ValueError("the ncnn converter takes a .param then a .bin")
    weights = BinReader(data)
    blobs = {}
    consumed = set()
    for kind, name, ins, outs, p in parse_param(param.decode()):
        consumed.update(ins)
        y = x if kind == "Input" else _layer(g, kind, [blobs[b] for b in ins], name, p, weights)
        blobs.update(dict.fromkeys(outs, y))
    if weights.pos != len(data):
        raise ValueError(f"{bin_path}: read {weights.pos} of {len(data)} bytes")
    (output,) = blobs.keys() - consumed
    return blobs[output]
