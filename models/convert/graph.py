"""ONNX graph building shared by the converters (onnx.helper + numpy, NCHW, float32)."""

from functools import reduce

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17; keeps the files loadable by older runtimes


class Graph:
    """Collects nodes and initializers; every method returns the name of its output tensor."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self.scale = 1  # product of the upsampling factors added so far
        self._count = 0

    def _unique(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint="const"):
        name = self._unique(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def op(self, op_type, inputs, out=None, hint=None, **attrs):
        out = out or self._unique(hint or op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, weight, bias, pads, hint):
        """weight OIHW; pads (top, left, bottom, right), as ONNX orders them."""
        inputs = [x, self.const(weight, f"{hint}.weight")]
        if bias is not None:
            inputs.append(self.const(bias, f"{hint}.bias"))
        return self.op("Conv", inputs, hint=hint,
                       kernel_shape=list(weight.shape[2:]), pads=list(pads))

    def mul(self, x, factor):
        return self.op("Mul", [x, self.const(factor)])

    def add(self, *xs):
        return reduce(lambda a, b: self.op("Add", [a, b]), xs)

    def upsample_nearest(self, x, factor):
        self.scale *= factor
        scales = self.const([1, 1, factor, factor], "scales")
        return self.op("Resize", [x, "", scales], mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def depth_to_space(self, x, factor):
        """Same as tf.depthToSpace on NHWC."""
        self.scale *= factor
        return self.op("DepthToSpace", [x], blocksize=factor, mode="DCR")


def sr_model(build, scale, native_range, metadata):
    """An SR model: `input` f32 [N,3,H,W] in [0,1] -> `output` f32 [N,3,H*s,W*s] clipped to [0,1].

    build(graph, x) adds the network, fed with x in its native range [0, native_range].
    """
    g = Graph()
    x = "input" if native_range == 1 else g.mul("input", native_range)
    y = build(g, x)
    if g.scale != scale:
        raise ValueError(f"the network upscales x{g.scale}, the manifest says x{scale}")
    if native_range != 1:
        y = g.op("Div", [y, g.const(native_range)])
    g.op("Clip", [y, g.const(0.0, "zero"), g.const(1.0, "one")], out="output")
    graph = helper.make_graph(
        g.nodes, "sr",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                       ["N", 3, f"H*{scale}", f"W*{scale}"])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="upres models/provision.py")
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    return model
