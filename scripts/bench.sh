#!/usr/bin/env bash
# Measures tunnel.kext's per-packet cost (not a test: it reports, it never passes or fails).
# Every comparison is measured in this run, on this machine:
#   L0  the driver path in-process (write -> ifnet_input, output -> read), simulator
#       strictness off: ns/packet (median, min, max of RUNS) and instructions/packet under
#       callgrind (the driver's own, apart from the simulated kernel's), beside a plain copy
#       of the same bytes (the bound every driver pays); for tun0 (IP packets of SIZE bytes)
#       and tap0 (the same packets in Ethernet frames of SIZE + 14 bytes: write -> ifnet_input
#       -> XNU's ether_demux, ARP pre-output + ether_frameout -> output -> read);
#   L1  device-level loops through the simulated syscall layer beside the same loops on
#       Linux's /dev/net/tun (IFF_TUN|IFF_NO_PI) in a network namespace this script creates
#       (tun only);
#   L2  end to end through scripts/demo.sh's path, when that is available (see its output):
#       tun (in-process relay) and tap (in-process select/read/write linker, Linux taps with
#       the units' MACs; docs/tap-contract.md section 17), each beside its plain relay (the
#       same two Linux devices joined by threads and a queue, no driver), measured one after
#       the other in this run.
# Writes ${CARGO_TARGET_DIR:-target}/bench/results.csv and l0.png there; prints a table.
# Usage: scripts/bench.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
ensure_build_deps >/dev/null
apt_install valgrind iproute2 >/dev/null

SIZES=64,576,1500,9000
PACKETS=20000
RUNS=7
SECONDS_L1=2
SECONDS_L2=5
UDP_RATE=200M
CG_PACKETS=2000
if [ "${1:-}" = --quick ]; then PACKETS=2000; RUNS=3; SECONDS_L1=1; SECONDS_L2=2; CG_PACKETS=200; fi

target_dir=${CARGO_TARGET_DIR:-target}
out=$target_dir/bench
mkdir -p "$out"
cargo build --quiet --profile perf -p tunnel-bench
bin=$target_dir/perf/driver-bench
csv=$out/results.csv
echo "level,size,metric,value,min,max" >"$csv"

echo "== L0: driver path in-process (ns/packet; $RUNS runs of $PACKETS packets)"
"$bin" l0 "$SIZES" "$PACKETS" "$RUNS" | tail -n +2 | while IFS=, read -r level size path med min max; do
    echo "$level,$size,${path}_ns,$med,$min,$max" >>"$csv"
done

echo "== L0: instructions/packet under callgrind ($CG_PACKETS packets)"
cg() { # path size -> "total driver kernel" per packet
    local path=$1 size=$2 toggle file
    file=$(mktemp "$out/cg.XXXXXX")
    # tun and tap units share the driver's entry points (shim/shim.c); one kind per run.
    case $path in
        write | tap-write) toggle=tun_dev_write ;;
        read | tap-read) toggle=tun_dev_read ;;
        copy | tap-copy) toggle='*copy_path*' ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file="$file" --collect-atstart=no \
        --toggle-collect="$toggle" --compress-strings=no --compress-pos=no \
        "$bin" workload "$path" "$size" "$CG_PACKETS" >/dev/null 2>&1
    python3 scripts/lib/callgrind_cost.py "$file" "$CG_PACKETS"
    rm -f "$file"
}
IFS=, read -r -a sizes <<<"$SIZES"
for size in "${sizes[@]}"; do
    read -r _ copy_ir _ <<<"$(cg copy "$size")"
    echo "L0,$size,copy_instr,$copy_ir,," >>"$csv"
    read -r _ copy_ir _ <<<"$(cg tap-copy "$size")"
    echo "L0,$size,tap-copy_instr,$copy_ir,," >>"$csv"
    for path in write read tap-write tap-read; do
        read -r total driver kernel <<<"$(cg "$path" "$size")"
        {
            echo "L0,$size,${path}_instr_total,$total,,"
            echo "L0,$size,${path}_instr_driver,$driver,,"
            echo "L0,$size,${path}_instr_kernel,$kernel,,"
        } >>"$csv"
    done
done

echo "== L1: device loops, simulated driver vs Linux tun (packets/s, ${SECONDS_L1}s each)"
ns=tunbench$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ "$(id -u)" -eq 0 ] && [ -e /dev/net/tun ] && ip netns add "$ns" 2>/dev/null; then
    ip netns exec "$ns" ip link set lo up
    for mode in write read echo; do
        "$bin" devloop "$mode" 1500 "$SECONDS_L1" | while IFS=, read -r level size metric value; do
            echo "$level,$size,${metric}_pps,$value,," >>"$csv"; done
        ip netns exec "$ns" "$bin" linuxtun "$mode" 1500 "$SECONDS_L1" | while IFS=, read -r level size metric value; do
            echo "$level,$size,${metric}_pps,$value,," >>"$csv"; done
    done
else
    echo "  skipped: needs root, /dev/net/tun and network namespaces"
fi

echo "== L2: end to end, namespace A -> B, through the driver vs a plain relay (${SECONDS_L2}s each; tun, then tap)"
l2() {
    # shellcheck source=scripts/lib/traffic.sh
    TR_REPO=$PWD; . scripts/lib/traffic.sh
    local why
    tr_deps >/dev/null 2>&1
    why=$(tr_why_not)
    if [ -n "$why" ]; then echo "  skipped: $why"; return 0; fi
    TUNNEL_SIM_PROFILE=release tr_build || { echo "  skipped: tunnel-sim did not build"; return 0; }
    trap 'tr_cleanup; cleanup' EXIT INT TERM
    tr_setup || { echo "  skipped: cannot create namespaces"; return 0; }
    local path kind=()
    # driver/plain: tun0 <-> tun1; tap_driver/tap_plain: ta0 <-> tb0 (Ethernet, ARP, ND).
    for path in driver plain tap_driver tap_plain; do
        case $path in
            tap_*) kind=(--tap); TR_IPERF_TO=10.77.0.2 ;;
            *) kind=(); TR_IPERF_TO=10.66.0.2 ;;
        esac
        if [ "${path#tap_}" = driver ]; then
            if ! { tr_start_host "${kind[@]}" --relay inproc && tr_wait_opened; }; then
                echo "  $path: the host did not start"
                tr_stop_host
                continue
            fi
        else
            rm -f "$TR_DIR/ready"
            timeout 300 "$TR_BIN" plain "${kind[@]}" --ns-a "$TR_NS_A" --ns-b "$TR_NS_B" --ns-host "$TR_NS_R" \
                --ready "$TR_DIR/ready" --max-seconds 200 >"$TR_DIR/plain.out" 2>&1 &
            TR_HOST_PID=$!
            TR_PIDS+=("$TR_HOST_PID")
            for _ in $(seq 100); do [ -f "$TR_DIR/ready" ] && break; sleep 0.1; done
        fi
        tr_iperf tcp "$SECONDS_L2"
        echo "L2,0,${path}_tcp_mbps,$TR_IPERF,," >>"$csv"
        tr_iperf udp "$SECONDS_L2" "$UDP_RATE"
        read -r mbps lost total <<<"$TR_IPERF"
        echo "L2,0,${path}_udp_mbps,$mbps,," >>"$csv"
        echo "L2,0,${path}_udp_lost,$lost,0,$total" >>"$csv"
        tr_run "$TR_DIR/rtt.out" timeout 60 ip netns exec "$TR_NS_A" ping -n -c 200 -i 0.01 -W 2 "$TR_IPERF_TO"
        sed -nE 's/.*time=([0-9.]+) ms.*/\1/p' "$TR_DIR/rtt.out" | sort -n >"$TR_DIR/rtt.sorted"
        local n p50 p99
        n=$(wc -l <"$TR_DIR/rtt.sorted")
        if [ "$n" -gt 0 ]; then
            p50=$(sed -n "$(( (n + 1) / 2 ))p" "$TR_DIR/rtt.sorted")
            p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$TR_DIR/rtt.sorted")
            echo "L2,0,${path}_rtt_p50_ms,$p50,," >>"$csv"
            echo "L2,0,${path}_rtt_p99_ms,$p99,," >>"$csv"
        fi
        tr_stop_host
    done
    tr_cleanup
}
# The traffic helpers are written for scripts without `set -e` (a kill of a process that
# already ended is not an error there): run them in a subshell without it.
(
    set +eu
    l2
)

python3 - "$csv" "$out" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
val = {(r["level"], r["size"], r["metric"]): float(r["value"]) for r in rows}
sizes = sorted({int(r["size"]) for r in rows if r["level"] == "L0"})
for kind, p in (("tun0, IP packets of SIZE bytes", ""), ("tap0, Ethernet frames of SIZE + 14 bytes", "tap-")):
    print()
    print(f"L0 {kind}")
    print(f"{'size':>6} | {'write ns':>9} {'read ns':>9} {'copy ns':>8} | {'w/copy':>6} {'r/copy':>6} | {'w drv ins':>9} {'r drv ins':>9} {'copy ins':>8}")
    for s in sizes:
        g = lambda m: val.get(("L0", str(s), p + m), float("nan"))
        c = g("copy_ns")
        print(f"{s:>6} | {g('write_ns'):>9.0f} {g('read_ns'):>9.0f} {c:>8.0f} | {g('write_ns')/c:>6.1f} {g('read_ns')/c:>6.1f} | {g('write_instr_driver'):>9.0f} {g('read_instr_driver'):>9.0f} {g('copy_instr'):>8.0f}")
l1 = [(m, v) for (lvl, s, m), v in val.items() if lvl == "L1"]
if l1:
    print()
    for mode in ("write", "read", "echo"):
        sim = val.get(("L1", "1500", f"sim-{mode}_pps"))
        lin = val.get(("L1", "1500", f"linux-{mode}_pps"))
        if sim and lin:
            print(f"L1 {mode:>5}: simulated {sim:>10.0f} pkt/s   Linux tun {lin:>10.0f} pkt/s   ratio {sim/lin:.2f}")
def l2(m):
    return val.get(("L2", "0", m))
for kind, k in (("tun", ""), ("tap", "tap_")):
    d, p = f"{k}driver", f"{k}plain"
    if l2(f"{d}_tcp_mbps") and l2(f"{p}_tcp_mbps"):
        print()
        print(f"L2 {kind} iperf3 TCP: driver {l2(f'{d}_tcp_mbps'):.0f} Mbit/s, plain relay {l2(f'{p}_tcp_mbps'):.0f} Mbit/s, ratio {l2(f'{d}_tcp_mbps')/l2(f'{p}_tcp_mbps'):.2f}")
        if l2(f"{d}_udp_mbps") and l2(f"{p}_udp_mbps"):
            print(f"L2 {kind} iperf3 UDP (fixed rate): driver {l2(f'{d}_udp_mbps'):.0f} Mbit/s (lost {l2(f'{d}_udp_lost'):.0f}), plain relay {l2(f'{p}_udp_mbps'):.0f} Mbit/s (lost {l2(f'{p}_udp_lost'):.0f}), ratio {l2(f'{d}_udp_mbps')/l2(f'{p}_udp_mbps'):.2f}")
        for q in (d, p):
            if l2(f"{q}_rtt_p50_ms") is not None:
                print(f"L2 {kind} ping RTT {q.removeprefix(k)}: p50 {l2(f'{q}_rtt_p50_ms'):.3f} ms, p99 {l2(f'{q}_rtt_p99_ms'):.3f} ms")
try:
    import matplotlib
except ImportError:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "matplotlib"], check=False)
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for metric, label in (("write_ns", "tun write -> ifnet_input"), ("read_ns", "tun output -> read"),
                          ("tap-write_ns", "tap write -> ifnet_input"), ("tap-read_ns", "tap output -> read"),
                          ("copy_ns", "plain copy")):
        ax.plot(sizes, [val.get(("L0", str(s), metric)) for s in sizes], marker="o", label=label)
    ax.set_xscale("log"); ax.set_yscale("log")
    ax.set_xlabel("packet size (bytes)"); ax.set_ylabel("ns / packet (median)")
    ax.set_title("tunnel.kext in the simulated kernel (L0)"); ax.legend(); ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout(); fig.savefig(f"{sys.argv[2]}/l0.png", dpi=110)
    print(f"\nchart: {sys.argv[2]}/l0.png")
except Exception as e:  # the table and CSV are the result; the chart is a convenience
    print(f"\nno chart ({e})")
print(f"csv: {sys.argv[1]}")
PY
