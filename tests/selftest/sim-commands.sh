#!/usr/bin/env bash
# Stand-ins for the macOS commands scripts/selftest.sh runs (ifconfig, netstat, ping, ping6), so
# that tests/suites/selftest.sh can run the unchanged self-test on Linux against tests/tunnel-sim's
# FUSE device files. The suite links each name to this file, first on PATH. They answer from the
# real driver's state in the simulated kernel (the host's stats file, rewritten every 200 ms:
# if_flags, if_addrs and the ifnet counters) and print it the way macOS prints it:
#   ifconfig tunN                 flags, "inet L --> P netmask 0xffffffff", "inet6 A prefixlen 64"
#   ifconfig tunN inet L P ... up the host configures the simulated tunN itself when its device is
#   ifconfig tunN inet6 A/64 up   opened (10.66.0.1 --> 10.66.0.2, fd66::1 for unit 0; the mirror
#                                 image for unit 1): checks that the asked-for addresses are those,
#                                 and waits (bounded) until the driver's interface has them and is up
#   ifconfig -a                   the loopback only (no address of the simulated pair is "taken")
#   netstat -I tunN -b -n         the link-level line with the driver's ifnet counters
#   ping / ping6 ... ADDR         Linux ping in the namespace whose stack is bridged to the unit
#                                 whose peer ADDR is (-c, -i, -n kept)
# Environment: SIM_STATS (the stats file), SIM_NS_0 and SIM_NS_1 (the namespaces of units 0 and 1).
set -u
name=$(basename "$0")
stats=${SIM_STATS:?SIM_STATS is not set}

stat() { sed -n "s/^$1=//p" "$stats" 2>/dev/null | tail -n 1; }
# unit_addrs N: "LOCAL4 PEER4 LOCAL6 PEER6" of unit N (tests/tunnel-sim/src/bridge.rs addrs).
unit_addrs() {
    local me=$(($1 % 2 + 1)) peer=$((($1 + 1) % 2 + 1))
    echo "10.66.0.$me 10.66.0.$peer fd66::$me fd66::$peer"
}
flag_words() {
    local f=$(($1)) w=""
    [ $((f & 0x1)) = 0 ] || w="$w,UP"
    [ $((f & 0x2)) = 0 ] || w="$w,BROADCAST"
    [ $((f & 0x10)) = 0 ] || w="$w,POINTOPOINT"
    [ $((f & 0x40)) = 0 ] || w="$w,RUNNING"
    [ $((f & 0x80)) = 0 ] || w="$w,NOARP"
    [ $((f & 0x8000)) = 0 ] || w="$w,MULTICAST"
    echo "${w#,}"
}

case $name in
ifconfig)
    case ${1:-} in
    -a | -l)
        printf 'lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384\n\tinet 127.0.0.1 netmask 0xff000000\n'
        exit 0
        ;;
    tun[0-9]*) ;;
    *) echo "ifconfig: (stand-in) unsupported: $*" >&2; exit 64 ;;
    esac
    ifc=$1
    unit=${ifc#tun}
    shift
    flags=$(stat "unit$unit.if_flags")
    [ -n "$flags" ] || { echo "ifconfig: interface $ifc does not exist" >&2; exit 1; }
    read -r l4 p4 l6 _ <<<"$(unit_addrs "$unit")"
    if [ $# = 0 ]; then
        printf '%s: flags=%x<%s> mtu 1500\n' "$ifc" "$((flags))" "$(flag_words "$flags")"
        IFS=, read -r -a addrs <<<"$(stat "unit$unit.if_addrs")"
        for a in "${addrs[@]}"; do
            case $a in
            *:*) printf '\tinet6 %s prefixlen 64\n' "$a" ;;
            *.*) printf '\tinet %s --> %s netmask 0xffffffff\n' "$a" "$p4" ;;
            esac
        done
        exit 0
    fi
    case "$*" in
    "inet $l4 $p4 netmask 255.255.255.255 up") want=$l4 ;;
    "inet6 $l6/64 up") want=$l6 ;;
    *" -alias" | delete)
        echo "ifconfig: (stand-in) the simulated $ifc's addresses are not removable from here" >&2
        exit 1
        ;;
    *)
        echo "ifconfig: (stand-in) the simulated host configures $ifc with $l4 --> $p4 and $l6 itself; asked for: $*" >&2
        exit 1
        ;;
    esac
    for ((i = 0; i < 30; i++)); do
        f=$(stat "unit$unit.if_flags")
        case ",$(stat "unit$unit.if_addrs")," in
        *",$want,"*) [ $((${f:-0} & 1)) = 1 ] && exit 0 ;;
        esac
        sleep 0.1
    done
    echo "ifconfig: (stand-in) the simulated $ifc did not get $want and UP within 3 s" >&2
    exit 1
    ;;
netstat)
    ifc=""
    while [ $# -gt 0 ]; do
        [ "$1" = -I ] && { ifc=$2; shift; }
        shift
    done
    unit=${ifc#tun}
    flags=$(stat "unit$unit.if_flags")
    [ -n "$flags" ] || { echo "netstat: interface $ifc does not exist" >&2; exit 1; }
    shown=$ifc
    [ $((flags & 1)) = 1 ] || shown="$ifc*"
    printf '%-10.10s %-5.5s %-13.13s %-15.15s %8.8s %5.5s %10.10s %8.8s %5.5s %10.10s %5s\n' \
        Name Mtu Network Address Ipkts Ierrs Ibytes Opkts Oerrs Obytes Coll
    printf '%-10.10s %-5u %-11.11s %-17s %8s %5s %10s %8s %5s %10s %5s\n' "$shown" 1500 "<Link#$((unit + 7))>" "" \
        "$(stat "unit$unit.if_ipackets")" "$(stat "unit$unit.if_ierrors")" "$(stat "unit$unit.if_ibytes")" \
        "$(stat "unit$unit.if_opackets")" "$(stat "unit$unit.if_oerrors")" "$(stat "unit$unit.if_obytes")" 0
    ;;
ping | ping6)
    args=()
    target=""
    while [ $# -gt 0 ]; do
        case $1 in
        -c | -i) args+=("$1" "$2"); shift ;;
        -n) args+=(-n) ;;
        -*) ;;
        *) target=$1 ;;
        esac
        shift
    done
    case $target in
    10.66.0.2 | fd66::2) ns=${SIM_NS_0:?} ;;
    10.66.0.1 | fd66::1) ns=${SIM_NS_1:?} ;;
    *) echo "$name: (stand-in) $target is not a peer of the simulated pair" >&2; exit 2 ;;
    esac
    family=-4
    [ "$name" = ping6 ] && family=-6
    # The real ping (not this stand-in, which is first on PATH).
    real=$(PATH=/usr/bin:/bin:/usr/sbin:/sbin command -v ping) || { echo "$name: (stand-in) Linux ping is not installed" >&2; exit 2; }
    exec timeout 20 ip netns exec "$ns" "$real" "$family" "${args[@]}" -W 2 "$target"
    ;;
*) echo "sim-commands.sh: no stand-in for '$name'" >&2; exit 127 ;;
esac
