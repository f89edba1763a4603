#!/usr/bin/env bash
# Real traffic through tunnel.kext on Linux, in one command (as root):
#
#   sudo scripts/demo.sh            # FUSE device files + socat relay (in-process relay without FUSE)
#   sudo scripts/demo.sh --tap      # tap units: Ethernet frames, ARP and neighbour discovery
#   TUNNEL_SIM_PROFILE=release sudo -E scripts/demo.sh    # optimised build, faster iperf3
#
# Builds tunnel-sim, creates three network namespaces of its own (A, B and a relay namespace),
# starts the host (the real driver in the simulated kernel, bridged to a Linux tun in A and one
# in B), relays /dev/tun0 <-> /dev/tun1, runs ping (IPv4, IPv6) and iperf3 (TCP, fixed-rate
# UDP) from A to B, prints a summary with the driver's own counters, and removes every
# namespace, mount and process it created, also on Ctrl-C or failure.
#
# With --tap the same for tap units (docs/tap-contract.md section 17): Linux taps ta0 in A
# (10.77.0.1/24, fd77::1/64) and tb0 in B (.2, ::2) carry the MACs of the sim's tap0 and tap1,
# every frame they emit is raw output on the driver's unit and every frame the driver passes
# to ifnet_input (unless ether_demux marked it M_PROMISC) goes back into them; the VTun-like
# linker joins /dev/tap0 and /dev/tap1 with select, read and write (as its own process on the
# FUSE files, or in-process without FUSE). The neighbour caches are flushed before each ping,
# so the summary shows the ARP request/reply and the neighbour solicitation/advertisement
# crossing the driver, and the Linux taps' counters beside the driver's.
set -uo pipefail
TR_REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/traffic.sh
. "$TR_REPO/scripts/lib/traffic.sh"

die() { echo "demo: $*" >&2; exit 1; }
mode=tun
case "${1:-}" in
    --tap) mode=tap ;;
    "") ;;
    *) die "usage: scripts/demo.sh [--tap]" ;;
esac
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

# demo_tap: the --tap run (everything after the namespaces exist).
demo_tap() {
    echo "== namespaces $TR_NS_A (ta0 10.77.0.1/24, fd77::1/64), $TR_NS_B (tb0 10.77.0.2/24, fd77::2/64), relay $TR_NS_R"
    local fuse_why relay
    fuse_why=$(tr_fuse_why_not)
    if [ -z "$fuse_why" ]; then
        tr_start_host --tap --fuse "$TR_DIR/dev" || die "host did not start: $(tail -n 3 "$TR_DIR/host.err")"
        echo "== host pid $TR_HOST_PID: driver loaded; /dev/tap0 and /dev/tap1 served as $TR_DIR/dev/tap{0,1}"
        tr_start_taprelay || die "the linker did not open the devices: $(tail -n 3 "$TR_DIR/relay.err")"
        relay="VTun-like linker process (select, read, write) on the FUSE files tap0 <-> tap1"
    else
        echo "== FUSE unavailable ($fuse_why): using the in-process linker"
        tr_start_host --tap --relay inproc || die "host did not start: $(tail -n 3 "$TR_DIR/host.err")"
        tr_wait_opened || die "the linker did not open the devices"
        relay="in-process VTun-like linker (select, read, write through the syscall API) /dev/tap0 <-> /dev/tap1"
    fi
    echo "== relay: $relay"
    echo "== MACs: tap0 = ta0 = $(tr_stat unit0.mac), tap1 = tb0 = $(tr_stat unit1.mac)"
    TR_IPERF_TO=10.77.0.2
    tr_neigh_flush
    tr_snapshot v4-before
    echo "== ping $TR_NS_A -> $TR_NS_B (neighbour caches flushed: ARP first)"
    tr_ping "$TR_NS_A" 10.77.0.2 10
    read -r p4s p4r p4l p4t <<<"$TR_PING"
    tr_snapshot v4-after
    tr_neigh_flush
    tr_snapshot v6-before
    echo "== ping -6 $TR_NS_A -> $TR_NS_B (neighbour caches flushed: NS first)"
    tr_ping "$TR_NS_A" fd77::2 10
    read -r p6s p6r p6l p6t <<<"$TR_PING"
    tr_snapshot v6-after
    echo "== iperf3 TCP 3 s"
    tr_iperf tcp 3
    local tcp=$TR_IPERF
    echo "== iperf3 UDP 10 Mbit/s 3 s"
    tr_iperf udp 3 10M
    read -r udp ulost utotal <<<"$TR_IPERF"
    tr_snapshot final

    s() { tr_stat "$1" "$TR_DIR/final"; }
    d() { tr_delta "$1" "$2" "$3"; }
    echo
    echo "================ tunnel.kext tap units on Linux: summary ================"
    echo "path: $TR_NS_A stack -> Linux ta0 -> raw output on driver tap0 -> /dev/tap0 read -> linker"
    echo "      -> /dev/tap1 write -> driver tap1 ifnet_input (ether_demux) -> Linux tb0 -> $TR_NS_B stack (and back)"
    echo "relay: $relay"
    printf '%-22s %s sent, %s received, %s%% loss, avg rtt %s ms\n' "ping IPv4 10.77.0.2" "$p4s" "$p4r" "$p4l" "$p4t"
    printf '%-22s %s sent, %s received, %s%% loss, avg rtt %s ms\n' "ping IPv6 fd77::2" "$p6s" "$p6r" "$p6l" "$p6t"
    printf '%-22s %s Mbit/s\n' "iperf3 TCP" "$tcp"
    printf '%-22s %s Mbit/s, %s of %s datagrams lost\n' "iperf3 UDP 10M" "$udp" "$ulost" "$utotal"
    echo
    echo "neighbour resolution through the driver (frames seen by the output hook of one unit and"
    echo "the input hook of the other):"
    echo "  IPv4 ping: ARP (0x0806) out on tap0 $(d unit0.out_arp v4-before v4-after), in on tap1 $(d unit1.in_arp v4-before v4-after);" \
        "reply out on tap1 $(d unit1.out_arp v4-before v4-after), in on tap0 $(d unit0.in_arp v4-before v4-after)"
    echo "  IPv6 ping: NS (ICMPv6 135) out on tap0 $(d unit0.out_ns v6-before v6-after), in on tap1 $(d unit1.in_ns v6-before v6-after);" \
        "NA (136) out on tap1 $(d unit1.out_na v6-before v6-after), in on tap0 $(d unit0.in_na v6-before v6-after)"
    echo "  frames marked M_PROMISC by ether_demux (dropped): tap0 $(s unit0.input_promisc), tap1 $(s unit1.input_promisc)"
    echo
    echo "driver counters (ifnet statistics the driver reports, as netstat -I would show):"
    printf '  %-6s %12s %14s %12s %14s %8s %8s %8s\n' iface ipackets ibytes opackets obytes ierrs oerrs bpf
    local u dev ns tx rx rxb
    for u in 0 1; do
        printf '  %-6s %12s %14s %12s %14s %8s %8s %8s\n' "tap$u" "$(s unit$u.if_ipackets)" "$(s unit$u.if_ibytes)" \
            "$(s unit$u.if_opackets)" "$(s unit$u.if_obytes)" "$(s unit$u.if_ierrors)" "$(s unit$u.if_oerrors)" \
            "$(s unit$u.bpf_taps)"
    done
    echo "  (oerrs: frames refused while no client had the unit open, TO1, or by a full queue, TAP_QLEN=128, TO4;"
    echo "   TCP retransmits them)"
    echo "Linux taps against the driver:"
    for u in 0 1; do
        if [ "$u" -eq 0 ]; then ns=$TR_NS_A; dev=ta0; else ns=$TR_NS_B; dev=tb0; fi
        tx=$(tr_linux_counter "$ns" "$dev" tx packets)
        rx=$(tr_linux_counter "$ns" "$dev" rx packets); rxb=$(tr_linux_counter "$ns" "$dev" rx bytes)
        local o oe i ib pr prb verdict=match
        o=$(s "unit$u.if_opackets"); oe=$(s "unit$u.if_oerrors"); i=$(s "unit$u.if_ipackets"); ib=$(s "unit$u.if_ibytes")
        pr=$(s "unit$u.input_promisc"); prb=$(s "unit$u.input_promisc_bytes")
        [ "$tx" -eq $((o + oe)) ] && [ "$rx" -eq $((i - pr)) ] && [ "$rxb" -eq $((ib - prb)) ] || verdict=MISMATCH
        echo "  $dev sent $tx = tap$u opackets $o + oerrors $oe; $dev received $rx frames/$rxb B = tap$u ipackets $i/$ib B less M_PROMISC $pr: $verdict"
    done

    [ ${#TR_RELAY_PIDS[@]} -gt 0 ] && tr_stop_relays
    if tr_stop_host && grep -q '^unload=clean$' "$TR_DIR/host.out"; then
        echo "driver unloaded: zero leaks"
    else
        echo "driver unload: $(tail -n 1 "$TR_DIR/host.err")"
    fi
    tr_cleanup
    local left
    left=$(tr_leftovers)
    if [ -z "$left" ]; then
        echo "cleanup: namespaces (with ta0, tb0), mount and processes of this run removed"
    else
        echo "cleanup left: $left"
    fi
}

if [ "$mode" = tap ]; then
    demo_tap
    exit 0
fi

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
        "$(s unit$u.bpf_taps)"
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
