#!/usr/bin/env bash
# Mutation check (issue 12): shows that the tests catch the two classic bugs of the seed
# driver. It copies the working tree as it is (committed or not; target/ and other ignored
# files stay out) to target/mutation/tree, puts each bug back by an exact text replacement,
# runs the tests that should catch it, and puts the original text back. The repository
# itself is never touched.
#
#   a  lost wakeup: the blocking dequeue unlocks the unit mutex, then calls msleep with a NULL
#      mutex (docs/tun-contract.md RD-5: an enqueue and its wakeup between the two are never seen,
#      and the reader sleeps with a packet queued)
#   b  use after free on unload: unload releases the ifnet without waiting for its `detached`
#      callback (ST-3: the late callback then runs on freed driver state, in an unloaded kext)
#
# Prints one line per check, then the closing line of tests/suites/lib/report.sh:
#   PASS control: the N selected tests pass on the unmutated copy
#   PASS mutant X caught by N failing tests (of M): ...
#   FAIL mutant X survived: ...                               the tests did not notice the bug
#   FAIL mutation X did not apply (pattern not found): ...   src/ changed: update MUTATIONS
#   FAIL mutant X did not build                              the patch no longer fits the code
# The control run (the union of the mutants' tests, unmutated) must pass first; otherwise the
# mutants are not judged (reported skipped): a test failing anyway proves nothing about a
# mutant. Exits non-zero on any failure.
#
# Builds with CARGO_TARGET_DIR=target/mutation/target, kept between runs (the main build is
# not invalidated; a later run recompiles only the workspace crates). Run from anywhere:
#   scripts/mutation-check.sh         every mutant
#   scripts/mutation-check.sh b       one of them
# Measured on 2 cores: 15 s with target/mutation warm, 40 s cold (three builds of the crates
# driver-tests needs, three short test runs); so scripts/test.sh runs it on every run, as
# tests/suites/mutation.sh.
# The MUTATIONS variables are read indirectly (${!name}):
# shellcheck disable=SC2034
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD

# ==============================================================================================
# MUTATIONS: the one place to update when src/ changes.
# A mutant is a list of exact replacements X1, X2, ...: X<i>_FILE, the text X<i>_FIND, and the
# text X<i>_REPL put in its place. X<i>_FIND must occur exactly once in X<i>_FILE (counted on
# the copy), or the mutation "did not apply" and the check fails: it never tests an unmutated
# copy by accident. A replacement whose REPL equals its FIND only checks that the text is
# there. X_TESTS is the nextest filter expression (within package TEST_PACKAGE) of the tests
# that should catch the mutant.
# ==============================================================================================
TEST_PACKAGE=driver-tests

# ---- a: lost wakeup ---------------------------------------------------------------------------
# The driver's API cannot express the bug: KGuard::sleep (src/kpi/lock.rs) always hands the
# held mutex to msleep as the interlock. So the mutant goes into KGuard::sleep itself, for
# interruptible sleeps only, which are the blocking dequeue's (Unit::dequeue, src/unit.rs:
# checked by a1; unload's wait for `detached` sleeps uninterruptibly and keeps the interlock).
A_NAME="a (lost wakeup: unlock the unit mutex, then msleep with a NULL mutex)"
A1_FILE=src/unit.rs
A1_FIND="            state.sleep(self.channel(), Interruptible::Yes)?;"
A1_REPL=$A1_FIND
A2_FILE=src/kpi/lock.rs
A2_FIND='        let rc = unsafe {
            sys::msleep(
                chan.0,
                self.mtx,
                pri as i32,
                c"tunnel".as_ptr(),
                ptr::null_mut(),
            )
        };'
A2_REPL='        // MUTANT a (scripts/mutation-check.sh): unlock, then sleep with no interlock.
        let rc = unsafe {
            if interruptible == Interruptible::Yes {
                sys::lck_mtx_unlock(self.mtx);
                let rc = sys::msleep(
                    chan.0,
                    ptr::null_mut(),
                    pri as i32,
                    c"tunnel".as_ptr(),
                    ptr::null_mut(),
                );
                sys::lck_mtx_lock(self.mtx);
                rc
            } else {
                sys::msleep(
                    chan.0,
                    self.mtx,
                    pri as i32,
                    c"tunnel".as_ptr(),
                    ptr::null_mut(),
                )
            }
        };'
A_TESTS='binary(stress) | binary(contract_read_write) | binary(data_path)'

# ---- b: ifnet released before its detached callback -----------------------------------------
# detach_interface (src/driver.rs): after ifnet_detach, unload sleeps until the `detached`
# callback has set state.detached, and only then drops the unit's ifnet reference and, later,
# frees the unit mutexes. The mutant does not wait.
B_NAME="b (use after free on unload: ifnet released before its detached callback)"
B1_FILE=src/driver.rs
B1_FIND='        let mut state = unit.state.lock();
        while !state.detached {
            state.sleep(unit.channel(), Interruptible::No)?;
        }'
B1_REPL='        // MUTANT b (scripts/mutation-check.sh): no wait for the detached callback.'
B_TESTS='binary(load_unload) | binary(soak) | binary(faults) | binary(stress)'

MUTANTS=(a b)
# ==============================================================================================

# MUTATION_FILTER=EXPR replaces every X_TESTS (to look for the tests that catch a mutant).
if [ -n "${MUTATION_FILTER:-}" ]; then
    A_TESTS=$MUTATION_FILTER
    B_TESTS=$MUTATION_FILTER
fi

# shellcheck source=tests/suites/lib/report.sh
. "$root/tests/suites/lib/report.sh"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
if [ -d /usr/lib/llvm-19/bin ]; then export PATH="/usr/lib/llvm-19/bin:$PATH"; fi

base=$root/target/mutation
tree=$base/tree
orig=$base/orig
logs=$base/logs
export CARGO_TARGET_DIR=$base/target
mkdir -p "$base" "$logs"
# One run at a time: the copy and its target directory are shared.
exec 9>"$base/lock"
if ! flock -n 9; then
    echo "another mutation check holds $base/lock; waiting for it"
    flock 9
fi

# copy_tree: the working tree as it is now (tracked and untracked files, not ignored ones)
# into $tree. Fresh modification times (tar -m): cargo must never take a file for unchanged
# and reuse a build of an earlier run's mutant.
copy_tree() {
    rm -rf "$tree" "$orig"
    mkdir -p "$tree"
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done |
        tar --null -T - -cf -) | tar -xmf - -C "$tree"
}
# shellcheck disable=SC2317 # called by the trap
cleanup() { rm -rf "$tree" "$orig"; }
trap cleanup EXIT

# occurrences FILE TEXT: how many times TEXT occurs in FILE (literal, non-overlapping).
occurrences() {
    local content stripped
    content=$(<"$1")
    stripped=${content//"$2"/}
    echo $(((${#content} - ${#stripped}) / ${#2}))
}

# replace FILE FIND REPL: replaces the one occurrence of FIND in the copy of FILE, keeping the
# original under $orig. Fails, saying why, unless FIND occurs exactly once.
replace() {
    local file=$tree/$1 n content
    if [ ! -f "$file" ]; then
        echo "$1 does not exist"
        return 1
    fi
    n=$(occurrences "$file" "$2")
    if [ "$n" -ne 1 ]; then
        echo "found $n times in $1 (expected exactly once): '$(head -n 1 <<<"$2" | sed 's/^ *//')'"
        return 1
    fi
    if [ ! -e "$orig/$1" ]; then
        mkdir -p "$(dirname "$orig/$1")"
        cp "$file" "$orig/$1"
    fi
    content=$(<"$file")
    printf '%s\n' "${content/"$2"/"$3"}" >"$file"
}

# apply X: every replacement of mutant X, in order; prints why on failure.
apply() {
    local x=${1^^} i=1 file find repl
    while true; do
        file=${x}${i}_FILE find=${x}${i}_FIND repl=${x}${i}_REPL
        [ -n "${!file:-}" ] || break
        replace "${!file}" "${!find}" "${!repl}" || return 1
        i=$((i + 1))
    done
    if [ "$i" -eq 1 ]; then
        echo "no replacement defined for mutant $1"
        return 1
    fi
}

# restore: puts back the original of every file a mutant touched (new modification times,
# so that cargo rebuilds them).
restore() {
    if [ -d "$orig" ]; then
        cp -R "$orig/." "$tree/"
        rm -rf "$orig"
    fi
}

# run_tests LABEL FILTER: runs the tests FILTER selects in the copy; sets BUILT (0 when there
# is no nextest summary: the build failed), RAN and FAILED (the failing tests, one a line).
BUILT=0
RAN=0
FAILED=
run_tests() {
    local log=$logs/$1.log summary
    (cd "$tree" && cargo nextest run -p "$TEST_PACKAGE" --no-fail-fast --color never \
        --status-level fail --final-status-level fail -E "$2") >"$log" 2>&1
    summary=$(grep -E 'Summary \[' "$log" | tail -n 1)
    if [ -z "$summary" ]; then
        BUILT=0 RAN=0 FAILED=
        return
    fi
    BUILT=1
    RAN=$(sed -nE 's/.* ([0-9]+) tests? run.*/\1/p' <<<"$summary")
    FAILED=$(grep -E '^\s+(FAIL|SIGSEGV|SIGABRT|SIGBUS|SIGKILL|TIMEOUT|ABORT|LEAK-FAIL) \[' "$log" |
        sed -E 's/^\s+[A-Z-]+ \[[^]]*\] (\([ 0-9/]+\) )?//' | sort -u)
}

selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${MUTANTS[@]}")
for x in "${selected[@]}"; do
    name=${x^^}_NAME
    if [ -z "${!name:-}" ]; then
        echo "unknown mutant '$x' (known: ${MUTANTS[*]})"
        exit 2
    fi
done

start=$(date +%s)
copy_tree
control=""
for x in "${selected[@]}"; do
    t=${x^^}_TESTS
    control="${control:+$control | }(${!t})"
done
run_tests control "$control"
control_ok=0
if [ "$BUILT" -eq 0 ]; then
    fail "control: the unmutated copy did not build (see $logs/control.log)" \
        "$(grep -E '^error' -A 6 "$logs/control.log" | head -n 20)"
elif [ -n "$FAILED" ] || [ "${RAN:-0}" -eq 0 ]; then
    fail "control: the selected tests must pass on the unmutated copy ($RAN run; see $logs/control.log)" \
        "${FAILED:-no test selected by: $control}"
else
    pass "control: the $RAN selected tests pass on the unmutated copy"
    control_ok=1
fi

for x in "${selected[@]}"; do
    name=${x^^}_NAME tests=${x^^}_TESTS
    if [ "$control_ok" -eq 0 ]; then
        skip "mutant ${!name}: not judged, the control run failed"
        continue
    fi
    if ! why=$(apply "$x"); then
        fail "mutation ${!name} did not apply (pattern not found): $why" \
            "update MUTATIONS at the top of scripts/mutation-check.sh"
        restore
        continue
    fi
    t0=$(date +%s)
    run_tests "mutant-$x" "${!tests}"
    restore
    secs=$(($(date +%s) - t0))
    if [ "$BUILT" -eq 0 ]; then
        fail "mutant ${!name} did not build (see $logs/mutant-$x.log)" \
            "$(grep -E '^error' -A 6 "$logs/mutant-$x.log" | head -n 20)"
    elif [ -n "$FAILED" ]; then
        n=$(grep -c . <<<"$FAILED")
        pass "mutant ${!name} caught by $n failing tests (of $RAN, ${secs} s): $(paste -sd, <<<"$FAILED" | sed 's/,/, /g')"
    else
        fail "mutant ${!name} survived: all $RAN tests of '${!tests}' passed (${secs} s; see $logs/mutant-$x.log)"
    fi
done
echo "mutation check: $(($(date +%s) - start)) s (logs in $logs)"
finish
