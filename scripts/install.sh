#!/usr/bin/env bash
# Installs upres for use outside the checkout: the `upres` binary into $PREFIX/bin (default
# ~/.local/bin), ONNX Runtime and the models into the upres home ($UPRES_HOME, else
# $XDG_DATA_HOME/upres, else ~/.local/share/upres), where the binary finds them from any folder.
#   scripts/install.sh [--binary PATH] [MODEL ...]
# MODEL ids are passed to scripts/setup.sh (default: all). --binary installs an already built
# binary instead of running `cargo install`.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=""
if [ "${1:-}" = "--binary" ]; then
    binary=$2
    shift 2
fi
scripts/setup.sh "$@"
prefix=${PREFIX:-$HOME/.local}
home=${UPRES_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/upres}
if [ -n "$binary" ]; then
    install -D -m 755 "$binary" "$prefix/bin/upres"
else
    cargo install --locked --path crates/cli --root "$prefix"
fi
mkdir -p "$home"
for dir in onnxruntime models; do
    rm -rf "$home/$dir.new"
    cp -R ".cache/$dir" "$home/$dir.new"
    rm -rf "$home/$dir"
    mv "$home/$dir.new" "$home/$dir"
done
echo "installed $prefix/bin/upres; ONNX Runtime and models in $home"
