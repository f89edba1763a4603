# shellcheck shell=bash
# Shared by scripts/demo.sh and tests/suites/traffic.sh: network namespaces, the tunnel-sim
# host, relays, counters, and cleanup of everything by its id.
#
# Rules (docs/xnu-sim.md 6.4): traffic only inside namespaces created here (and their loopback);
# the host's interfaces are never touched; every process runs under `timeout`; every loop is
# bounded; cleanup removes exactly the namespaces, mount and processes this run created.
#
# Topology (names unique per run: ts<pid>a, ts<pid>b, ts<pid>r):
#   A: Linux tun0 10.66.0.1 <-> 10.66.0.2, fd66::1 <-> fd66::2  (bridged to the sim's tun0)
#   B: Linux tun1, the mirror image                               (bridged to the sim's tun1)
#   R: loopback only; the host, its FUSE server and the relays run here.
#   A stack -> tun0 -> driver tun0 output -> /dev/tun0 read -> relay (UDP on R's loopback)
#   -> /dev/tun1 write -> driver tun1 ifnet_input -> tun1 -> B stack, and back.
# Tap units (host --tap; docs/tap-contract.md section 17), the same namespaces:
#   A: Linux tap ta0 10.77.0.1/24, fd77::1/64, with the sim tap0's MAC  (bridged to tap0)
#   B: Linux tap tb0 10.77.0.2/24, fd77::2/64, with the sim tap1's MAC  (bridged to tap1)
#   A stack -> ta0 -> raw output on tap0 -> /dev/tap0 read -> linker (select/read/write)
#   -> /dev/tap1 write -> tap1 ifnet_input (ether_demux) -> frame hook -> tb0 -> B stack.

TR_ID=ts$$
TR_NS_A=${TR_ID}a
TR_NS_B=${TR_ID}b
TR_NS_R=${TR_ID}r
TR_NAMESPACES=()
TR_PIDS=()
TR_ALL_PIDS=()
TR_RELAY_PIDS=()
# Results of tr_ping and tr_iperf (read by the scripts that source this file).
# shellcheck disable=SC2034
TR_PING=
# shellcheck disable=SC2034
TR_IPERF=
# The address tr_iperf's server listens on in B (tap runs set 10.77.0.2).
TR_IPERF_TO=10.66.0.2
TR_HOST_PID=
TR_DIR=
TR_BIN=

# tr_deps: the Debian packages the traffic path needs (apt only when something is missing).
tr_deps() {
    # shellcheck source=scripts/lib/deps.sh
    . "$TR_REPO/scripts/lib/deps.sh"
    apt_install iproute2 iputils-ping iperf3 socat fuse3
}

# tr_why_not: prints why this machine cannot run the traffic path, or nothing.
tr_why_not() {
    if [ "$(id -u)" -ne 0 ]; then echo "not root (network namespaces and tun need root)"; return; fi
    if [ ! -c /dev/net/tun ]; then echo "/dev/net/tun is missing"; return; fi
    for c in ip ping iperf3 socat timeout; do
        command -v "$c" >/dev/null 2>&1 || { echo "$c is not installed"; return; }
    done
    local probe=${TR_ID}probe
    if ! timeout 10 ip netns add "$probe" 2>/dev/null; then echo "cannot create a network namespace"; return; fi
    timeout 10 ip netns del "$probe" 2>/dev/null
}

# tr_fuse_why_not: prints why FUSE cannot be used, or nothing.
tr_fuse_why_not() {
    [ -c /dev/fuse ] || { echo "/dev/fuse is missing"; return; }
    grep -qw fuse /proc/filesystems || echo "the kernel has no fuse filesystem"
}

# tr_build: builds the host binary (debug unless TUNNEL_SIM_PROFILE=release).
tr_build() {
    local profile=${TUNNEL_SIM_PROFILE:-debug} flag=()
    [ "$profile" = release ] && flag=(--release)
    export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
    (cd "$TR_REPO" && timeout 900 cargo build -q -p tunnel-sim "${flag[@]}") || return 1
    TR_BIN=${CARGO_TARGET_DIR:-$TR_REPO/target}/$profile/tunnel-sim
    [ -x "$TR_BIN" ]
}

# tr_setup: the three namespaces and the run's directory.
tr_setup() {
    TR_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tunnel-sim.XXXXXX") || return 1
    mkdir -p "$TR_DIR/dev"
    local ns
    for ns in "$TR_NS_A" "$TR_NS_B" "$TR_NS_R"; do
        timeout 10 ip netns add "$ns" || return 1
        TR_NAMESPACES+=("$ns")
    done
    timeout 10 ip -n "$TR_NS_R" link set lo up
}

# tr_start_host [ARGS...]: starts the host in namespace R; waits (bounded) until it is ready.
tr_start_host() {
    rm -f "$TR_DIR/ready" "$TR_DIR/stats"
    timeout 300 "$TR_BIN" host --ns-a "$TR_NS_A" --ns-b "$TR_NS_B" --ns-host "$TR_NS_R" \
        --stats "$TR_DIR/stats" --ready "$TR_DIR/ready" --max-seconds 280 "$@" \
        >"$TR_DIR/host.out" 2>"$TR_DIR/host.err" &
    TR_HOST_PID=$!
    TR_PIDS+=("$TR_HOST_PID")
    local i
    for ((i = 0; i < 100; i++)); do
        [ -f "$TR_DIR/ready" ] && [ -f "$TR_DIR/stats" ] && return 0
        kill -0 "$TR_HOST_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$TR_DIR/host.err" >&2
    return 1
}

# tr_stop_host: SIGTERM, bounded wait; the host unloads the driver and reports "unload=clean".
tr_stop_host() {
    [ -n "$TR_HOST_PID" ] || return 0
    tr_stop_pid "$TR_HOST_PID"
    local rc=$?
    TR_HOST_PID=
    return $rc
}

# tr_stop_pid PID: SIGTERM (`timeout` passes it on to its child), then after 5 s SIGKILL to
# the process group `timeout` made (its pid); returns the process's exit status.
tr_stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
}

# tr_start_socat: two unmodified socat processes in R, each between one FUSE device file and
# UDP on R's loopback. Sets TR_RELAY_PIDS.
tr_start_socat() {
    TR_RELAY_PIDS=()
    timeout 120 ip netns exec "$TR_NS_R" socat -b 65536 "OPEN:$TR_DIR/dev/tun0" \
        UDP4-DATAGRAM:127.0.0.1:40101,bind=127.0.0.1:40100 2>>"$TR_DIR/relay.err" &
    TR_RELAY_PIDS+=($!)
    timeout 120 ip netns exec "$TR_NS_R" socat -b 65536 "OPEN:$TR_DIR/dev/tun1" \
        UDP4-DATAGRAM:127.0.0.1:40100,bind=127.0.0.1:40101 2>>"$TR_DIR/relay.err" &
    TR_RELAY_PIDS+=($!)
    TR_PIDS+=("${TR_RELAY_PIDS[@]}")
    tr_wait_opened
}

# tr_start_relay: the in-tree VTun-like relay, one process per FUSE device file.
tr_start_relay() {
    TR_RELAY_PIDS=()
    timeout 120 ip netns exec "$TR_NS_R" "$TR_BIN" relay --dev "$TR_DIR/dev/tun0" \
        --bind 127.0.0.1:40200 --peer 127.0.0.1:40201 --max-seconds 110 \
        >>"$TR_DIR/relay.out" 2>>"$TR_DIR/relay.err" &
    TR_RELAY_PIDS+=($!)
    timeout 120 ip netns exec "$TR_NS_R" "$TR_BIN" relay --dev "$TR_DIR/dev/tun1" \
        --bind 127.0.0.1:40201 --peer 127.0.0.1:40200 --max-seconds 110 \
        >>"$TR_DIR/relay.out" 2>>"$TR_DIR/relay.err" &
    TR_RELAY_PIDS+=($!)
    TR_PIDS+=("${TR_RELAY_PIDS[@]}")
    tr_wait_opened
}

# tr_start_taprelay: the in-tree VTun-like linker as its own process in R, joining the FUSE
# files tap0 and tap1 (select, read, write).
tr_start_taprelay() {
    TR_RELAY_PIDS=()
    timeout 120 ip netns exec "$TR_NS_R" "$TR_BIN" taprelay --dev0 "$TR_DIR/dev/tap0" \
        --dev1 "$TR_DIR/dev/tap1" --max-seconds 110 \
        >>"$TR_DIR/relay.out" 2>>"$TR_DIR/relay.err" &
    TR_RELAY_PIDS+=($!)
    TR_PIDS+=("${TR_RELAY_PIDS[@]}")
    tr_wait_opened
}

# tr_neigh_flush: forgets what A and B learnt about their tap neighbours (ARP and ND), so the
# next ping resolves its peer again through the driver.
tr_neigh_flush() {
    timeout 10 ip -n "$TR_NS_A" neigh flush dev ta0 2>/dev/null
    timeout 10 ip -n "$TR_NS_B" neigh flush dev tb0 2>/dev/null
    return 0
}

# tr_wait_opened: until both sim interfaces are up (the device was opened and configured).
tr_wait_opened() {
    local i
    for ((i = 0; i < 100; i++)); do
        if [ "$(( $(tr_stat unit0.if_flags) & 1 ))" -eq 1 ] && [ "$(( $(tr_stat unit1.if_flags) & 1 ))" -eq 1 ]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# tr_stop_relays: stops the relay processes by pid.
tr_stop_relays() {
    local pid
    for pid in "${TR_RELAY_PIDS[@]}"; do tr_stop_pid "$pid"; done
    TR_RELAY_PIDS=()
}

# tr_stat KEY [FILE]: one counter from the host's stats file (0 if absent).
tr_stat() {
    local v
    v=$(sed -n "s/^$1=//p" "${2:-$TR_DIR/stats}" 2>/dev/null | tail -n 1)
    echo "${v:-0}"
}

# tr_snapshot NAME: waits until the counters stop moving (bounded), then copies them.
tr_snapshot() {
    local i prev=
    for ((i = 0; i < 30; i++)); do
        sleep 0.25
        local cur
        cur=$(cat "$TR_DIR/stats" 2>/dev/null)
        [ -n "$cur" ] && [ "$cur" = "$prev" ] && break
        prev=$cur
    done
    cp "$TR_DIR/stats" "$TR_DIR/$1"
}

# tr_delta KEY FROM TO: counter difference between two snapshots.
tr_delta() {
    echo $(($(tr_stat "$1" "$TR_DIR/$3") - $(tr_stat "$1" "$TR_DIR/$2")))
}

# tr_linux_packets NS DEV rx|tx: the Linux interface's own packet counter.
tr_linux_packets() {
    tr_linux_counter "$1" "$2" "$3" packets
}

# tr_linux_counter NS DEV rx|tx packets|bytes: one of the Linux interface's own counters.
tr_linux_counter() {
    timeout 10 ip -n "$1" -s link show "$2" 2>/dev/null | awk -v dir="$3" -v what="$4" '
        /^ *RX:/ { r = 1; next } /^ *TX:/ { t = 1; next }
        r == 1 { rb = $1; rx = $2; r = 2 } t == 1 { tb = $1; tx = $2; t = 2 }
        END { if (what == "bytes") print (dir == "rx" ? rb : tb) + 0; else print (dir == "rx" ? rx : tx) + 0 }'
}

# tr_run OUT CMD...: runs CMD in the background with its output in OUT, remembers its pid
# for the cleanup (a trap can then end it by id), and waits for it.
tr_run() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 &
    local pid=$!
    TR_PIDS+=("$pid")
    wait "$pid"
}

# tr_ping NS ADDR COUNT: sets TR_PING to "sent received loss% avg_rtt_ms".
# (Results come back in variables, not through $(...): a subshell would hide the pids.)
tr_ping() {
    local out
    tr_run "$TR_DIR/ping.out" timeout 30 ip netns exec "$1" ping -n -c "$3" -i 0.2 -W 2 "$2"
    out=$(cat "$TR_DIR/ping.out")
    local sent recv loss rtt
    sent=$(sed -nE 's/^([0-9]+) packets transmitted.*/\1/p' <<<"$out")
    recv=$(sed -nE 's/.* ([0-9]+) received.*/\1/p' <<<"$out")
    loss=$(sed -nE 's/.* ([0-9.]+)% packet loss.*/\1/p' <<<"$out")
    rtt=$(sed -nE 's|^rtt [^=]*= [0-9.]+/([0-9.]+)/.*|\1|p' <<<"$out")
    # shellcheck disable=SC2034
    TR_PING="${sent:-0} ${recv:-0} ${loss:-100} ${rtt:--}"
}

# tr_iperf MODE SECONDS [RATE]: iperf3 from A to B's $TR_IPERF_TO (server in B, one test,
# bounded). MODE tcp sets TR_IPERF to "Mbit/s"; MODE udp to "Mbit/s lost total".
tr_iperf() {
    local mode=$1 secs=$2 rate=${3:-10M} server out
    timeout $((secs + 20)) ip netns exec "$TR_NS_B" iperf3 -s -1 -B "$TR_IPERF_TO" >"$TR_DIR/iperf-server.out" 2>&1 &
    server=$!
    TR_PIDS+=("$server")
    sleep 0.5
    if [ "$mode" = udp ]; then
        tr_run "$TR_DIR/iperf-$mode.out" timeout $((secs + 15)) ip netns exec "$TR_NS_A" \
            iperf3 -c "$TR_IPERF_TO" -u -b "$rate" -t "$secs" -f m
    else
        tr_run "$TR_DIR/iperf-$mode.out" timeout $((secs + 15)) ip netns exec "$TR_NS_A" \
            iperf3 -c "$TR_IPERF_TO" -t "$secs" -f m
    fi
    out=$(cat "$TR_DIR/iperf-$mode.out")
    tr_stop_pid "$server"
    # shellcheck disable=SC2034
    TR_IPERF=$(tr_iperf_parse "$mode" "$out")
}

# tr_iperf_parse MODE OUTPUT: the numbers tr_iperf reports, from iperf3's text output.
tr_iperf_parse() {
    local mode=$1 out=$2
    if [ "$mode" = udp ]; then
        awk '/receiver/ { for (i = 1; i <= NF; i++) { if ($i == "Mbits/sec") r = $(i - 1); if ($i ~ /^[0-9]+\/[0-9]+$/) { split($i, a, "/"); l = a[1]; t = a[2] } } }
             END { printf "%s %s %s\n", (r == "" ? 0 : r), (l == "" ? -1 : l), (t == "" ? 0 : t) }' <<<"$out"
    else
        awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") r = $(i - 1) } END { print (r == "" ? 0 : r) }' <<<"$out"
    fi
}

# tr_cleanup: every process, the mount, the namespaces and the directory of this run, by id.
tr_cleanup() {
    local pid ns
    for pid in "${TR_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${TR_PIDS[@]}"; do
        tr_stop_pid "$pid"
    done
    TR_ALL_PIDS+=("${TR_PIDS[@]}")
    TR_PIDS=()
    TR_HOST_PID=
    if [ -n "$TR_DIR" ] && grep -q " $TR_DIR/dev " /proc/mounts 2>/dev/null; then
        umount -l "$TR_DIR/dev" 2>/dev/null
    fi
    for ns in "${TR_NAMESPACES[@]}"; do
        timeout 10 ip netns del "$ns" 2>/dev/null
    done
    TR_NAMESPACES=()
    if [ -n "$TR_DIR" ] && [ -d "$TR_DIR" ]; then
        rmdir "$TR_DIR/dev" 2>/dev/null
        rm -rf "$TR_DIR"
    fi
}

# tr_leftovers: prints what this run left behind (namespaces, mounts, processes), or nothing.
tr_leftovers() {
    ip netns list 2>/dev/null | grep -E "^${TR_ID}[abr]( |$)"
    [ -n "$TR_DIR" ] && grep " $TR_DIR" /proc/mounts
    local pid
    for pid in "${TR_ALL_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && echo "process $pid still running"
    done
    return 0
}
