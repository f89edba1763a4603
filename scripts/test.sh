#!/usr/bin/env bash
# Runs every test of tunnel.kext on a fresh Linux machine and ends with one line
# "N passed, N failed, N skipped" (always all three). Installs what it needs first (apt
# packages, rustup parts). Exits non-zero if anything failed.
#
# Suites:
#   cargo      every Rust test in the workspace, under cargo-nextest (one process per
#              test: the simulated kernel is one per process)
#   lint       cargo fmt --check and cargo clippy -D warnings
#   suite      each executable tests/suites/*.sh (the mutation check among them); each prints
#              its own closing line "N passed, N failed[, N skipped]", added up here
#
# Skipped, never passed: a test that cannot run on this machine is counted as skipped, with
# its reason, and never as passed (codebase rule 5). The Rust tests decide nothing silently:
# each precondition (root and /dev/fuse for the FUSE tests, Apple's export lists in
# ../shared/xnu-exports for some kext-bundle tests) belongs to a named test group in
# scripts/lib/preconditions.sh, with a nextest filter expression and a probe. This script
# probes each group once; for an unmet precondition it prints "SKIP <group> (<n> tests):
# <reason>" and leaves the group out of the nextest run with the filter expression. Every
# test of the workspace's list (`cargo nextest list`, ignored ones included) that the run did
# not run is counted as skipped: nextest's own "N skipped" would miss the tests of a binary
# it leaves out whole. Run directly without its precondition, a test of a group fails and
# names what is missing. A group whose filter selects no test is a failure (a renamed file or
# module would otherwise quietly stop being excluded). The suites print their own SKIP lines
# (for example traffic.sh without network namespaces); their closing lines' skipped counts
# are added up the same way as their passes and failures.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
ensure_build_deps
# The installer package's readers and rcodesign (tests/suites/package.sh skips what is missing).
ensure_package_deps || echo "  could not install everything tests/suites/package.sh uses; it reports what it skips"

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
# Every test of the workspace, ignored ones included: what is not run below is skipped.
if ! cargo nextest list --workspace --color never --message-format oneline --run-ignored all \
    >"$log_dir/list-all.log" 2>"$log_dir/list-all.err"; then
    echo "  cannot list the workspace's tests (see $log_dir/list-all.err)"
fi
all_tests=$(grep -c . "$log_dir/list-all.log")
# shellcheck source=scripts/lib/preconditions.sh
. scripts/lib/preconditions.sh
filter='all()'
for group in "${PRECONDITION_GROUPS[@]}"; do
    expr=$(precondition_filter "$group")
    list=$log_dir/list-$group.log
    if ! cargo nextest list --workspace --color never --message-format oneline -E "$expr" \
        >"$list" 2>"$list.err"; then
        # A build or filter error: the run below reports the build; a bad filter is ours.
        echo "  FAIL test group $group: cannot list its tests ($expr; see $list.err)"
        failed=$((failed + 1))
        continue
    fi
    n=$(grep -c . "$list")
    if [ "$n" -eq 0 ]; then
        echo "  FAIL test group $group: its filter selects no test ($expr)"
        failed=$((failed + 1))
        continue
    fi
    why=$(precondition_why_not "$group")
    if [ -n "$why" ]; then
        echo "  SKIP $group ($n tests): $why"
        filter="$filter - ($expr)"
    fi
done
cargo_log=$log_dir/cargo.log
cargo nextest run --workspace --no-fail-fast --color never -E "$filter" 2>&1 | tee "$cargo_log" | grep -E '^\s+(FAIL|SIGSEGV|SIGABRT|SIGKILL|TIMEOUT)|Summary|error(\[|:)' || true
summary=$(grep -E 'Summary \[' "$cargo_log" | tail -n 1)
if [ -n "$summary" ]; then
    # "N tests run: P passed, F failed, T timed out, S skipped". nextest's own "skipped" leaves
    # out the tests of a binary it did not run at all (a group excluded by binary_id), so the
    # skipped count here is every listed test that did not run.
    ran=$(sed -nE 's/.* ([0-9]+)(\/[0-9]+)? tests? run.*/\1/p' <<<"$summary")
    p=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
    f=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
    f2=$(sed -nE 's/.* ([0-9]+) timed out.*/\1/p' <<<"$summary")
    # "N/M tests run": the run was cancelled; the M - N selected tests it did not reach failed.
    selected=$(sed -nE 's/.* [0-9]+\/([0-9]+) tests? run.*/\1/p' <<<"$summary")
    if [ -n "$selected" ]; then
        echo "  the run was cancelled: $((selected - ran)) selected tests not run, counted as failed"
        failed=$((failed + selected - ran))
        ran=$selected
    fi
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${f2:-0}))
    if [ "$all_tests" -gt 0 ] && [ "$all_tests" -ge "${ran:-0}" ]; then
        skipped=$((skipped + all_tests - ${ran:-0}))
        if [ "$all_tests" -gt "${ran:-0}" ]; then
            echo "  $((all_tests - ${ran:-0})) of $all_tests tests not run: counted as skipped"
        fi
    else
        echo "  the test list ($all_tests) does not cover the $ran tests run: counted as one failure"
        failed=$((failed + 1))
    fi
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
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
