#!/usr/bin/env bash
# Regression guard for the driver's hot path: counts the driver's own instructions per packet
# (callgrind: deterministic, unlike wall time) for a fixed small workload on the write and the
# read paths, and fails if either grows more than 20% above the figure recorded in
# tests/perf-baseline.txt. Record new figures with: tests/suites/perf-guard.sh --record
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
baseline=tests/perf-baseline.txt
packets=300
size=1500
# shellcheck source=tests/suites/lib/report.sh
. tests/suites/lib/report.sh

if ! command -v valgrind >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null 2>&1 || true
fi
if ! command -v valgrind >/dev/null 2>&1; then
    skip "valgrind is not available: no instruction counts"
    finish
fi
if ! cargo build --quiet --profile perf -p tunnel-bench; then
    fail "building the benchmark binary"
    finish
fi

measure() { # path -> driver instructions per packet
    local file
    file=$(mktemp)
    valgrind --tool=callgrind --callgrind-out-file="$file" --collect-atstart=no \
        --toggle-collect="tun_dev_$1" --compress-strings=no --compress-pos=no \
        target/perf/driver-bench workload "$1" "$size" "$packets" >/dev/null 2>&1
    python3 scripts/lib/callgrind_cost.py "$file" "$packets" | awk '{print $2}'
    rm -f "$file"
}

declare -A now
for path in write read; do
    now[$path]=$(measure "$path")
done

if [ "${1:-}" = --record ]; then
    {
        echo "# Driver instructions per packet (callgrind, $size-byte packets, profile perf),"
        echo "# recorded by tests/suites/perf-guard.sh --record on $(date -u +%Y-%m-%d)."
        echo "write ${now[write]}"
        echo "read ${now[read]}"
    } >"$baseline"
    echo "recorded: write ${now[write]}, read ${now[read]}"
    exit 0
fi

for path in write read; do
    base=$(awk -v p="$path" '$1 == p {print $2}' "$baseline" 2>/dev/null)
    value=${now[$path]}
    if [ -z "$base" ] || [ -z "$value" ]; then
        fail "$path path: no figure (baseline '${base}', measured '${value}')"
    elif [ "$value" -le $((base * 120 / 100)) ]; then
        pass "$path path: $value driver instructions/packet (baseline $base, limit +20%)"
    else
        fail "$path path: $value driver instructions/packet, more than 20% above the baseline $base"
    fi
done
finish
