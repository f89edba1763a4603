#!/usr/bin/env bash
# Regression guard for the driver's hot path: counts the driver's own instructions per packet
# (callgrind: deterministic, unlike wall time) for a fixed small workload on the write and the
# read paths of a tun unit and of a tap unit (tap-write: 1514-byte frames written to /dev/tap0
# and passed to XNU's ether_demux; tap-read: the stack's IPv4 packets framed by ether_frameout,
# read from /dev/tap0), and fails if any grows more than 20% above the figure recorded in
# tests/perf-baseline.txt. Never a wall-clock figure. Record new figures with:
# tests/suites/perf-guard.sh --record
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
bin=${CARGO_TARGET_DIR:-target}/perf/driver-bench
paths=(write read tap-write tap-read)

measure() { # path -> driver instructions per packet
    local file
    file=$(mktemp)
    # tun and tap units share the driver's entry points (shim/shim.c); one kind per run.
    valgrind --tool=callgrind --callgrind-out-file="$file" --collect-atstart=no \
        --toggle-collect="tun_dev_${1#tap-}" --compress-strings=no --compress-pos=no \
        "$bin" workload "$1" "$size" "$packets" >/dev/null 2>&1
    python3 scripts/lib/callgrind_cost.py "$file" "$packets" | awk '{print $2}'
    rm -f "$file"
}

declare -A now
for path in "${paths[@]}"; do
    now[$path]=$(measure "$path")
done

if [ "${1:-}" = --record ]; then
    {
        echo "# Driver instructions per packet (callgrind, $size-byte packets, tap: in frames of"
        echo "# $((size + 14)) bytes; profile perf), recorded by tests/suites/perf-guard.sh --record on $(date -u +%Y-%m-%d)."
        for path in "${paths[@]}"; do echo "$path ${now[$path]}"; done
    } >"$baseline"
    echo "recorded: $(for path in "${paths[@]}"; do printf '%s %s, ' "$path" "${now[$path]}"; done)"
    exit 0
fi

for path in "${paths[@]}"; do
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
