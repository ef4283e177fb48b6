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

    def conv(self, x, weight, bias, pads, hint, op_type="Conv", **attrs):
        """weight OIHW (ConvTranspose: IOHW); pads (top, left, bottom, right), ONNX order."""
        inputs = [x, self.const(weight, f"{hint}.weight")]
        if bias is not None:
            inputs.append(self.const(bias, f"{hint}.bias"))
        return self.op(op_type, inputs, hint=hint,
                       kernel_shape=list(weight.shape[2:]), pads=list(pads), **attrs)

    def mul(self, x, factor):
        return self.op("Mul", [x, self.const(factor)])

    def add(self, *xs):
        return reduce(lambda a, b: self.op("Add", [a, b]), xs)

    def upsample_nearest(self, x, factor):
        scales = self.const([1, 1, factor, factor], "scales")
        return self.op("Resize", [x, "", scales], mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def depth_to_space(self, x, factor, mode):
        """mode "DCR": tf.depthToSpace on NHWC; "CRD": PyTorch's pixel_shuffle (and ncnn's)."""
        return self.op("DepthToSpace", [x], blocksize=factor, mode=mode)


def _inferred(model, height, width):
    """`model` with the shapes ONNX shape inference gives it for one concrete input size."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for dim, size in zip(probe.graph.input[0].type.tensor_type.shape.dim, [1, 3, height, width]):
        dim.dim_value = size
    probe.graph.output[0].type.tensor_type.ClearField("shape")
    return onnx.shape_inference.infer_shapes(probe, strict_mode=True)


def _output_shape(model, height, width):
    """The output shape ONNX shape inference gives the model for one concrete input size."""
    inferred = _inferred(model, height, width)
    return [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]


def sr_model(build, scale, native_range, metadata, shrink=0):
    """An SR model: `input` f32 [N,3,H,W] in [0,1] -> `output` f32 [N,3,(H-2k)*s,(W-2k)*s]
    clipped to [0,1], where k = shrink, the pixels its unpadded convolutions use up on every side.

    build(graph, x) adds the network, fed with x in its native range [0, native_range].
    """
    g = Graph()
    x = "input" if native_range == 1 else g.mul("input", native_range)
    y = build(g, x)
    if native_range != 1:
        y = g.op("Div", [y, g.const(native_range)])
    g.op("Clip", [y, g.const(0.0, "zero"), g.const(1.0, "one")], out="output")
    out_dims = [f"({d}-{2 * shrink})*{scale}" if shrink else f"{d}*{scale}" for d in "HW"]
    graph = helper.make_graph(
        g.nodes, "sr",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, *out_dims])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="upres models/provision.py")
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model, full_check=True)
    height, width = 2 * shrink + 5, 2 * shrink + 7  # any size the network accepts will do
    got = _output_shape(model, height, width)
    want = [1, 3, (height - 2 * shrink) * scale, (width - 2 * shrink) * scale]
    if got != want:
        raise ValueError(f"the network maps a {height}x{width} input to {got[2:]}, "
                         f"the manifest (x{scale}, shrink {shrink}) says {want[2:]}")
    return model


def split_before_upsampling(model):
    """(trunk, tail): `model` cut at the input of its first Resize (nearest upsampling).

    trunk: `input` -> `features` [N,C,H,W]; tail: `features` -> `output`. Run one after the
    other they compute what `model` does; the engine runs the tail on strips of the trunk's
    features, so that the upsampling layers, which hold the most memory per input pixel, never
    see a whole tile. Fails unless the tail needs nothing of the trunk but that one tensor.
    """
    nodes = list(model.graph.node)
    first = next((i for i, n in enumerate(nodes) if n.op_type == "Resize"), None)
    if first is None:
        raise ValueError("the model has no Resize to split before")
    cut = nodes[first].input[0]
    needed, trunk = {cut}, set()
    for i in reversed(range(first)):
        if needed & set(nodes[i].output):
            trunk.add(i)
            needed.update(nodes[i].input)
    tail = [i for i in range(len(nodes)) if i not in trunk]
    made_by_trunk = {t for i in trunk for t in nodes[i].output}
    leaked = {t for i in tail for t in nodes[i].input} & made_by_trunk - {cut}
    if leaked:
        raise ValueError(f"the tail also reads {sorted(leaked)} from the trunk")
    (info,) = [v for v in _inferred(model, 5, 7).graph.value_info if v.name == cut]
    channels = info.type.tensor_type.shape.dim[1].dim_value
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT,
                                             ["N", channels, "H", "W"])

    def part(indices, name, inputs, outputs):
        part_nodes = []
        for i in sorted(indices):
            node = onnx.NodeProto()
            node.CopyFrom(nodes[i])
            for names in (node.input, node.output):
                for k, tensor in enumerate(names):
                    if tensor == cut:
                        names[k] = "features"
            part_nodes.append(node)
        used = {t for n in part_nodes for t in n.input}
        graph = helper.make_graph(part_nodes, name, inputs, outputs,
                                  [t for t in model.graph.initializer if t.name in used])
        out = helper.make_model(graph, opset_imports=list(model.opset_import),
                                ir_version=model.ir_version, producer_name=model.producer_name)
        props = {p.key: p.value for p in model.metadata_props}
        helper.set_model_props(out, {**props, "stage": name})
        onnx.checker.check_model(out, full_check=True)
        return out

    return (part(trunk, "trunk", [model.graph.input[0]], [features]),
            part(tail, "tail", [features], [model.graph.output[0]]))
