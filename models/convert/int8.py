"""Static int8 (QDQ) quantization of a converted fp32 model from committed activation ranges.

A manifest entry with a `quantize` section (the `<base>-int8` ids) is built by converting the
base model's package files to the fp32 ONNX exactly as the base model is, then running ONNX
Runtime's `quantize_static` on it with the activation ranges read from
`models/quantize/<base>-x<scale>.json` (ONNX Runtime's calibration cache, made by
`models/quantize.py calibrate <id>`). With the ranges given no calibration inference runs: the
quantizer only places QuantizeLinear/DequantizeLinear pairs and rounds the weights (numpy), so
the output is the same bytes on every run and takes seconds, not the minutes a calibration does.

Needs the onnxruntime Python package (models/requirements.txt).
"""

import logging
import tempfile
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parent.parent.parent


def settings_text(q, scale):
    return (f"ONNX Runtime static QDQ: {q['activations']} activations, {q['weights']} weights "
            f"{'per channel' if q['per_channel'] else 'per tensor'}"
            f"{', reduce_range (7-bit)' if q['reduce_range'] else ''}, ops {q['ops']}"
            f"{', fp32 nodes ' + ' '.join(q['fp32_nodes']) if q.get('fp32_nodes') else ''}, "
            f"{q['calibration']} ranges {q['ranges'][f'x{scale}']} of {q['from']}-x{scale}")


def quantize(model, q, scale):
    """The int8 model (bytes) of an fp32 ModelProto under the manifest's `quantize` section."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    ranges = ROOT / q["ranges"][f"x{scale}"]
    if not ranges.is_file():  # never calibrate at set-up: quantize_static would try to
        raise FileNotFoundError(f"{ranges}: make it with models/quantize.py calibrate")
    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    ops = {"all": None, "conv": ["Conv", "ConvTranspose"]}[q["ops"]]
    method = {"MinMax": CalibrationMethod.MinMax}[q["calibration"]]
    fp32 = q.get("fp32_nodes", [])
    missing = set(fp32) - {n.name for n in model.graph.node}
    if missing:
        raise ValueError(f"fp32_nodes not in the model: {sorted(missing)}")
    props = {p.key: p.value for p in model.metadata_props}
    logging.disable(logging.WARNING)  # its advice to pre-process (shape inference) first
    with tempfile.TemporaryDirectory(prefix="upres-int8.") as tmp:
        out = Path(tmp) / "int8.onnx"
        quantize_static(model, str(out), None, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=ops, per_channel=q["per_channel"],
                        reduce_range=q["reduce_range"], activation_type=qtype[q["activations"]],
                        weight_type=qtype[q["weights"]], nodes_to_exclude=fp32,
                        calibrate_method=method,
                        calibration_cache_path=str(ranges))
        quantized = onnx.load(out)
    logging.disable(logging.NOTSET)
    props["quantization"] = settings_text(q, scale)
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(quantized, props)
    return quantized.SerializeToString()
