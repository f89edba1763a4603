#!/usr/bin/env bash
# Real traffic through the real driver (issue 6): ping (IPv4 and IPv6) and iperf3 between two
# network namespaces, across the simulated kernel's tun0 and tun1, relayed by the in-process
# VTun-like relay, by unmodified socat on the FUSE device files, and by the in-tree relay
# process on the same files. Asserts zero loss, and that the driver's own counters (the ifnet
# statistics it reports) match the packets the Linux stacks sent.
#
# Then the same for tap units (issue 14, docs/tap-contract.md section 17): Linux taps ta0 (A)
# and tb0 (B) carrying the MACs of the sim's tap0 and tap1, bridged frame by frame, the two
# devices joined by the VTun-like linker (select, read, write) in-process and as its own
# process on the FUSE files. IPv4 ping with ARP and IPv6 ping with neighbour solicitation
# (the neighbour caches are flushed first), each ARP/NS and its reply seen crossing the
# frame hooks, iperf3 TCP, a frame for a foreign MAC dropped as M_PROMISC, and the Linux taps'
# counters equal to the driver's.
#
# Prints one PASS/FAIL/SKIP line per check and ends with "N passed, N failed[, N skipped]".
# Skips with a message when not root or namespaces/tun/FUSE are unavailable. Bounded: every
# command runs under timeout; the whole suite takes about 70 s. Leaves nothing behind.
# Run from anywhere (as root): bash tests/suites/traffic.sh
set -u
TR_REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=scripts/lib/traffic.sh
. "$TR_REPO/scripts/lib/traffic.sh"

# shellcheck source=tests/suites/lib/report.sh
. "$TR_REPO/tests/suites/lib/report.sh"
# shellcheck disable=SC2317 # called by the trap
on_exit() { tr_cleanup; }
trap on_exit EXIT
trap 'tr_cleanup; exit 130' INT TERM HUP

# check_ping LABEL NS ADDR COUNT: zero loss.
check_ping() {
    local sent recv loss rtt
    tr_ping "$2" "$3" "$4"
    read -r sent recv loss rtt <<<"$TR_PING"
    if [ "$sent" -eq "$4" ] && [ "$recv" -eq "$4" ]; then
        pass "$1: ping $3 x$4, 0% loss (avg rtt $rtt ms)"
    else
        fail "$1: ping $3 x$4" "sent $sent received $recv loss $loss%"
    fi
}

# check_counters LABEL BEFORE AFTER COUNT: the driver's ifnet counters against the traffic.
# Echo requests from A crossed tun0 output, echo replies from B crossed tun1 output; everything
# tun0 output accepted arrived at tun1 input (and back), byte for byte; every packet the Linux
# stacks routed into their tun devices was counted by the driver's output.
check_counters() {
    local label=$1 a=$2 b=$3 n=$4 problems=()
    local req rep o0 o1 i0 i1 ob0 ib1 ob1 ib0 lx0 lx1 oe0 oe1
    req=$(tr_delta unit0.echo_requests "$a" "$b")
    rep=$(tr_delta unit1.echo_replies "$a" "$b")
    o0=$(tr_delta unit0.if_opackets "$a" "$b"); o1=$(tr_delta unit1.if_opackets "$a" "$b")
    i0=$(tr_delta unit0.if_ipackets "$a" "$b"); i1=$(tr_delta unit1.if_ipackets "$a" "$b")
    ob0=$(tr_delta unit0.if_obytes "$a" "$b"); ib1=$(tr_delta unit1.if_ibytes "$a" "$b")
    ob1=$(tr_delta unit1.if_obytes "$a" "$b"); ib0=$(tr_delta unit0.if_ibytes "$a" "$b")
    lx0=$(tr_delta unit0.linux_rx_packets "$a" "$b"); lx1=$(tr_delta unit1.linux_rx_packets "$a" "$b")
    oe0=$(tr_delta unit0.if_oerrors "$a" "$b"); oe1=$(tr_delta unit1.if_oerrors "$a" "$b")
    [ "$req" -eq "$n" ] || problems+=("echo requests through tun0 output: $req, expected $n")
    [ "$rep" -eq "$n" ] || problems+=("echo replies through tun1 output: $rep, expected $n")
    [ "$o0" -ge "$n" ] || problems+=("tun0 opackets $o0 < $n (O5)")
    [ "$o0" -eq "$lx0" ] || problems+=("tun0 opackets $o0 != packets A routed into tun0 $lx0")
    [ "$o1" -eq "$lx1" ] || problems+=("tun1 opackets $o1 != packets B routed into tun1 $lx1")
    [ "$oe0" -eq 0 ] && [ "$oe1" -eq 0 ] || problems+=("output errors: tun0 $oe0, tun1 $oe1")
    [ "$i1" -eq "$o0" ] && [ "$ib1" -eq "$ob0" ] || problems+=("tun1 input $i1/$ib1 B != tun0 output $o0/$ob0 B (W9)")
    [ "$i0" -eq "$o1" ] && [ "$ib0" -eq "$ob1" ] || problems+=("tun0 input $i0/$ib0 B != tun1 output $o1/$ob1 B (W9)")
    if [ ${#problems[@]} -eq 0 ]; then
        pass "$label: driver counters match (tun0 out $o0 pkts/$ob0 B = tun1 in; tun1 out $o1 = tun0 in; $n echo each way)"
    else
        fail "$label: driver counters" "${problems[@]}"
    fi
}

# check_linux_counters LABEL: the Linux devices' own counters against the host's and the
# driver's (after the counters have settled).
check_linux_counters() {
    local tx0 rx1 tx1 rx0 problems=()
    tr_snapshot "$1-linux"
    tx0=$(tr_linux_packets "$TR_NS_A" tun0 tx); rx0=$(tr_linux_packets "$TR_NS_A" tun0 rx)
    tx1=$(tr_linux_packets "$TR_NS_B" tun1 tx); rx1=$(tr_linux_packets "$TR_NS_B" tun1 rx)
    [ "$tx0" -eq "$(tr_stat unit0.linux_rx_packets)" ] || problems+=("A tun0 TX $tx0 != host read $(tr_stat unit0.linux_rx_packets)")
    [ "$tx1" -eq "$(tr_stat unit1.linux_rx_packets)" ] || problems+=("B tun1 TX $tx1 != host read $(tr_stat unit1.linux_rx_packets)")
    [ "$rx1" -eq "$(tr_stat unit1.if_ipackets)" ] || problems+=("B tun1 RX $rx1 != driver tun1 ipackets $(tr_stat unit1.if_ipackets)")
    [ "$rx0" -eq "$(tr_stat unit0.if_ipackets)" ] || problems+=("A tun0 RX $rx0 != driver tun0 ipackets $(tr_stat unit0.if_ipackets)")
    if [ ${#problems[@]} -eq 0 ]; then
        pass "$1: Linux tun counters = driver counters (A tx $tx0, B rx $rx1, B tx $tx1, A rx $rx0)"
    else
        fail "$1: Linux tun counters" "${problems[@]}"
    fi
}

# ping_and_count LABEL: IPv4 and IPv6 pings from A with the counter checks around each.
ping_and_count() {
    tr_snapshot "$1-v4-before"
    check_ping "$1 IPv4" "$TR_NS_A" 10.66.0.2 5
    tr_snapshot "$1-v4-after"
    check_counters "$1 IPv4" "$1-v4-before" "$1-v4-after" 5
    check_ping "$1 IPv6" "$TR_NS_A" fd66::2 5
    tr_snapshot "$1-v6-after"
    check_counters "$1 IPv6" "$1-v4-after" "$1-v6-after" 5
    # And from B towards A: the same path the other way round.
    check_ping "$1 IPv4 from B" "$TR_NS_B" 10.66.0.1 2
}

# stop_host_clean LABEL: the host unloads the driver with zero leaks.
stop_host_clean() {
    tr_stop_host
    local rc=$?
    if [ $rc -eq 0 ] && grep -q '^unload=clean$' "$TR_DIR/host.out"; then
        pass "$1: host stopped, driver unloaded with zero leaks"
    else
        fail "$1: host stop (exit $rc)" "$(tail -n 5 "$TR_DIR/host.err")"
    fi
}

# --- tap checks (docs/tap-contract.md section 17) ---------------------------------------------

# check_tap_counters LABEL BEFORE AFTER COUNT arp|ns FROM: one ping of COUNT echoes from unit
# FROM's namespace (0: A, 1: B) between two snapshots. Neighbour resolution crossed the driver
# both ways (an ARP request and reply, or an NS and NA, seen by the output hook of one unit and
# the input hook of the other); every echo request went out on FROM's unit and in on the
# other, every reply back; the driver counted each frame the host gave it (TO5), everything
# one unit's output accepted arrived at the other's ifnet_input, frame for frame and byte for
# byte (TW8), no frame was marked M_PROMISC, and every frame went on to the Linux tap.
check_tap_counters() {
    local label=$1 a=$2 b=$3 n=$4 res=$5 s=$6 d=$((1 - $6)) problems=()
    local q r bq br u o i ob ib ok oe pr lt
    if [ "$res" = arp ]; then q=arp; r=arp; else q=ns; r=na; fi
    local q_out q_in r_out r_in
    q_out=$(tr_delta "unit$s.out_$q" "$a" "$b"); q_in=$(tr_delta "unit$d.in_$q" "$a" "$b")
    r_out=$(tr_delta "unit$d.out_$r" "$a" "$b"); r_in=$(tr_delta "unit$s.in_$r" "$a" "$b")
    [ "$q_out" -ge 1 ] && [ "$q_in" -ge 1 ] || problems+=("$q: output on tap$s $q_out, input on tap$d $q_in (expected >= 1 each)")
    [ "$r_out" -ge 1 ] && [ "$r_in" -ge 1 ] || problems+=("$r: output on tap$d $r_out, input on tap$s $r_in (expected >= 1 each)")
    bq=$(tr_delta "unit$s.out_echo_requests" "$a" "$b"); br=$(tr_delta "unit$d.in_echo_requests" "$a" "$b")
    [ "$bq" -eq "$n" ] && [ "$br" -eq "$n" ] || problems+=("echo requests: tap$s output $bq, tap$d input $br, expected $n")
    bq=$(tr_delta "unit$d.out_echo_replies" "$a" "$b"); br=$(tr_delta "unit$s.in_echo_replies" "$a" "$b")
    [ "$bq" -eq "$n" ] && [ "$br" -eq "$n" ] || problems+=("echo replies: tap$d output $bq, tap$s input $br, expected $n")
    for u in 0 1; do
        o=$(tr_delta "unit$u.if_opackets" "$a" "$b"); ok=$(tr_delta "unit$u.output_ok" "$a" "$b")
        oe=$(tr_delta "unit$u.if_oerrors" "$a" "$b")
        [ "$o" -eq "$ok" ] && [ "$oe" -eq 0 ] || problems+=("tap$u: opackets $o, oerrors $oe; frames the host gave its output $ok (TO5)")
        i=$(tr_delta "unit$((1 - u)).if_ipackets" "$a" "$b"); ib=$(tr_delta "unit$((1 - u)).if_ibytes" "$a" "$b")
        ob=$(tr_delta "unit$u.if_obytes" "$a" "$b")
        [ "$i" -eq "$o" ] && [ "$ib" -eq "$ob" ] || problems+=("tap$((1 - u)) input $i/$ib B != tap$u output $o/$ob B (TW8)")
        pr=$(tr_delta "unit$u.input_promisc" "$a" "$b"); lt=$(tr_delta "unit$u.linux_tx_packets" "$a" "$b")
        i=$(tr_delta "unit$u.if_ipackets" "$a" "$b")
        [ "$pr" -eq 0 ] && [ "$lt" -eq "$i" ] || problems+=("tap$u: $pr frames marked M_PROMISC; $lt of $i input frames written to Linux")
    done
    if [ ${#problems[@]} -eq 0 ]; then
        local o0 ob0 o1
        o0=$(tr_delta unit0.if_opackets "$a" "$b"); ob0=$(tr_delta unit0.if_obytes "$a" "$b")
        o1=$(tr_delta unit1.if_opackets "$a" "$b")
        pass "$label: $(tr_upper "$q") output on tap$s ($q_out) -> input on tap$d ($q_in), $(tr_upper "$r") back ($r_out -> $r_in); $n echo each way"
        pass "$label: driver counters match (tap0 out $o0 frames/$ob0 B = tap1 in; tap1 out $o1 = tap0 in; none M_PROMISC)"
    else
        fail "$label: neighbour resolution and driver counters" "${problems[@]}"
    fi
}

tr_upper() { tr '[:lower:]' '[:upper:]' <<<"$1"; }

# tap_ping LABEL NS ADDR COUNT arp|ns FROM: flush both neighbour caches, ping, check.
tap_ping() {
    tr_neigh_flush
    tr_snapshot "$1-before"
    check_ping "$1" "$2" "$3" "$4"
    tr_snapshot "$1-after"
    check_tap_counters "$1" "$1-before" "$1-after" "$4" "$5" "$6"
}

# tap_pings LABEL: IPv4 (ARP) and IPv6 (NS) from A, and IPv4 from B.
tap_pings() {
    tap_ping "$1 IPv4" "$TR_NS_A" 10.77.0.2 5 arp 0
    tap_ping "$1 IPv6" "$TR_NS_A" fd77::2 5 ns 0
    tap_ping "$1 IPv4 from B" "$TR_NS_B" 10.77.0.1 2 arp 1
}

# check_tap_linux_counters LABEL: the Linux taps' own counters against the host's and the
# driver's, after the counters settled: every frame ta0 (tb0) sent was read by the host and
# counted by tap0's (tap1's) output, accepted (opackets) or refused (oerrors: the frames sent
# before a client opened the unit, TO1, or refused by a full queue, TO4); every frame tap1's
# (tap0's) ifnet_input got, less those marked M_PROMISC, is one tb0 (ta0) received, bytes
# included.
check_tap_linux_counters() {
    local u ns dev tx read o oe rx rxb i ib pr prb problems=() shown=()
    tr_snapshot "$1-linux"
    for u in 0 1; do
        if [ "$u" -eq 0 ]; then ns=$TR_NS_A; dev=ta0; else ns=$TR_NS_B; dev=tb0; fi
        tx=$(tr_linux_counter "$ns" "$dev" tx packets); read=$(tr_stat "unit$u.linux_rx_packets")
        o=$(tr_stat "unit$u.if_opackets"); oe=$(tr_stat "unit$u.if_oerrors")
        rx=$(tr_linux_counter "$ns" "$dev" rx packets); rxb=$(tr_linux_counter "$ns" "$dev" rx bytes)
        i=$(tr_stat "unit$u.if_ipackets"); ib=$(tr_stat "unit$u.if_ibytes")
        pr=$(tr_stat "unit$u.input_promisc"); prb=$(tr_stat "unit$u.input_promisc_bytes")
        [ "$tx" -eq "$read" ] || problems+=("$dev TX $tx != frames the host read $read")
        [ "$read" -eq $((o + oe)) ] || problems+=("frames given to tap$u output $read != opackets $o + oerrors $oe")
        [ "$rx" -eq $((i - pr)) ] && [ "$rxb" -eq $((ib - prb)) ] ||
            problems+=("$dev RX $rx/$rxb B != tap$u ipackets $i/$ib B less M_PROMISC $pr/$prb B")
        [ "$(tr_stat "unit$u.linux_tx_errors")" -eq 0 ] || problems+=("writes into $dev failed: $(tr_stat "unit$u.linux_tx_errors")")
        shown+=("$dev TX $tx = tap$u out $o + refused $oe, $dev RX $rx/$rxb B = tap$u in $i less M_PROMISC $pr")
    done
    if [ ${#problems[@]} -eq 0 ]; then
        pass "$1: Linux tap counters = driver counters (${shown[0]}; ${shown[1]})"
    else
        fail "$1: Linux tap counters" "${problems[@]}"
    fi
}

# check_tap_promisc LABEL: A sends to a MAC no unit has (a permanent neighbour entry for
# 10.77.0.99): the frames cross tap0's output and reach tap1's ifnet_input, where ether_demux
# marks them M_PROMISC (TN-1), so they are dropped and B never sees them (the ping gets no
# answer, as expected).
check_tap_promisc() {
    local label=$1 foreign=02:00:5e:77:00:99 sent recv req pr in1 lt problems=()
    timeout 10 ip -n "$TR_NS_A" neigh replace 10.77.0.99 lladdr "$foreign" dev ta0 nud permanent
    tr_snapshot "$label-before"
    tr_ping "$TR_NS_A" 10.77.0.99 2
    read -r sent recv _ _ <<<"$TR_PING"
    tr_snapshot "$label-after"
    timeout 10 ip -n "$TR_NS_A" neigh del 10.77.0.99 dev ta0 2>/dev/null
    req=$(tr_delta unit0.out_echo_requests "$label-before" "$label-after")
    pr=$(tr_delta unit1.input_promisc "$label-before" "$label-after")
    in1=$(tr_delta unit1.if_ipackets "$label-before" "$label-after")
    lt=$(tr_delta unit1.linux_tx_packets "$label-before" "$label-after")
    [ "$sent" -eq 2 ] && [ "$recv" -eq 0 ] || problems+=("ping to $foreign: sent $sent, received $recv (expected 2, 0)")
    [ "$req" -eq 2 ] || problems+=("echo requests through tap0 output: $req, expected 2")
    [ "$pr" -eq 2 ] || problems+=("frames tap1's ifnet_input got marked M_PROMISC: $pr, expected 2")
    [ "$lt" -eq $((in1 - pr)) ] || problems+=("frames written to tb0 $lt != tap1 input $in1 less M_PROMISC $pr")
    if [ ${#problems[@]} -eq 0 ]; then
        pass "$label: 2 echo requests to foreign MAC $foreign crossed tap0 -> tap1, marked M_PROMISC by ether_demux and dropped (B got none)"
    else
        fail "$label: M_PROMISC drop" "${problems[@]}"
    fi
}

# stop_tap_host_clean LABEL: as stop_host_clean, and the Linux taps are gone with the host.
stop_tap_host_clean() {
    stop_host_clean "$1"
    local remaining=()
    timeout 10 ip -n "$TR_NS_A" link show ta0 >/dev/null 2>&1 && remaining+=("ta0 in $TR_NS_A")
    timeout 10 ip -n "$TR_NS_B" link show tb0 >/dev/null 2>&1 && remaining+=("tb0 in $TR_NS_B")
    if [ ${#remaining[@]} -eq 0 ]; then
        pass "$1: Linux taps ta0 and tb0 removed with the host"
    else
        fail "$1: Linux taps left" "${remaining[@]}"
    fi
}

why=$(tr_why_not)
if [ -n "$why" ]; then
    tr_deps >/dev/null 2>&1
    why=$(tr_why_not)
fi
if [ -n "$why" ]; then
    skip "real traffic: $why"
    finish
fi
if ! tr_build; then
    fail "build tunnel-sim"
    finish
fi
if ! tr_setup; then
    fail "create namespaces $TR_NS_A $TR_NS_B $TR_NS_R"
    finish
fi

# --- 1. in-process relay (needs no FUSE) -------------------------------------------------------
if tr_start_host --relay inproc --strict && tr_wait_opened; then
    pass "in-process: host up, driver loaded, tun0/tun1 bridged to namespaces $TR_NS_A/$TR_NS_B"
    ping_and_count "in-process"
    check_linux_counters "in-process"
    tr_iperf tcp 3
    tcp=$TR_IPERF
    if awk -v r="$tcp" 'BEGIN { exit !(r > 0) }'; then
        pass "in-process: iperf3 TCP 3 s: $tcp Mbit/s"
    else
        fail "in-process: iperf3 TCP" "$(tail -n 5 "$TR_DIR/iperf-tcp.out")"
    fi
    tr_iperf udp 3 5M
    read -r mbps lost total <<<"$TR_IPERF"
    # Fixed rate, well below what the path carries: a dropped datagram is a bug, but allow 1%
    # for a loaded 2-core CI machine.
    if [ "$total" -gt 0 ] && [ "$lost" -ge 0 ] && [ $((lost * 100)) -le "$total" ]; then
        pass "in-process: iperf3 UDP 5 Mbit/s 3 s: $mbps Mbit/s, lost $lost/$total"
    else
        fail "in-process: iperf3 UDP" "lost $lost of $total" "$(tail -n 5 "$TR_DIR/iperf-udp.out")"
    fi
    stop_host_clean "in-process"
else
    fail "in-process: host start" "$(tail -n 5 "$TR_DIR/host.err" 2>/dev/null)"
    tr_stop_host
fi

# --- 2. FUSE device files: socat, then the in-tree relay process -------------------------------
fuse_why=$(tr_fuse_why_not)
if [ -n "$fuse_why" ]; then
    skip "FUSE device files: $fuse_why (the in-process path above still ran)"
elif tr_start_host --fuse "$TR_DIR/dev"; then
    if [ -f "$TR_DIR/dev/tun0" ] && [ -f "$TR_DIR/dev/tun1" ]; then
        pass "FUSE: $TR_DIR/dev/tun0 and tun1 served"
    else
        fail "FUSE: device files missing" "$(ls -la "$TR_DIR/dev" 2>&1)"
    fi
    if tr_start_socat; then
        ping_and_count "socat"
        tr_stop_relays
    else
        fail "socat: relays did not open the devices" "$(tail -n 5 "$TR_DIR/relay.err")"
        tr_stop_relays
    fi
    if tr_start_relay; then
        ping_and_count "relay process"
        tr_iperf tcp 2
        tcp=$TR_IPERF
        if awk -v r="$tcp" 'BEGIN { exit !(r > 0) }'; then
            pass "relay process: iperf3 TCP 2 s over FUSE: $tcp Mbit/s"
        else
            fail "relay process: iperf3 TCP" "$(tail -n 5 "$TR_DIR/iperf-tcp.out")"
        fi
        check_linux_counters "FUSE"
        tr_stop_relays
    else
        fail "relay process: did not open the devices" "$(tail -n 5 "$TR_DIR/relay.err")"
        tr_stop_relays
    fi
    stop_host_clean "FUSE"
else
    fail "FUSE: host start" "$(tail -n 5 "$TR_DIR/host.err" 2>/dev/null)"
    tr_stop_host
fi

# --- 3. tap units, in-process linker (needs no FUSE) ------------------------------------------
TR_IPERF_TO=10.77.0.2
if tr_start_host --tap --relay inproc --strict && tr_wait_opened; then
    pass "tap in-process: host up, tap0/tap1 bridged to ta0 ($TR_NS_A, MAC $(tr_stat unit0.mac)) and tb0 ($TR_NS_B, MAC $(tr_stat unit1.mac))"
    tap_pings "tap in-process"
    check_tap_promisc "tap in-process"
    tr_iperf tcp 3
    tcp=$TR_IPERF
    if awk -v r="$tcp" 'BEGIN { exit !(r > 0) }'; then
        pass "tap in-process: iperf3 TCP 3 s: $tcp Mbit/s"
    else
        fail "tap in-process: iperf3 TCP" "$(tail -n 5 "$TR_DIR/iperf-tcp.out")"
    fi
    check_tap_linux_counters "tap in-process"
    stop_tap_host_clean "tap in-process"
else
    fail "tap in-process: host start" "$(tail -n 5 "$TR_DIR/host.err" 2>/dev/null)"
    tr_stop_host
fi

# --- 4. tap units, FUSE device files and the linker as its own process --------------------------
if [ -n "$fuse_why" ]; then
    skip "tap FUSE device files: $fuse_why (the in-process path above still ran)"
elif tr_start_host --tap --fuse "$TR_DIR/dev"; then
    if [ -f "$TR_DIR/dev/tap0" ] && [ -f "$TR_DIR/dev/tap1" ]; then
        pass "tap FUSE: $TR_DIR/dev/tap0 and tap1 served"
    else
        fail "tap FUSE: device files missing" "$(ls -la "$TR_DIR/dev" 2>&1)"
    fi
    if tr_start_taprelay; then
        tap_pings "tap linker process"
        tr_iperf tcp 2
        tcp=$TR_IPERF
        if awk -v r="$tcp" 'BEGIN { exit !(r > 0) }'; then
            pass "tap linker process: iperf3 TCP 2 s over FUSE: $tcp Mbit/s"
        else
            fail "tap linker process: iperf3 TCP" "$(tail -n 5 "$TR_DIR/iperf-tcp.out")"
        fi
        check_tap_linux_counters "tap FUSE"
        tr_stop_relays
    else
        fail "tap linker process: did not open the devices" "$(tail -n 5 "$TR_DIR/relay.err")"
        tr_stop_relays
    fi
    stop_tap_host_clean "tap FUSE"
else
    fail "tap FUSE: host start" "$(tail -n 5 "$TR_DIR/host.err" 2>/dev/null)"
    tr_stop_host
fi

# --- 5. nothing left behind --------------------------------------------------------------------
tr_cleanup
left=$(tr_leftovers)
if [ -z "$left" ] && ! ip netns list | grep -qE "^${TR_ID}"; then
    pass "cleanup: no namespace, mount or process of this run left"
else
    fail "cleanup" "$left"
fi
finish
