#!/usr/bin/env bash
# Tools only the tests need, from Debian's apt, at exact versions (apt checks each package
# against the signed archive index). Run by `make test`; needs root or sudo the first time.
#   promtool (package prometheus): lints GET /metrics in crates/server/tests/metrics.rs
set -euo pipefail
# Debian keeps only the newest point release of a package: when it moves on, update the pin.
packages=(prometheus=2.42.0+ds-5+deb12u1)
missing=()
command -v promtool >/dev/null || missing+=("${packages[0]}")
if [ ${#missing[@]} -eq 0 ]; then
    echo "test tools: ok"
    exit 0
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "test tools: installed ${missing[*]}"
