"""ncnn .param/.bin -> ONNX graph (the layer types Real-ESRGAN uses).

Layers: Input, Convolution (fused ReLU/LeakyReLU), Split, Concat, Eltwise (sum with
coefficients), BinaryOp (add), Interp (nearest). Anything else, or an unknown parameter, is
an error rather than a silent mis-conversion. The .bin is read in layer order and must be
consumed exactly.
"""

import numpy as np

MAGIC = "7767517"
FP16_TAG = 0x01306B47
FP32_TAG = 0
ARRAY_KEY_BASE = -23300
RELU, LEAKY_RELU = 1, 2  # Convolution param 9 (activation type)

# Parameter ids each layer type may carry (anything else is rejected).
KNOWN_PARAMS = {
    "Input": {0, 1, 2},
    "Convolution": {0, 1, 11, 2, 12, 3, 13, 4, 14, 15, 16, 5, 6, 9, 10},
    "Split": set(),
    "Concat": {0},
    "Eltwise": {0, 1},
    "BinaryOp": {0, 1},
    "Interp": {0, 1, 2},
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
        """Convolution weights: a 4-byte tag, then fp16 (padded to 4 bytes) or fp32 values."""
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


def _convolution(g, x, name, p, weights):
    out_ch, kw = p[0], p[1]
    kh = p.get(11, kw)
    if (p.get(2, 1), p.get(12, 1), p.get(3, 1), p.get(13, 1)) != (1, 1, 1, 1):
        raise ValueError(f"{name}: only dilation 1 and stride 1 are supported")
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
    y = g.conv(x, weight, bias, (top, left, bottom, right), name)
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


def _interp(g, x, name, p):
    h, w = p.get(1, 1.0), p.get(2, 1.0)
    if p.get(0) != 1 or h != w or h != int(h):
        raise ValueError(f"{name}: only nearest Interp with one integer scale is supported")
    return g.upsample_nearest(x, int(h))


def build(g, x, files):
    """files: {path: bytes} holding the .param then the .bin. Returns the output tensor."""
    (param_path, param), (bin_path, data) = files.items()
    if not (param_path.endswith(".param") and bin_path.endswith(".bin")):
        raise ValueError("the ncnn converter takes a .param then a .bin")
    weights = BinReader(data)
    blobs = {}
    consumed = set()
    for kind, name, ins, outs, p in parse_param(param.decode()):
        xs = [blobs[b] for b in ins]
        consumed.update(ins)
        if kind == "Input":
            y = x
        elif kind == "Split":
            y = xs[0]
        elif kind == "Convolution":
            y = _convolution(g, xs[0], name, p, weights)
        elif kind == "Concat":
            if p.get(0, 0) != 0:
                raise ValueError(f"{name}: only channel Concat is supported")
            y = g.op("Concat", xs, axis=1)
        elif kind == "Eltwise":
            y = _eltwise(g, xs, name, p)
        elif kind == "BinaryOp":
            if p.get(0, 0) != 0 or p.get(1, 0) != 0:
                raise ValueError(f"{name}: only BinaryOp add of two blobs is supported")
            y = g.add(*xs)
        else:  # Interp
            y = _interp(g, xs[0], name, p)
        blobs.update(dict.fromkeys(outs, y))
    if weights.pos != len(data):
        raise ValueError(f"{bin_path}: read {weights.pos} of {len(data)} bytes")
    (output,) = blobs.keys() - consumed
    return blobs[output]
