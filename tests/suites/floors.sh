#!/usr/bin/env bash
# Suite floors: the driver crate's module graph against the floors of docs/style.md rule 3
# (entry points -> core -> KPI wrappers -> shim), from the `crate::` paths of src/
# (tests/suites/lib/floors.py): no kpi -> core edge, no core -> entry edge, no cycle, and
# `unsafe` only under src/kpi/. Then the checker's own negative tests: in a copy of src/ it
# must catch an injected cycle, an injected kpi -> core edge and an `unsafe` block in the core.
# Builds nothing. Closes with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/suites/lib/report.sh
. tests/suites/lib/report.sh

checker=tests/suites/lib/floors.py
out=$(python3 "$checker" src 2>&1)
while IFS= read -r line; do
    case $line in
        PASS*) pass "${line#PASS }" ;;
        FAIL*) fail "${line#FAIL }" ;;
        "    "*) echo "$line" ;;
        *) fail "floors.py printed an unexpected line" "$line" ;;
    esac
done <<<"$out"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# must_catch NAME FILE LINE EXPECTED: a copy of src/ with LINE appended to FILE must make the
# checker fail with EXPECTED among its FAIL lines.
must_catch() {
    local name=$1 file=$2 line=$3 expected=$4
    rm -rf "$tmp/src" && cp -r src "$tmp/src"
    printf '%s\n' "$line" >>"$tmp/src/$file"
    local got
    got=$(python3 "$checker" "$tmp/src" 2>&1)
    if grep -q "^FAIL $expected" <<<"$got"; then
        pass "checker catches $name"
    else
        fail "checker misses $name" "$got"
    fi
}
must_catch "a core cycle (unit -> driver)" unit.rs "use crate::driver::BUNDLE_ID as _CYCLE;" \
    "the core modules have no cycle"
must_catch "a kpi -> core edge (kpi::lock -> unit)" kpi/lock.rs "use crate::unit as _UP;" \
    "src/kpi names no core"
must_catch "a grouped kpi -> core import" kpi/mbuf.rs "use crate::{queue, kpi::sys as _S};" \
    "src/kpi names no core"
must_catch "a core -> entry edge" cdev.rs "use crate::entry as _TOP;" \
    "no core module names the entry points"
must_catch "an unsafe block in the core" queue.rs "fn _f() { unsafe {} }" \
    "\`unsafe\` appears only under src/kpi/"
finish
