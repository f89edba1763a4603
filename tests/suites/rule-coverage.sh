#!/usr/bin/env bash
# Suite rule-coverage: every rule ID of docs/tun-contract.md and docs/tap-contract.md (bold
# rule IDs, table rows such as W1 or TO3, client replays TC1..TC5) is cited by a test in
# tests/driver/tests or tests/tunnel-sim/tests (tests/suites/lib/rule_coverage.py). Its
# negative test: an ID no test cites must be reported. Builds nothing.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/suites/lib/report.sh
. tests/suites/lib/report.sh

checker=tests/suites/lib/rule_coverage.py
tests=(tests/driver/tests/*.rs tests/tunnel-sim/tests/*.rs)
for contract in docs/tun-contract.md docs/tap-contract.md; do
    if out=$(python3 "$checker" "$contract" "${tests[@]}" 2>&1); then
        pass "$contract: $(tail -n 1 <<<"$out")"
    else
        fail "$contract: rule IDs no test cites" "$out"
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' '- **ZZ-1** a rule no test cites.' '- **W1** a rule tests cite.' >"$tmp/contract.md"
if out=$(python3 "$checker" "$tmp/contract.md" "${tests[@]}" 2>&1); then
    fail "checker misses an uncited rule ID" "$out"
elif grep -q '^ZZ-1: cited by no test' <<<"$out" && ! grep -q '^W1:' <<<"$out"; then
    pass "checker reports an uncited rule ID and only that one"
else
    fail "checker output unexpected" "$out"
fi
finish
