"""Check the ONNX files in .cache/models against the golden outputs of the original runtimes.

Optional dev tool, not used by scripts/setup.sh. It needs numpy and the onnxruntime Python
package, which the project venv does not have; use a scratch venv outside the repo:

    python3.11 -m venv /tmp/ortcheck
    /tmp/ortcheck/bin/pip install onnxruntime==1.31.1 numpy
    /tmp/ortcheck/bin/python models/check_golden.py [--golden DIR] [--models DIR]

For every super-resolution entry of DIR/sr_golden.json whose <name>.onnx exists, it runs the
model on the golden input (edge-padded by the entry's input_edge_pad, as waifu2x's unpadded
convolutions need) and prints the max abs difference; with the moderation vectors it
does the same for open-nsfw.onnx. Exits 1 if a difference exceeds 1e-4 (the golden README's
tolerance) or if no model was checked.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-4


def cases(golden):
    """(onnx file stem, input array, expected output array)"""
    sr = json.loads((golden / "sr_golden.json").read_text())
    x = np.load(golden / sr["input"]["file"])
    for name, spec in sr["models"].items():
        pad = spec.get("input_edge_pad", 0)
        padded = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], mode="edge")
        yield name, padded, np.load(golden / spec["file"])
    yield ("open-nsfw", np.load(golden / "moderation_input_astronaut.npy"),
           np.load(golden / "moderation_output_astronaut.npy"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", type=Path, default=ROOT.parent / "shared" / "golden")
    parser.add_argument("--models", type=Path, default=ROOT / ".cache" / "models")
    args = parser.parse_args()
    checked = failed = 0
    for name, x, expected in cases(args.golden):
        path = args.models / f"{name}.onnx"
        if not path.exists():
            print(f"{name}: skipped (no {path.name})")
            continue
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        (output,) = session.run(None, {session.get_inputs()[0].name: x})
        diff = float(np.abs(output - expected).max()) if output.shape == expected.shape else np.inf
        ok = diff <= TOLERANCE
        checked += 1
        failed += not ok
        print(f"{name}: max abs diff {diff:.3g} {'ok' if ok else 'FAIL'}")
    sys.exit(1 if failed or not checked else 0)


if __name__ == "__main__":
    main()
