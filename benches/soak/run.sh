#!/usr/bin/env bash
# Soak test of `upres serve` (benches/soak/README.md): builds the binary, installs the pinned
# plot dependencies into .cache/soak-venv, runs soak.py. Arguments go to soak.py, e.g.
#   benches/soak/run.sh                       # 30 minutes, a sample every 10 s
#   benches/soak/run.sh --minutes 3 --ttl 30  # a short trial
#   benches/soak/run.sh --bless               # also writes docs/src/images/soak.png
# Needs scripts/setup.sh (esrgan-slim, ONNX Runtime, the test photos) and python3.11.
set -euo pipefail
cd "$(dirname "$0")/../.."

python=${PYTHON:-python3.11}
venv=.cache/soak-venv
requirements=benches/soak/requirements.txt
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/requirements.sha256" 2>/dev/null)" != "$want" ]; then
    "$python" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --require-hashes --no-deps --only-binary=:all: -r "$requirements"
    echo "$want" >"$venv/requirements.sha256"
fi

[ -n "${SOAK_NO_BUILD:-}" ] || cargo build --release -p upres-cli
exec "$venv/bin/python" benches/soak/soak.py "$@"
