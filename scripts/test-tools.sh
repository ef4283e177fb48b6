#!/usr/bin/env bash
# Tools only the tests need. Run by `make test`.
#   promtool (Debian apt, package prometheus, exact version; apt checks each package against
#     the signed archive index): lints GET /metrics in crates/server/tests/metrics.rs. Needs
#     root or sudo the first time.
#   schemathesis (PyPI, pinned with hashes, in its own venv .venv-schemathesis so its
#     dependencies never meet the SDK's): fuzzes the OpenAPI document in
#     crates/server/tests/openapi.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian keeps only the newest point release of a package: when it moves on, update the pin.
if command -v promtool >/dev/null; then
    echo "promtool: ok"
else
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        prometheus=2.42.0+ds-5+deb12u1
    echo "promtool: installed"
fi

python=${PYTHON:-python3}
requirements=crates/server/tests/schemathesis/requirements.txt
stamp=.venv-schemathesis/requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x .venv-schemathesis/bin/schemathesis ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "schemathesis: ok"
else
    "$python" -m venv --clear .venv-schemathesis
    .venv-schemathesis/bin/python -m pip install --quiet --require-hashes --no-deps \
        --only-binary=:all: -r "$requirements"
    echo "$want" >"$stamp"
    echo "schemathesis: installed"
fi
