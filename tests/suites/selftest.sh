#!/usr/bin/env bash
# Suite selftest (issue 15): runs the unchanged scripts/selftest.sh, under /bin/sh, on Linux against
# the real driver in the simulated kernel, through tests/tunnel-sim's FUSE device files: the same
# responder (scripts/lib/tun-responder.pl) that answers ICMP echo requests on a user's Mac answers
# them here, ioctl numbers in the Linux encoding that the FUSE server maps back to BSD
# (tests/tunnel-sim/src/ioctl_map.rs). The namespace whose Linux stack is bridged to the simulated
# tun0 sends the pings; small stand-ins for ifconfig, netstat and ping (tests/selftest/) read the
# driver's interface state from the host's stats file and print it as macOS does.
#
# Checks: the responder's ioctl encoding equals the values ioctl_map.rs pins; with tun0 held open by
# another process the responder takes tun1 (the first free unit); every check of selftest.sh (one
# line each here, prefixed "selftest:") and its verdict; the driver unloads with zero leaks; nothing
# of the run is left (namespaces, mount, processes, all by id).
#
# Prints one PASS/FAIL/SKIP line per check and ends with "N passed, N failed[, N skipped]". Without
# root, network namespaces, tun, FUSE or perl it prints SKIP lines (counted as skipped, never as
# passed). Bounded: every command runs under timeout; about 20 s once tunnel-sim is built.
# Run from anywhere (as root): bash tests/suites/selftest.sh
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

responder=$TR_REPO/scripts/lib/tun-responder.pl
ioctl_map=$TR_REPO/tests/tunnel-sim/src/ioctl_map.rs
checks=18 # the selftest.sh checks, each reported below with its own line

# --- the ioctl encoding needs no simulator: always checked -------------------------------------
if ! command -v perl >/dev/null 2>&1; then
    skip "the responder's ioctl encoding: perl is not installed"
else
    # Every BSD -> Linux pair that ioctl_map.rs's tests pin (bsd_to_linux(A) == B, == linux_ioc(...),
    # or linux_to_bsd(B) == Some(A)) for a command the responder uses must be what it sends.
    map=$(perl "$responder" --print-ioctl-map 1 --dev-dir - --status - --peer4 - --peer6 -)
    pinned=$(sed -E 's/(0x[0-9a-f]+)_([0-9a-f]+)/\1\2/g' "$ioctl_map" | sed -nE \
        -e 's/.*bsd_to_linux\((0x[0-9a-f]+)\), (0x[0-9a-f]+)\).*/\1 \2/p' \
        -e 's/.*linux_to_bsd\((0x[0-9a-f]+)\), Some\((0x[0-9a-f]+)\)\).*/\2 \1/p' \
        -e "s/.*bsd_to_linux\\((0x[0-9a-f]+)\\), linux_ioc\\(([0-9]), b'(.)', ([0-9]+), ([0-9]+)\\)\\).*/\\1 ioc \\2 \\3 \\4 \\5/p")
    problems="" matched=0
    while read -r bsd linux dir ty nr size; do
        [ -n "$bsd" ] || continue
        if [ "$linux" = ioc ]; then
            linux=$(printf '0x%08x' $(((dir << 30) | (size << 16) | ($(printf '%d' "'$ty") << 8) | nr)))
        fi
        while read -r name b l; do
            [ "$b" = "$bsd" ] || continue
            matched=$((matched + 1))
            [ "$l" = "$linux" ] || problems="$problems $name sends $l, pinned $linux;"
        done <<<"$map"
    done <<<"$pinned"
    if [ "$matched" -gt 0 ] && [ -z "$problems" ]; then
        pass "the responder's Linux ioctl encoding equals ioctl_map.rs's pinned values ($matched pinned pairs): $(tr '\n' ';' <<<"$map")"
    else
        fail "the responder's Linux ioctl encoding against ioctl_map.rs" "matched $matched;$problems" "$map"
    fi
fi

why=$(tr_why_not)
if [ -n "$why" ]; then
    tr_deps >/dev/null 2>&1
    why=$(tr_why_not)
fi
[ -n "$why" ] || why=$(tr_fuse_why_not)
[ -n "$why" ] || command -v perl >/dev/null 2>&1 || why="perl is not installed"
[ -n "$why" ] || [ -x /bin/sh ] || why="/bin/sh is missing"
if [ -n "$why" ]; then
    # Each check that cannot run is counted as skipped, one by one.
    skip "the responder opens the first free unit: $why"
    for ((i = 1; i <= checks; i++)); do
        skip "selftest.sh check $i of $checks against the simulated driver's FUSE device files: $why"
    done
    skip "selftest.sh's verdict: $why"
    skip "driver unloaded with zero leaks: $why"
    skip "cleanup: $why"
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
if ! tr_start_host --fuse "$TR_DIR/dev"; then
    fail "tunnel-sim host with FUSE device files" "$(tail -n 5 "$TR_DIR/host.err" 2>/dev/null)"
    finish
fi

# --- the first free unit ----------------------------------------------------------------------
timeout 20 sleep 15 <>"$TR_DIR/dev/tun0" &
holder=$!
TR_PIDS+=("$holder")
sleep 0.3
timeout 20 perl "$responder" --dev-dir "$TR_DIR/dev" --status "$TR_DIR/first-free" --peer4 10.66.0.1 \
    --peer6 fd66::1 --ioctl linux --max-seconds 10 2>"$TR_DIR/first-free.err" &
probe=$!
TR_PIDS+=("$probe")
for ((i = 0; i < 50; i++)); do
    grep -q '^unit=' "$TR_DIR/first-free" 2>/dev/null && break
    kill -0 "$probe" 2>/dev/null || break
    sleep 0.1
done
unit=$(sed -n 's/^unit=//p' "$TR_DIR/first-free" 2>/dev/null)
tr_stop_pid "$probe"
tr_stop_pid "$holder"
if [ "$unit" = 1 ]; then
    pass "with tun0 held open by another process (EBUSY), the responder opens tun1, the first free unit"
else
    fail "the responder must skip a busy tun0 and open tun1" "unit: ${unit:-none}" "$(cat "$TR_DIR/first-free" "$TR_DIR/first-free.err" 2>/dev/null)"
fi

# --- selftest.sh, unchanged, under /bin/sh ------------------------------------------------------
stand_ins=$TR_DIR/bin
mkdir -p "$stand_ins"
for c in ifconfig netstat ping ping6; do ln -s "$TR_REPO/tests/selftest/sim-commands.sh" "$stand_ins/$c"; done
# Unit 0's interface must be idle (the probe above closed it) before the counters are compared.
sleep 0.5
PATH="$stand_ins:$PATH" SIM_STATS=$TR_DIR/stats SIM_NS_0=$TR_NS_A SIM_NS_1=$TR_NS_B \
    TUNNEL_SELFTEST_DEV_DIR=$TR_DIR/dev TUNNEL_SELFTEST_IOCTL=linux TUNNEL_SELFTEST_PERL=$(command -v perl) \
    TUNNEL_SELFTEST_ADDRS="10.66.0.1 10.66.0.2 fd66::1 fd66::2" \
    tr_run "$TR_DIR/selftest.out" timeout 120 /bin/sh "$TR_REPO/scripts/selftest.sh"
rc=$?
lines=0
cp "$TR_DIR/selftest.out" "$TR_DIR/selftest.lines"
while IFS= read -r line; do
    case $line in
    "PASS "*) pass "selftest: ${line#PASS }"; lines=$((lines + 1)) ;;
    "SKIP "*) skip "selftest: ${line#SKIP }"; lines=$((lines + 1)) ;;
    "FAIL "*)
        details=$(awk -v l="$line" 'f && /^    / { print; next } f { exit } $0 == l { f = 1 }' "$TR_DIR/selftest.out")
        fail "selftest: ${line#FAIL }" "$details"
        lines=$((lines + 1))
        ;;
    esac
done <"$TR_DIR/selftest.lines"
verdict=$(grep '^VERDICT:' "$TR_DIR/selftest.out")
if [ "$rc" = 0 ] && [ "$lines" -ge "$checks" ] && [ -n "$verdict" ] && [[ $verdict != *FAILED* ]]; then
    pass "selftest.sh under /bin/sh: exit 0, $lines checks, $verdict"
else
    fail "selftest.sh under /bin/sh: exit $rc, $lines check lines (at least $checks expected)" "$(cat "$TR_DIR/selftest.out")"
fi

# --- the driver, and nothing left ---------------------------------------------------------------
tr_stop_host
host_rc=$?
if [ "$host_rc" = 0 ] && grep -q '^unload=clean$' "$TR_DIR/host.out"; then
    pass "host stopped, driver unloaded with zero leaks"
else
    fail "host stop (exit $host_rc)" "$(tail -n 5 "$TR_DIR/host.err")"
fi
tr_cleanup
left=$(tr_leftovers)
if [ -z "$left" ] && ! ip netns list 2>/dev/null | grep -qE "^${TR_ID}"; then
    pass "cleanup: no namespace, mount or process of this run left"
else
    fail "cleanup" "$left"
fi
finish
