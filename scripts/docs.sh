#!/usr/bin/env bash
# The documentation book (docs/, mdBook): installs mdbook pinned from the crates registry into
# .cache/tools/mdbook unless that version is there, then builds the book into target/book.
# `make test` checks it (crates/cli/tests/docs.rs: the build, local links and anchors, the flag
# tables against --help); `make docs` builds it to read.
#
# Usage: scripts/docs.sh [--install]   (--install: only install mdbook)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pinned-tool.sh
source scripts/pinned-tool.sh

mdbook_version=0.5.4
root=.cache/tools/mdbook
mdbook=$root/bin/mdbook
# Without the default features (serve, watch, search): only `mdbook build` is used. A few
# minutes, once.
install_pinned mdbook "$mdbook_version" "$root" --no-default-features
[ "${1:-}" = "--install" ] && exit 0
"$mdbook" build docs
echo "the book: target/book/index.html"
