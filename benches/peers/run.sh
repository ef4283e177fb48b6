#!/usr/bin/env bash
# The peer benchmark: upres against bare ONNX Runtime (Python), ncnn (Python), UpscalerJS on
# TF.js's WASM backend (Node) and PyTorch CPU, on the same photo crops and the same weights,
# end to end (PNG decode to PNG encode). See benches/peers/README.md.
#
#   benches/peers/run.sh [--scratch DIR] [--no-torch] [--no-tfjs] [bench.py flags...]
#   e.g. benches/peers/run.sh --models span,esrgan-slim --sizes 256 --reps 1
#
# Installs every peer, pinned (Python wheels by sha256, npm packages by package-lock.json
# integrity), into the scratch folder (default .cache/peers); nothing goes into the system.
# Needs scripts/setup.sh first (models, ONNX Runtime, photos, and the cached model archives).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=benches/peers
SCRATCH=.cache/peers
TORCH=1
TFJS=1
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --scratch) SCRATCH="$2"; shift 2 ;;
    --no-torch) TORCH=0; shift ;;
    --no-tfjs) TFJS=0; shift ;;
    *) PASS+=("$1"); shift ;;
  esac
done
mkdir -p "$SCRATCH"
SCRATCH="$(cd "$SCRATCH" && pwd)"
for f in .cache/testdata/astronaut.png .cache/onnxruntime/libonnxruntime.so.1.31.1; do
  [ -e "$f" ] || { echo "$f missing: run scripts/setup.sh first" >&2; exit 2; }
done

# A venv from pinned requirement files, redone only when they change.
venv() { # dir requirement-files...
  local dir="$1"; shift
  local stamp
  stamp="$(cat "$@" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "installing $(basename "$dir") ($*)" >&2
    rm -rf "$dir"
    python3.11 -m venv "$dir"
    local args=()
    for r in "$@"; do args+=(-r "$r"); done
    "$dir/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps \
      --only-binary=:all: "${args[@]}"
    echo "$stamp" > "$dir/.stamp"
  fi
}

venv "$SCRATCH/venv" "$HERE/requirements.txt"
PREP_PY="$SCRATCH/venv/bin/python"
PREP_ARGS=()
if [ "$TORCH" = 1 ]; then
  venv "$SCRATCH/torchvenv" "$HERE/requirements.txt" "$HERE/requirements-torch.txt"
  PREP_PY="$SCRATCH/torchvenv/bin/python"
  PREP_ARGS+=(--torch)
else
  rm -rf "$SCRATCH/torch"
fi

if [ "$TFJS" = 1 ]; then
  mkdir -p "$SCRATCH/node"
  stamp="$(cat "$HERE/tfjs/package.json" "$HERE/tfjs/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$SCRATCH/node/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "installing the TF.js runner (npm ci)" >&2
    cp "$HERE/tfjs/package.json" "$HERE/tfjs/package-lock.json" "$SCRATCH/node/"
    (cd "$SCRATCH/node" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$stamp" > "$SCRATCH/node/.stamp"
  fi
  cp "$HERE/tfjs/runner.mjs" "$HERE/tfjs/resolve-hook.mjs" "$SCRATCH/node/"
else
  rm -rf "$SCRATCH/node/node_modules" "$SCRATCH/node/.stamp"
fi

cargo build --release --quiet -p upres-benches --example peer
for ((i = 0; i < ${#PASS[@]}; i++)); do # prepare the same models and sizes
  case "${PASS[$i]}" in --sizes|--models) PREP_ARGS+=("${PASS[$i]}" "${PASS[$((i + 1))]:-}") ;; esac
done
"$PREP_PY" "$HERE/prepare.py" --out "$SCRATCH" "${PREP_ARGS[@]}"
exec "$SCRATCH/venv/bin/python" "$HERE/bench.py" --scratch "$SCRATCH" "${PASS[@]}"
