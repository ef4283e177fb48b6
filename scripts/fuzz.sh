#!/usr/bin/env bash
# Fuzz the request body parser, the `image` field parser and the image decoders (fuzz/, see
# docs/src/fuzzing.md). `make test` runs it as a smoke test (about a minute per target).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  time per target (default 60; 0 = no time limit, stop on FUZZ_RUNS)
#   TARGET   request_body, image_field, decode (default: all three)
# Environment:
#   FUZZ_RUNS=N        stop each target after N executions (the long run: FUZZ_RUNS=10000000 with
#                      SECONDS=0)
#   FUZZ_JOBS=N        targets run at once (default 1)
#   FUZZ_SANITIZER=S   cargo-fuzz --sanitizer (default none: see docs/src/fuzzing.md)
#   FUZZ_ARGS="..."    extra libFuzzer flags
#   FUZZ_RESUME=1      keep the scratch corpus of the last run and go on from it (a long run in
#                      legs: the executions add up, the corpus carries what was found)
#   CARGO_FUZZ_ROOT    where cargo-fuzz is installed (default .cache/cargo-fuzz)
#
# Installs cargo-fuzz (pinned) from the crates registry into CARGO_FUZZ_ROOT unless that version
# is already there. Uses the nightly toolchain when rustup has one, else stable (enough without a
# sanitizer). Each target starts from its committed seeds (fuzz/corpus/<target>/, never
# modified) and writes what it finds to a scratch corpus (fuzz/target/scratch/<target>/, emptied
# first unless FUZZ_RESUME=1). Exits non-zero on any crash, timeout, out-of-memory or allocation
# over the cap; the input is saved under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pinned-tool.sh
source scripts/pinned-tool.sh

cargo_fuzz_version=0.13.2
all_targets=(request_body image_field decode)

seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "error: unknown fuzz target '$t' (${all_targets[*]})" >&2; exit 2; }
done
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "error: SECONDS must be a whole number, got '$seconds'" >&2; exit 2; }
runs=${FUZZ_RUNS:-}
[ "$seconds" -gt 0 ] || [ -n "$runs" ] || { echo "error: SECONDS=0 needs FUZZ_RUNS" >&2; exit 2; }
jobs=${FUZZ_JOBS:-1}
sanitizer=${FUZZ_SANITIZER:-none}

# --- cargo-fuzz, pinned ---
root=${CARGO_FUZZ_ROOT:-.cache/cargo-fuzz}
cargo_fuzz=$root/bin/cargo-fuzz
install_pinned cargo-fuzz "$cargo_fuzz_version" "$root"

# --- toolchain ---
if [ -z "${RUSTUP_TOOLCHAIN:-}" ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    export RUSTUP_TOOLCHAIN=nightly
else
    # Checked with stable 1.95: `--sanitizer none` builds and runs on stable (with or without
    # this); a sanitizer needs a nightly toolchain, RUSTC_BOOTSTRAP=1 does not get its -Z flags
    # past cargo.
    export RUSTC_BOOTSTRAP=1
    if [ "$sanitizer" != none ]; then
        echo "error: FUZZ_SANITIZER=$sanitizer needs a nightly toolchain (rustup toolchain install nightly)" >&2
        exit 2
    fi
fi
echo "toolchain: $(rustc --version)"

# --- build ---
# The lock file is committed: refuse to build if it is not up to date with fuzz/Cargo.toml.
lock_before=$(sha256sum fuzz/Cargo.lock)
start=$SECONDS
"$cargo_fuzz" fuzz build --dev --sanitizer "$sanitizer"
[ "$(sha256sum fuzz/Cargo.lock)" = "$lock_before" ] || { echo "error: fuzz/Cargo.lock was out of date (now updated): review and commit it" >&2; exit 1; }
echo "fuzz targets built in $((SECONDS - start)) s (sanitizer: $sanitizer)"
# --dev: the profile in fuzz/Cargo.toml (codecs and parsers optimized, no debug info).
bin_dir=fuzz/target/x86_64-unknown-linux-gnu/debug

# --- run ---
max_len() {
    case $1 in
        decode) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

run_target() {
    local t=$1
    local scratch=fuzz/target/scratch/$t artifacts=fuzz/artifacts/$t log=fuzz/target/logs/$t.log
    [ "${FUZZ_RESUME:-0}" = 1 ] || rm -rf "$scratch"
    mkdir -p "$scratch" "$artifacts" "$(dirname "$log")"
    local flags=(
        -rss_limit_mb=1024 -timeout=10 -max_len="$(max_len "$t")" -print_final_stats=1
        -dict="fuzz/dicts/$t.dict" -artifact_prefix="$artifacts/"
    )
    [ "$seconds" -gt 0 ] && flags+=(-max_total_time="$seconds")
    [ -n "$runs" ] && flags+=(-runs="$runs")
    # shellcheck disable=SC2206
    flags+=(${FUZZ_ARGS:-})
    local status=0
    "$bin_dir/$t" "${flags[@]}" "$scratch" "fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    local stat executed per_sec rss cov corpus
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    executed=$(stat number_of_executed_units)
    per_sec=$(stat average_exec_per_sec)
    rss=$(stat peak_rss_mb)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$status" -eq 0 ]; then
        printf '%-12s ok: %s executions, %s exec/s, coverage %s, corpus %s, peak RSS %s MB\n' \
            "$t" "${executed:-?}" "${per_sec:-?}" "${cov:-?}" "${corpus:-?}" "${rss:-?}"
    else
        printf '%-12s FAILED (exit %s) after %s executions; log %s\n' "$t" "$status" "${executed:-?}" "$log"
        grep -E '==upres-fuzz==|^thread .* panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -20
        echo "reproduce: $bin_dir/$t $(ls -t "$artifacts"/* 2>/dev/null | head -1)"
        return 1
    fi
}

failed=0
pids=()
for t in "${targets[@]}"; do
    run_target "$t" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then
        wait "${pids[0]}" || failed=$((failed + 1))
        pids=("${pids[@]:1}")
    fi
done
for pid in "${pids[@]}"; do
    wait "$pid" || failed=$((failed + 1))
done
# The closing line CI reads: one per target.
echo "fuzz: $((${#targets[@]} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
