#!/usr/bin/env bash
# Real traffic through tunnel.kext on Linux, in one command (as root):
#
#   sudo scripts/demo.sh            # FUSE device files + socat relay (in-process relay without FUSE)
#   TUNNEL_SIM_PROFILE=release sudo -E scripts/demo.sh    # optimised build, faster iperf3
#
# Builds tunnel-sim, creates three network namespaces of its own (A, B and a relay namespace),
# starts the host (the real driver in the simulated kernel, bridged to a Linux tun in A and one
# in B), relays /dev/tun0 <-> /dev/tun1, runs ping (IPv4, IPv6) and iperf3 (TCP, fixed-rate
# UDP) from A to B, prints a summary with the driver's own counters, and removes every
# namespace, mount and process it created, also on Ctrl-C or failure.
set -uo pipefail
TR_REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/traffic.sh
. "$TR_REPO/scripts/lib/traffic.sh"

die() { echo "demo: $*" >&2; exit 1; }
# shellcheck disable=SC2317 # called by the traps
on_exit() { tr_cleanup; }
trap on_exit EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM HUP

[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces and tun devices need it)"
echo "== installing what is missing (iproute2 iputils-ping iperf3 socat fuse3)"
tr_deps || die "package install failed"
why=$(tr_why_not)
[ -z "$why" ] || die "cannot run here: $why"
echo "== building tunnel-sim (${TUNNEL_SIM_PROFILE:-debug})"
tr_build || die "build failed"
tr_setup || die "cannot create namespaces"
echo "== namespaces $TR_NS_A (10.66.0.1, fd66::1), $TR_NS_B (10.66.0.2, fd66::2), relay $TR_NS_R"

fuse_why=$(tr_fuse_why_not)
if [ -z "$fuse_why" ]; then
    tr_start_host --fuse "$TR_DIR/dev" || die "host did not start: $(tail -n 3 "$TR_DIR/host.err")"
    echo "== host pid $TR_HOST_PID: driver loaded; /dev/tun0 and /dev/tun1 served as $TR_DIR/dev/tun{0,1}"
    tr_start_socat || die "socat did not open the devices: $(tail -n 3 "$TR_DIR/relay.err")"
    relay="socat (unmodified) on the FUSE files, UDP on the relay namespace's loopback"
else
    echo "== FUSE unavailable ($fuse_why): using the in-process relay"
    tr_start_host --relay inproc || die "host did not start: $(tail -n 3 "$TR_DIR/host.err")"
    tr_wait_opened || die "relay did not open the devices"
    relay="in-process VTun-like relay (syscall API), UDP on the relay namespace's loopback"
fi
echo "== relay: $relay"

echo "== ping $TR_NS_A -> $TR_NS_B"
tr_ping "$TR_NS_A" 10.66.0.2 10
read -r p4s p4r p4l p4t <<<"$TR_PING"
tr_ping "$TR_NS_A" fd66::2 10
read -r p6s p6r p6l p6t <<<"$TR_PING"
echo "== iperf3 TCP 3 s"
tr_iperf tcp 3
tcp=$TR_IPERF
echo "== iperf3 UDP 10 Mbit/s 3 s"
tr_iperf udp 3 10M
read -r udp ulost utotal <<<"$TR_IPERF"
tr_snapshot final

s() { tr_stat "$1" "$TR_DIR/final"; }
echo
echo "================ tunnel.kext on Linux: summary ================"
echo "path: $TR_NS_A stack -> Linux tun0 -> driver tun0 output -> /dev/tun0 read -> relay"
echo "      -> /dev/tun1 write -> driver tun1 input -> Linux tun1 -> $TR_NS_B stack (and back)"
echo "relay: $relay"
printf '%-22s %s sent, %s received, %s%% loss, avg rtt %s ms\n' "ping IPv4 10.66.0.2" "$p4s" "$p4r" "$p4l" "$p4t"
printf '%-22s %s sent, %s received, %s%% loss, avg rtt %s ms\n' "ping IPv6 fd66::2" "$p6s" "$p6r" "$p6l" "$p6t"
printf '%-22s %s Mbit/s\n' "iperf3 TCP" "$tcp"
printf '%-22s %s Mbit/s, %s of %s datagrams lost\n' "iperf3 UDP 10M" "$udp" "$ulost" "$utotal"
echo
echo "driver counters (ifnet statistics the driver reports, as netstat -I would show):"
printf '  %-6s %12s %14s %12s %14s %8s %8s %8s\n' iface ipackets ibytes opackets obytes ierrs oerrs bpf
for u in 0 1; do
    printf '  %-6s %12s %14s %12s %14s %8s %8s %8s\n' "tun$u" "$(s unit$u.if_ipackets)" "$(s unit$u.if_ibytes)" \
        "$(s unit$u.if_opackets)" "$(s unit$u.if_obytes)" "$(s unit$u.if_ierrors)" "$(s unit$u.if_oerrors)" \
        "$(( $(s unit$u.bpf_in) + $(s unit$u.bpf_out) ))"
done
echo "  (oerrs: packets the output queue refused, TUN_QLEN=128, O4; TCP retransmits them)"
echo "Linux side: $TR_NS_A tun0 sent $(tr_linux_packets "$TR_NS_A" tun0 tx) / received $(tr_linux_packets "$TR_NS_A" tun0 rx);" \
    "$TR_NS_B tun1 sent $(tr_linux_packets "$TR_NS_B" tun1 tx) / received $(tr_linux_packets "$TR_NS_B" tun1 rx)"

[ ${#TR_RELAY_PIDS[@]} -gt 0 ] && tr_stop_relays
if tr_stop_host && grep -q '^unload=clean$' "$TR_DIR/host.out"; then
    echo "driver unloaded: zero leaks"
else
    echo "driver unload: $(tail -n 1 "$TR_DIR/host.err")"
fi
tr_cleanup
left=$(tr_leftovers)
if [ -z "$left" ]; then
    echo "cleanup: namespaces, mount and processes of this run removed"
else
    echo "cleanup left: $left"
fi
