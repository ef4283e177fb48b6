#!/usr/bin/env bash
# Tools only the tests need. Run by `make test`.
#   From Debian's apt, by exact version (apt checks each package against the signed archive
#   index); needs root or sudo the first time:
#     promtool (package prometheus): lints GET /metrics in crates/server/tests/metrics.rs.
#     chromium + chromium-driver: the browser tests of / and /docs in
#       crates/server/tests/browser.rs.
#     redis-server: the tests of several replicas sharing jobs (each test starts its own on a
#       free port; the package's system service is not used).
#   mdbook (crates registry, pinned, into .cache/tools/mdbook by scripts/docs.sh): builds the
#     documentation book in crates/cli/tests/docs.rs.
#   cargo-cycles (crates registry, pinned, into .cache/tools/cargo-cycles by
#     scripts/check-structure.sh, which `make test` runs first): the module-cycle check.
#   schemathesis (PyPI, pinned with hashes, in its own venv .venv-schemathesis so its
#     dependencies never meet the SDK's): fuzzes the OpenAPI document in
#     crates/server/tests/openapi.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian keeps only the newest point release of a package: when it moves on, update the pins.
chromium_version=150.0.7871.100-1~deb12u1
redis_version=5:7.0.15-1~deb12u7
apt_packages=()
command -v promtool >/dev/null || apt_packages+=(prometheus=2.42.0+ds-5+deb12u1)
command -v chromedriver >/dev/null && command -v chromium >/dev/null ||
    apt_packages+=("chromium=$chromium_version" "chromium-common=$chromium_version"
        "chromium-driver=$chromium_version")
command -v redis-server >/dev/null ||
    apt_packages+=("redis-server=$redis_version" "redis-tools=$redis_version")
if [ ${#apt_packages[@]} -eq 0 ]; then
    echo "promtool, chromium, chromedriver, redis-server: ok"
else
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${apt_packages[@]}"
    echo "installed: ${apt_packages[*]}"
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

scripts/docs.sh --install

# The GPU build of ONNX Runtime (PyPI onnxruntime-gpu, pinned with sha256 in
# models/manifest.json) into .cache/onnxruntime-gpu: the CUDA image's final stage is replayed
# with it in crates/cli/tests/docker.rs. The models are the ones `make setup` installed.
# shellcheck disable=SC2086
UPRES_GPU_RUNTIME=1 scripts/setup.sh ${MODELS:-}
