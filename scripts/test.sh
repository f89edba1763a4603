#!/usr/bin/env bash
# Runs every test of tunnel.kext on a fresh Linux machine and ends with one line
# "N passed, N failed". Installs what it needs first (apt packages, rustup parts).
#
# Suites:
#   cargo      every Rust test in the workspace, under cargo-nextest (one process per
#              test: the simulated kernel is one per process)
#   lint       cargo fmt --check and cargo clippy -D warnings
#   suite      each executable tests/suites/*.sh; each prints its own closing line
#              "N passed, N failed" (and may print "N skipped" beside it)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
ensure_build_deps

passed=0
failed=0
skipped=0
log_dir=$root/target/test-logs
mkdir -p "$log_dir"

# add_counts LOG: adds the last "N passed, N failed[, N skipped]" line of LOG.
add_counts() {
    local line p f s
    line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then
        failed=$((failed + 1))
        echo "  (no result line in $1: counted as one failure)"
        return
    fi
    p=$(sed -nE 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/p' <<<"$line")
    f=$(sed -nE 's/.*passed, ([0-9]+) failed.*/\1/p' <<<"$line")
    s=$(sed -nE 's/.*failed, ([0-9]+) skipped.*/\1/p' <<<"$line")
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
}

echo "== cargo nextest (workspace)"
cargo_log=$log_dir/cargo.log
cargo nextest run --workspace --no-fail-fast --color never 2>&1 | tee "$cargo_log" | grep -E '^\s+(FAIL|SIGSEGV|SIGABRT|TIMEOUT|SKIP)|Summary|error(\[|:)' || true
summary=$(grep -E 'Summary \[' "$cargo_log" | tail -n 1)
if [ -n "$summary" ]; then
    p=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
    f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
    f2=$(sed -nE 's/.* ([0-9]+) timed out.*/\1/p' <<<"$summary")
    s=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$summary")
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${f2:-0})); skipped=$((skipped + ${s:-0}))
else
    echo "  cargo nextest did not finish: see $cargo_log"
    failed=$((failed + 1))
fi

echo "== lint: cargo fmt --check, cargo clippy"
if cargo fmt --all -- --check >"$log_dir/fmt.log" 2>&1; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "  FAIL cargo fmt (see $log_dir/fmt.log)"; fi
if cargo clippy --workspace --all-targets -- -D warnings >"$log_dir/clippy.log" 2>&1; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "  FAIL cargo clippy (see $log_dir/clippy.log)"; tail -n 30 "$log_dir/clippy.log"; fi

for suite in tests/suites/*.sh; do
    [ -e "$suite" ] || continue
    name=$(basename "$suite" .sh)
    echo "== suite $name"
    bash "$suite" >"$log_dir/$name.log" 2>&1
    rc=$?
    grep -E '^(PASS|FAIL|SKIP)' "$log_dir/$name.log" | sed 's/^/  /'
    add_counts "$log_dir/$name.log"
    if [ $rc -ne 0 ] && ! grep -qE '[1-9][0-9]* failed' "$log_dir/$name.log"; then
        echo "  suite $name exited $rc without reporting a failure: counted as one"
        failed=$((failed + 1))
    fi
done

echo
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
