#!/bin/sh
# Proves, on your own Mac, that the installed tunnel.kext works: one command after install.sh.
#
#   sudo scripts/selftest.sh
#
# It opens the first free /dev/tunN, gives tunN a private point-to-point pair of addresses (a random
# 10.x.y.1 --> 10.x.y.2 and a random unique-local fdXX:XXXX:XXXX::1/64), and answers the ICMP echo
# requests the Mac routes into tunN by writing the replies back into /dev/tunN
# (scripts/lib/tun-responder.pl). Then it pings the peer through it, IPv4 and IPv6, first with the
# raw framing of a fresh open and then with TUNSIFHEAD's 4-byte address-family header; checks
# FIONREAD against every packet read; checks that writes that are neither IPv4 nor IPv6 are
# refused; compares the interface counters (netstat -I tunN -b) with the packets that went through;
# closes the device and checks that tunN's addresses went with it. One line per check (PASS, FAIL
# or SKIP), then a verdict. It leaves nothing configured: the driver removes tunN's addresses when
# the device closes (tun-contract section 10), and this script checks that it did.
#
# Needs only what every macOS 10.13-15 has: /bin/sh, /usr/bin/perl (core modules only), ifconfig,
# ping, ping6 and netstat (network_cmds), and kextstat or kmutil to see that tunnel.kext is loaded.
#
# Exit status: 0 every check passed (some may be skipped), 1 a check failed, 2 it could not run.
# If it fails, please report its whole output together with that of scripts/status.sh.
#
# Test hooks (never needed on a Mac; tests/suites/selftest.sh runs this against tests/tunnel-sim's
# FUSE device files on Linux, with small stand-ins for ifconfig, ping and netstat first on PATH):
#   TUNNEL_SELFTEST_DEV_DIR  the directory holding tunN (default /dev); set: no macOS or kext checks.
#   TUNNEL_SELFTEST_IOCTL    bsd (default), linux (the FUSE files' encoding, tun-responder.pl) or none.
#   TUNNEL_SELFTEST_ADDRS    "LOCAL4 PEER4 LOCAL6 PEER6" instead of random addresses.
#   TUNNEL_SELFTEST_PERL     the perl to run (default /usr/bin/perl).
set -u
PROG=selftest.sh
here=$(cd "$(dirname "$0")" && pwd)
PATH=$PATH:/usr/bin:/bin:/usr/sbin:/sbin
export PATH
PERL=${TUNNEL_SELFTEST_PERL:-/usr/bin/perl}
DEV_DIR=${TUNNEL_SELFTEST_DEV_DIR:-/dev}
IOCTL=${TUNNEL_SELFTEST_IOCTL:-bsd}
RESPONDER=$here/lib/tun-responder.pl

passed=0
failed=0
skipped=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
skip() { echo "SKIP $*"; skipped=$((skipped + 1)); }
# fail NAME [DETAIL...]: details indented under the FAIL line.
fail() {
    echo "FAIL $1"
    shift
    for d in "$@"; do printf '%s\n' "$d" | sed 's/^/    /'; done
    failed=$((failed + 1))
}
die() {
    printf '%s: %s\n' "$PROG" "$1" >&2
    shift
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit "${DIE_STATUS:-1}"
}

# --- can it run here? ---------------------------------------------------------------------------
if [ -z "${TUNNEL_SELFTEST_DEV_DIR:-}" ]; then
    kernel=$(uname -s 2>/dev/null)
    [ "$kernel" = Darwin ] || die "this is $kernel, not macOS: the self-test proves tunnel.kext on the Mac it is installed on." \
        "On Linux, scripts/test.sh runs it against the simulated kernel (tests/suites/selftest.sh)."
fi
[ "$(id -u)" = 0 ] || die "this needs root (the /dev/tunN nodes are root-only, and ifconfig changes tunN): sudo $0"
command -v "$PERL" >/dev/null 2>&1 || DIE_STATUS=2 die "$PERL is missing: every macOS 10.13-15 ships it; is this a Mac?"
[ -f "$RESPONDER" ] || DIE_STATUS=2 die "$RESPONDER is missing from this checkout."
if [ -z "${TUNNEL_SELFTEST_DEV_DIR:-}" ]; then
    bid=""
    for info in /Library/Extensions/tunnel.kext/Contents/Info.plist "$here/../Info.plist"; do
        [ -f "$info" ] || continue
        bid=$(sed -n '/<key>CFBundleIdentifier<\/key>/{n;s/.*<string>\(.*\)<\/string>.*/\1/p;}' "$info" | head -n 1)
        [ -n "$bid" ] && break
    done
    [ -n "$bid" ] || DIE_STATUS=2 die "cannot tell tunnel.kext's bundle identifier (no Info.plist found)."
    if command -v kmutil >/dev/null 2>&1; then
        line=$(kmutil showloaded -b "$bid" 2>/dev/null | grep -F " $bid ")
    else
        line=$(kextstat -l -b "$bid" 2>/dev/null | grep -F " $bid ")
    fi
    [ -n "$line" ] || die "tunnel.kext ($bid) is not loaded, so there is nothing to test yet." \
        "scripts/status.sh says why (approval or restart pending, not installed, ...)."
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tunnel-selftest.XXXXXX") || DIE_STATUS=2 die "cannot create a temporary directory"
status=$tmp/status
rpid=""
# cleanup: the responder (by its pid) closes the device, which removes tunN's addresses.
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    if [ -n "$rpid" ] && kill -0 "$rpid" 2>/dev/null; then
        kill -TERM "$rpid" 2>/dev/null
        n=0
        while kill -0 "$rpid" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
        kill -KILL "$rpid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# st KEY: a value from the responder's status file.
st() { sed -n "s/^$1=//p" "$status" 2>/dev/null | tail -n 1; }
# wait_status KEY VALUE|-: until the status file has KEY=VALUE (or any KEY with -); bounded 5 s.
wait_status() {
    n=0
    while [ "$n" -lt 50 ]; do
        v=$(st "$1")
        if [ "$2" = - ] && [ -n "$v" ]; then return 0; fi
        [ "$v" = "$2" ] && return 0
        [ "$(st state)" = error ] && return 1
        kill -0 "$rpid" 2>/dev/null || return 1
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}
# report_now: asks the responder to drain the queue and report; waits for the new report.
report_now() {
    seq=$(st seq)
    kill -USR2 "$rpid" 2>/dev/null || return 1
    n=0
    while [ "$n" -lt 50 ]; do
        [ "$(st seq)" != "$seq" ] && return 0
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}
# bounded SECONDS CMD...: runs CMD, killed after SECONDS (perl's alarm survives exec).
bounded() {
    secs=$1
    shift
    "$PERL" -e 'alarm shift; exec @ARGV or exit 127' "$secs" "$@"
}

# --- addresses ----------------------------------------------------------------------------------
if [ -n "${TUNNEL_SELFTEST_ADDRS:-}" ]; then
    # shellcheck disable=SC2086 # four words on purpose
    set -- $TUNNEL_SELFTEST_ADDRS
    local4=$1 peer4=$2 local6=$3 peer6=$4
else
    # A random private pair that no interface of this Mac uses: 10.x.y.1 --> 10.x.y.2, and a
    # random RFC 4193 unique-local /64 (fd + 40 random bits).
    taken=$(ifconfig -a 2>/dev/null)
    tries=0
    while :; do
        tries=$((tries + 1))
        # shellcheck disable=SC2046 # three numbers
        # The ULA groups are written as ifconfig prints them: no leading zeros, none of them zero.
        set -- $("$PERL" -e 'srand(time ^ $$); printf "%d %d fd%02x:%x:%x\n", 1 + int(rand(254)), int(rand(256)), int(rand(256)), 0x1000 + int(rand(0xf000)), 0x1000 + int(rand(0xf000))')
        net4="10.$1.$2" net6=$3
        case $taken in
        *"inet $net4."* | *"$net6"*) [ "$tries" -lt 20 ] && continue ;;
        esac
        break
    done
    local4=$net4.1 peer4=$net4.2 local6=$net6::1 peer6=$net6::2
fi

# --- open ---------------------------------------------------------------------------------------
"$PERL" "$RESPONDER" --dev-dir "$DEV_DIR" --status "$status" --peer4 "$peer4" --peer6 "$peer6" \
    --ioctl "$IOCTL" --max-seconds 120 2>"$tmp/responder.err" &
rpid=$!
if ! wait_status unit -; then
    fail "open the first free $DEV_DIR/tunN" "$(st error)" "$(cat "$tmp/responder.err" 2>/dev/null)"
    echo "VERDICT: FAILED: no /dev/tunN could be opened. Please report this output and scripts/status.sh's."
    exit 1
fi
unit=$(st unit)
ifc=tun$unit
pass "opened $(st device), the first free unit"
if [ "$IOCTL" = none ]; then
    skip "TUNGIFHEAD and FIONREAD after open: no ioctls on this device (TUNNEL_SELFTEST_IOCTL=none)"
elif [ "$(st head_at_open)" = 0 ] && [ "$(st fionread_at_open)" = 0 ]; then
    pass "after open: raw framing (TUNGIFHEAD 0) and an empty queue (FIONREAD 0)"
else
    fail "after open: raw framing and an empty queue" "TUNGIFHEAD: $(st head_at_open), FIONREAD: $(st fionread_at_open)"
fi

# counters IFACE: "ipackets ibytes opackets obytes" from netstat's link-level line for IFACE.
# Columns counted from the right (with -b): Ipkts Ierrs Ibytes Opkts Oerrs Obytes Coll.
counters() {
    netstat -I "$1" -b -n 2>/dev/null | awk -v ifc="$1" '
        ($1 == ifc || $1 == ifc "*") && $3 ~ /^<Link#/ { print $(NF-6), $(NF-4), $(NF-3), $(NF-1); found = 1; exit }
        END { if (!found) exit 1 }'
}
have_counters=1
base=$(counters "$ifc") || have_counters=0

# --- configure ----------------------------------------------------------------------------------
if out=$(ifconfig "$ifc" inet "$local4" "$peer4" netmask 255.255.255.255 up 2>&1) &&
    out6=$(ifconfig "$ifc" inet6 "$local6/64" up 2>&1); then
    pass "configured $ifc: inet $local4 --> $peer4, inet6 $local6/64"
else
    fail "configure $ifc with ifconfig" "$out" "${out6:-}"
fi
# IPv6 duplicate address detection: wait (bounded) until the address is no longer tentative.
n=0
while ifconfig "$ifc" 2>/dev/null | grep -q tentative && [ "$n" -lt 80 ]; do
    sleep 0.1
    n=$((n + 1))
done
shown=$(ifconfig "$ifc" 2>&1)
case $shown in
*"inet $local4 --> $peer4"*"inet6 $local6"* | *"inet6 $local6"*"inet $local4 --> $peer4"*)
    pass "ifconfig $ifc shows both addresses and the interface is UP" ;;
*) fail "ifconfig $ifc shows both addresses" "$shown" ;;
esac

# ping_check LABEL CMD ADDR: 3 echo requests through tunN, 3 replies back.
ping_check() {
    label=$1 cmd=$2 addr=$3
    out=$(bounded 20 "$cmd" -n -c 3 -i 0.2 "$addr" 2>&1)
    sent=$(printf '%s\n' "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
    got=$(printf '%s\n' "$out" | sed -n 's/.* \([0-9]*\) \(packets \)*received.*/\1/p')
    if [ "${sent:-0}" = 3 ] && [ "${got:-0}" = 3 ]; then
        pass "$label: $cmd $addr, 3 of 3 echo replies came back through $ifc"
    else
        fail "$label: $cmd $addr through $ifc (sent ${sent:-?}, received ${got:-?})" "$out"
    fi
}

# --- raw framing --------------------------------------------------------------------------------
ping_check "IPv4, raw framing" ping "$peer4"
ping_check "IPv6, raw framing" ping6 "$peer6"
report_now
r4=$(st raw_reads4) r6=$(st raw_reads6)
if [ "$(st echo4)" -ge 3 ] && [ "$(st echo6)" -ge 3 ] && [ "$r4" -ge 3 ] && [ "$r6" -ge 3 ] && [ -z "$(st framing_bad)" ]; then
    pass "raw framing: reads are bare IPv4 ($r4) and IPv6 ($r6) packets; the responder answered $(st echo4) + $(st echo6) echo requests"
else
    fail "raw framing" "IPv4 reads $r4, IPv6 reads $r6, echo answered $(st echo4)/$(st echo6)" "$(st framing_bad)"
fi

# --- TUNSIFHEAD ---------------------------------------------------------------------------------
kill -USR1 "$rpid" 2>/dev/null
wait_status switched 1
if [ "$IOCTL" = none ]; then
    skip "TUNSIFHEAD (4-byte AF header): no ioctls on this device (TUNNEL_SELFTEST_IOCTL=none)"
elif [ "$(st state)" = af ]; then
    if [ "$(st head_after_set)" = 1 ]; then
        pass "TUNSIFHEAD(1) accepted; TUNGIFHEAD now reads 1"
    else
        fail "TUNGIFHEAD after TUNSIFHEAD(1)" "$(st head_after_set)"
    fi
else
    fail "TUNSIFHEAD(1)" "$(st tunsifhead)" "$(st error)"
fi
bad=$(st bad_raw_write)
if [ "$bad" = EAFNOSUPPORT ]; then
    pass "raw framing: a write that is neither IPv4 nor IPv6 is refused (EAFNOSUPPORT)"
else
    fail "raw framing: a write that is neither IPv4 nor IPv6 must be refused with EAFNOSUPPORT" "got: ${bad:-nothing}"
fi
if [ "$(st state)" = af ]; then
    ping_check "IPv4, AF header" ping "$peer4"
    ping_check "IPv6, AF header" ping6 "$peer6"
    report_now
    a4=$(st af_reads4) a6=$(st af_reads6)
    if [ "$a4" -ge 3 ] && [ "$a6" -ge 3 ] && [ -z "$(st framing_bad)" ]; then
        pass "AF-header framing: reads carry 2 (IPv4, $a4) and 30 (IPv6, $a6); replies written with the header arrived"
    else
        fail "AF-header framing" "IPv4 reads $a4, IPv6 reads $a6" "$(st framing_bad)"
    fi
    bad=$(st bad_af_write)
    if [ "$bad" = EAFNOSUPPORT ]; then
        pass "AF-header framing: a header that is neither 2 nor 30 is refused (EAFNOSUPPORT)"
    else
        fail "AF-header framing: a header of 99 must be refused with EAFNOSUPPORT" "got: ${bad:-nothing}"
    fi
fi

# --- FIONREAD, writes, counters -------------------------------------------------------------------
report_now
if [ "$IOCTL" = none ]; then
    skip "FIONREAD: no ioctls on this device (TUNNEL_SELFTEST_IOCTL=none)"
elif [ -z "$(st fionread_bad)" ] && [ "$(st fionread_checked)" -gt 0 ] && [ "$(st fionread_after_drain)" = 0 ]; then
    pass "FIONREAD gave the framed length of each of the $(st fionread_checked) packets read, and 0 once drained"
else
    fail "FIONREAD" "$(st fionread_bad)" "checked $(st fionread_checked), after drain $(st fionread_after_drain)"
fi
if [ -z "$(st write_bad)" ]; then
    pass "every reply was written whole ($(st written_packets) packets, $(st written_bytes) bytes)"
else
    fail "reply writes" "$(st write_bad)"
fi
if [ "$have_counters" = 0 ]; then
    skip "interface counters: netstat -I $ifc -b printed no link-level line"
else
    # Everything the stack sent into tunN was read by the responder, everything it wrote came in.
    n=0 ok=0
    while [ "$n" -lt 8 ]; do
        now=$(counters "$ifc")
        # shellcheck disable=SC2086 # four numbers each
        set -- $base $now
        di=$(($5 - $1)) dib=$(($6 - $2)) dout=$(($7 - $3)) dob=$(($8 - $4))
        if [ "$di" = "$(st written_packets)" ] && [ "$dib" = "$(st written_bytes)" ] &&
            [ "$dout" = "$(st read_packets)" ] && [ "$dob" = "$(st read_bytes)" ]; then
            ok=1
            break
        fi
        sleep 0.3
        report_now
        n=$((n + 1))
    done
    if [ "$ok" = 1 ]; then
        pass "interface counters: $ifc input +$di packets/+$dib bytes = written, output +$dout/+$dob = read"
    else
        fail "interface counters (netstat -I $ifc -b) against the packets that went through" \
            "input +$di packets +$dib bytes; written $(st written_packets) packets $(st written_bytes) bytes" \
            "output +$dout packets +$dob bytes; read $(st read_packets) packets $(st read_bytes) bytes"
    fi
fi

# --- close ----------------------------------------------------------------------------------------
kill -TERM "$rpid" 2>/dev/null
n=0
while kill -0 "$rpid" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
if kill -0 "$rpid" 2>/dev/null; then
    fail "close $DEV_DIR/$ifc: the responder did not exit within 5 s"
elif [ "$(st state)" = closed ]; then
    pass "closed $DEV_DIR/$ifc"
else
    fail "close $DEV_DIR/$ifc" "$(st error)" "$(cat "$tmp/responder.err" 2>/dev/null)"
fi
wait "$rpid" 2>/dev/null
rpid=""
n=0
while [ "$n" -lt 30 ]; do
    shown=$(ifconfig "$ifc" 2>&1)
    case $shown in
    *"inet "* | *inet6*) ;;
    *) break ;;
    esac
    sleep 0.1
    n=$((n + 1))
done
case $shown in
*"inet "* | *inet6*)
    fail "after close, $ifc must have no address left (the driver removes them at close)" "$shown"
    # Leave nothing configured anyway.
    ifconfig "$ifc" inet "$local4" -alias >/dev/null 2>&1
    ifconfig "$ifc" inet6 "$local6" -alias >/dev/null 2>&1
    ;;
*)
    case $shown in
    *"<UP"* | *",UP"*) fail "after close, $ifc must be down" "$shown" ;;
    *) pass "after close, $ifc has no IPv4 or IPv6 address left and is down" ;;
    esac
    ;;
esac

total=$((passed + failed + skipped))
if [ "$failed" = 0 ]; then
    echo "VERDICT: tunnel.kext works here: $passed of $total checks passed, $skipped skipped."
    exit 0
fi
echo "VERDICT: FAILED: $failed of $total checks failed. Please report this whole output, with that of scripts/status.sh."
exit 1
