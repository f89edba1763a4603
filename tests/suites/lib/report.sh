# shellcheck shell=bash
# The reporting every suite in tests/suites shares: one PASS/FAIL/SKIP line per check, then the
# closing line "N passed, N failed[, N skipped]" that scripts/test.sh adds up.

passed=0
failed=0
skipped=0

# pass NAME...
pass() { echo "PASS $*"; passed=$((passed + 1)); }

# skip NAME... (say why in the name)
skip() { echo "SKIP $*"; skipped=$((skipped + 1)); }

# fail NAME [DETAIL...]: details are indented under the FAIL line.
fail() {
    echo "FAIL $1"
    shift
    local d
    for d in "$@"; do printf '%s\n' "$d" | sed 's/^/    /'; done
    failed=$((failed + 1))
}

# report: the closing line; non-zero status if anything failed.
report() {
    if [ "$skipped" -gt 0 ]; then
        echo "$passed passed, $failed failed, $skipped skipped"
    else
        echo "$passed passed, $failed failed"
    fi
    [ "$failed" -eq 0 ]
}

# finish: report, then exit with its status.
finish() {
    report
    exit
}
