#!/usr/bin/env bash
# The documentation book (docs/, mdBook): installs mdbook pinned from the crates registry into
# .cache/tools/mdbook unless that version is there, then builds the book into target/book.
# `make test` checks it (crates/cli/tests/docs.rs: the build, local links and anchors, the flag
# tables against --help); `make docs` builds it to read.
#
# Usage: scripts/docs.sh [--install]   (--install: only install mdbook)
set -euo pipefail
cd "$(dirname "$0")/.."

mdbook_version=0.5.4
root=.cache/tools/mdbook
mdbook=$root/bin/mdbook
if [ "$("$mdbook" --version 2>/dev/null)" != "mdbook v$mdbook_version" ]; then
    echo "installing mdbook $mdbook_version into $root (a few minutes, once)"
    # Without the default features (serve, watch, search): only `mdbook build` is used.
    cargo install --quiet --locked --force mdbook --version "=$mdbook_version" \
        --no-default-features --root "$root"
fi
echo "mdbook: $("$mdbook" --version)"
[ "${1:-}" = "--install" ] && exit 0
"$mdbook" build docs
echo "the book: target/book/index.html"
