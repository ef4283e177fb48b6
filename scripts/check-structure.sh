#!/usr/bin/env bash
# Structure checks (issue 22), run by `make test` before the test suite. Both are quick once the
# tool is installed, and keep the code easy to read and to change:
#
# (a) No module cycles in any crate of the workspace (upres-engine, upres-request, upres-server,
#     upres-cli, upres-benches). Modules that import from each other, directly or round a loop,
#     can no longer be read, tested or moved one at a time; a shared item goes down into a module
#     of its own that both use.
#     The tool: cargo-cycles (crates registry, pinned below, installed into
#     .cache/tools/cargo-cycles unless that version is already there: about 80 s to build on 2
#     cores; cargo-modules, whose `--acyclic` check needs rust-analyzer's crates, took 8.5 min,
#     and its check counts any type whose own method names it, `fn new() -> Self`, as a cycle).
#     It reads each crate's `use` declarations (syntax only) into a graph of modules, in which a
#     parent's `mod child;` is an edge parent -> child. So:
#       - a child importing from an ancestor by a `crate::` (or `super::super::`) path closes a
#         loop and is reported: import a shared item from the module that defines it;
#       - `use super::Item` (one level up) is not counted: the idiom of a helper module using
#         the type it helps;
#       - glob imports, imports of functions (a lower-case last segment) and paths written
#         inline in code are not seen; nor are test modules told apart from the rest.
# (b) No Rust source file outside tests over 450 lines: every `.rs` file that git tracks or
#     would track (not ignored) outside a tests/ folder: crates/*/src, crates/*/benches,
#     benches/, fuzz/fuzz_targets, fuzz/src, fuzz/examples. Offenders are listed; split them by
#     what they do.
#
# Usage: scripts/check-structure.sh
# Environment: CARGO_CYCLES_ROOT  where cargo-cycles is installed (default .cache/tools/cargo-cycles)
# Exits non-zero, naming what failed, when either check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pinned-tool.sh
source scripts/pinned-tool.sh

cargo_cycles_version=0.2.0
max_lines=450
# Every member of the root workspace (fuzz/ is a workspace of its own: cargo-cycles 0.2.0
# cannot read its `members = ["."]`, and its three targets are one file each).
crates=(crates/engine crates/request crates/server crates/cli benches)

failed=()

# --- (a) module cycles ---
root=${CARGO_CYCLES_ROOT:-.cache/tools/cargo-cycles}
[[ "$root" = /* ]] || root=$PWD/$root
cargo_cycles=$root/bin/cargo-cycles
install_pinned cargo-cycles "$cargo_cycles_version" "$root"

for dir in "${crates[@]}"; do
    # Run from the crate's folder, named by its absolute path: cargo-cycles reads ./Cargo.toml
    # and names the crate's modules after the folder (crate:: paths resolve only that way).
    if out=$(cd "$dir" && "$cargo_cycles" --workspace "$PWD" 2>&1); then
        echo "module cycles: none in $dir"
    else
        echo "module cycles in $dir:"
        # Its progress lines (INFO, not silenced by RUST_LOG) left out.
        echo "$out" | grep -v ' INFO ' | sed 's/^/  /'
        failed+=("module cycles in $dir")
    fi
done

# --- (b) file length ---
long=()
while IFS= read -r -d '' file; do
    [ -f "$file" ] || continue
    lines=$(wc -l <"$file")
    [ "$lines" -le "$max_lines" ] || long+=("$lines $file")
done < <(git ls-files -z --cached --others --exclude-standard -- '*.rs' ':!:tests/**' ':!:**/tests/**')
if [ ${#long[@]} -eq 0 ]; then
    echo "file length: no source file outside tests over $max_lines lines"
else
    echo "source files outside tests over $max_lines lines:"
    printf '  %s\n' "${long[@]}"
    failed+=("${#long[@]} file(s) over $max_lines lines")
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "check-structure: FAILED: $(IFS=';'; echo "${failed[*]}" | sed 's/;/; /g')" >&2
    exit 1
fi
echo "check-structure: ok"
