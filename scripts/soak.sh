#!/usr/bin/env bash
# Long mode of the reliability tests (issue 5; tap units: issue 14): the stress, lifecycle-soak,
# fault-injection and bad-input tests of tests/driver, tun's and tap's, with TUNNEL_SOAK=1
# (1,000 load/unload cycles, more stress rounds, 16x the property-test cases), each test in its
# own process (one simulated kernel per process), then the figures: cycles run, operations per
# stress run, faults injected, bad inputs tried, leaks found (must be 0) and the seed.
#
#   scripts/soak.sh                       fresh seed
#   XNUSIM_SEED=1234 scripts/soak.sh      replay a seed
#
# Not part of scripts/test.sh, which runs the same tests in their short mode. Ends with
# "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
export TUNNEL_SOAK=1
export XNUSIM_SEED=${XNUSIM_SEED:-$(date +%s)}
seed=$XNUSIM_SEED
# The property tests draw their cases from the same seed.
export PROPTEST_RNG_SEED=$seed

log_dir=target/soak-logs
mkdir -p "$log_dir"
log=$log_dir/soak.log
: >"$log"

echo "== building driver tests"
# The test binaries are run directly (not through cargo), so that edits made to the tree
# while the soak runs cannot rebuild it half-way.
if ! cargo test -p driver-tests --no-run --message-format=json \
    >"$log_dir/build.json" 2>"$log_dir/build.log"; then
    tail -n 30 "$log_dir/build.log"
    echo "0 passed, 1 failed"
    exit 1
fi

# binary TARGET: the test executable cargo just built for tests/driver/tests/TARGET.rs.
binary() {
    grep -oE "\"executable\":\"[^\"]*/deps/$1-[0-9a-f]+\"" "$log_dir/build.json" |
        tail -n 1 | sed -E 's/.*:"(.*)"/\1/'
}

passed=0
failed=0
start=$(date +%s)
for target in stress soak faults bad_input tap_stress tap_soak tap_faults tap_bad_input; do
    bin=$(binary "$target")
    if [ -z "$bin" ] || [ ! -x "$bin" ]; then
        echo "FAIL no test binary for $target"
        failed=$((failed + 1))
        continue
    fi
    names=$("$bin" --list 2>/dev/null | sed -n 's/: test$//p')
    for name in $names; do
        out=$log_dir/$target.$name.log
        t0=$(date +%s)
        if "$bin" --exact "$name" --nocapture --test-threads=1 >"$out" 2>&1; then
            passed=$((passed + 1))
            status=PASS
        else
            failed=$((failed + 1))
            status=FAIL
        fi
        printf '%s %5ss %s::%s\n' "$status" "$(($(date +%s) - t0))" "$target" "$name"
        sed "s|^|$target::$name: |" "$out" >>"$log"
        if [ "$status" = FAIL ]; then
            grep -E "panicked|hang|leak|Leaked|seed" "$out" | head -n 8 | sed 's/^/    /'
        fi
    done
done

# sum NAME: adds up every "soak-figure: NAME=V" line of the log.
sum() {
    grep -oE "soak-figure: $1=[0-9]+" "$log" | sed 's/.*=//' | awk '{s += $1} END {print s + 0}'
}
# per_run NAME: "test: V" for each test that printed NAME.
per_run() {
    grep -E "soak-figure: $1=[0-9]+" "$log" | sed -E "s/^([^:]+::[^:]+): soak-figure: $1=/\1 /"
}

leaks=$(grep -cE "leaked|Leaked\(" "$log")
echo
echo "== figures (seed $seed; replay with XNUSIM_SEED=$seed scripts/soak.sh)"
echo "load/unload cycles run:        $(sum soak_cycles) (packets $(sum soak_packets), unloads refused while open $(sum soak_unloads_refused))"
echo "operations per stress run:"
per_run stress_ops | sed 's/^/    /'
echo "stress rounds:                 $(sum stress_rounds); wake-up ping-pong rounds: $(sum wakeup_rounds)"
echo "unload attempts refused:       $(sum unload_refusals)"
echo "faults injected (fired):       $(sum faults)"
echo "bad inputs tried:              $(sum bad_inputs)"
echo "leaks found:                   $leaks"
echo "seed:                          $seed"
echo "wall time:                     $(($(date +%s) - start)) s"
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$leaks" -eq 0 ]
