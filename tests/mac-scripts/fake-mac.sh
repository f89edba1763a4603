#!/usr/bin/env bash
# A pretend Mac for tests/suites/mac-scripts.sh. The suite links every macOS command the scripts use
# (kextload, kmutil, launchctl, sw_vers, uname, chown, csrutil, lsof, ...) to this file, first on
# PATH. Each call appends "NAME ARGS..." to $FAKE_LOG and then behaves like a small Mac whose
# state lives in $FAKE_STATE (is the kext loaded?) and $TUNNEL_ROOT/dev (the /dev/tunN nodes).
#
# Knobs (environment):
#   FAKE_KERNEL (Darwin)  FAKE_ARCH (x86_64)  FAKE_ARM64 (unset: the sysctl is unknown, as on Intel)
#   FAKE_MACOS (10.15.7)  FAKE_UID (0)
#   FAKE_LOAD_RC (0)  FAKE_LOAD_MAKES_DEV (1: a successful load makes /dev/tun0..15)
#   FAKE_UNLOAD_RC (0)  FAKE_LEGACY_LOADED (0: the old net.sf.tuntaposx.tun kext)
#   FAKE_SIP (enabled|disabled)  FAKE_SIGNATURE (developer-id|adhoc|unsigned)
#   FAKE_LSOF_FILE (lsof -F output to print; absent: nothing open)  FAKE_IFCONFIG_DIR (one file per interface)
#   FAKE_LAUNCHCTL_RC (0)  FAKE_RCODESIGN_RC (0)  FAKE_CHOWN_RC (0)
set -u
name=$(basename "$0")
printf '%s\n' "$name${*:+ $*}" >>"${FAKE_LOG:?FAKE_LOG is not set}"
state=${FAKE_STATE:?FAKE_STATE is not set}
dev=${TUNNEL_ROOT:?TUNNEL_ROOT is not set}/dev
id=org.tunnelkext.tunnel

load() {
    [ "${FAKE_LOAD_RC:-0}" = 0 ] || { echo "$name: (fake) load failed" >&2; exit "$FAKE_LOAD_RC"; }
    : >"$state/loaded"
    if [ "${FAKE_LOAD_MAKES_DEV:-1}" = 1 ]; then
        for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do : >"$dev/tun$n"; done
    fi
}
unload() {
    [ "${FAKE_UNLOAD_RC:-0}" = 0 ] || { echo "$name: (fake) unload failed" >&2; exit "$FAKE_UNLOAD_RC"; }
    rm -f "$state/loaded" "$dev"/tun*
}
# show_loaded BUNDLE_ID: a kextstat line for it when it is loaded.
show_loaded() {
    if [ "$1" = "$id" ] && [ -e "$state/loaded" ]; then
        echo "  180    0 0xffffff7f8a6f2000 0x9000     0x9000     $id (${FAKE_LOADED_VERSION:-1.0.0}) 0B1C2D3E-0000-0000-0000-000000000000 <7 5 4 3 1>"
    elif [ "$1" = net.sf.tuntaposx.tun ] && [ "${FAKE_LEGACY_LOADED:-0}" = 1 ]; then
        echo "  151    0 0xffffff7f83c3e000 0x6000     0x6000     net.sf.tuntaposx.tun (1.0) 9A8B7C6D-0000-0000-0000-000000000000 <7 5 4 3 1>"
    fi
}
# last_arg_after FLAG ARGS...: the argument following FLAG.
arg_after() {
    local flag=$1
    shift
    while [ $# -gt 1 ]; do
        [ "$1" = "$flag" ] && { echo "$2"; return; }
        shift
    done
}

case $name in
uname)
    case ${1:-} in
    -m) echo "${FAKE_ARCH:-x86_64}" ;;
    *) echo "${FAKE_KERNEL:-Darwin}" ;;
    esac
    ;;
sw_vers) echo "${FAKE_MACOS:-10.15.7}" ;;
sysctl)
    if [ -n "${FAKE_ARM64:-}" ]; then echo "$FAKE_ARM64"; else echo "sysctl: unknown oid 'hw.optional.arm64'" >&2; exit 1; fi
    ;;
id) echo "${FAKE_UID:-0}" ;;
kextload) load ;;
kextunload) unload ;;
kextstat) show_loaded "$(arg_after -b "$@")" ;;
kmutil)
    case ${1:-} in
    load) load ;;
    unload) unload ;;
    showloaded) show_loaded "$(arg_after -b "$@")" ;;
    *) echo "kmutil: (fake) unknown subcommand" >&2; exit 64 ;;
    esac
    ;;
chown) exit "${FAKE_CHOWN_RC:-0}" ;;
launchctl) exit "${FAKE_LAUNCHCTL_RC:-0}" ;;
rcodesign) exit "${FAKE_RCODESIGN_RC:-0}" ;;
csrutil) echo "System Integrity Protection status: ${FAKE_SIP:-enabled}." ;;
codesign)
    target=${!#}
    case ${FAKE_SIGNATURE:-developer-id} in
    developer-id)
        printf 'Executable=%s/Contents/MacOS/tunnel\nIdentifier=%s\nAuthority=Developer ID Application: Example Corp (ABCDE12345)\nAuthority=Developer ID Certification Authority\nAuthority=Apple Root CA\n' "$target" "$id" >&2
        ;;
    adhoc) printf 'Executable=%s/Contents/MacOS/tunnel\nIdentifier=%s\nSignature=adhoc\n' "$target" "$id" >&2 ;;
    *) echo "$target: code object is not signed at all" >&2; exit 1 ;;
    esac
    ;;
lsof)
    if [ -n "${FAKE_LSOF_FILE:-}" ] && [ -s "$FAKE_LSOF_FILE" ]; then cat "$FAKE_LSOF_FILE"; else exit 1; fi
    ;;
ifconfig)
    dir=${FAKE_IFCONFIG_DIR:-/nonexistent}
    if [ "${1:-}" = -l ]; then
        list="lo0 en0"
        for f in "$dir"/*; do [ -e "$f" ] && list="$list $(basename "$f")"; done
        echo "$list"
    elif [ -f "$dir/${1:-}" ]; then
        cat "$dir/$1"
    else
        echo "ifconfig: interface ${1:-} does not exist" >&2
        exit 1
    fi
    ;;
*) echo "fake-mac.sh: no fake for '$name'" >&2; exit 127 ;;
esac
