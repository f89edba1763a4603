#!/usr/bin/env bash
# Shows the state of tunnel.kext on this Mac: installed or not, loaded or not and which version,
# whether it loads at boot, which /dev/tunN are open and by whom, and the tunN interfaces.
#
#   scripts/status.sh
#
# Changes nothing. Without sudo, lsof sees only your own processes; the output says so.
set -u
PROG=status.sh
USAGE="usage: scripts/status.sh"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/mac-common.sh
. "$here/lib/mac-common.sh"

case ${1:-} in
"") ;;
-h | --help) say "$USAGE"; exit 0 ;;
*) usage_error "unexpected argument '$1'" ;;
esac

read_platform
require_mac

arch_note=$ARCH
[ "$IS_ARM64" = 1 ] && arch_note="$ARCH, Apple silicon: tunnel.kext cannot load here yet; use utun"
say "tunnel.kext status on macOS $MACOS ($arch_note)"

if [ -d "$KEXT_DEST" ]; then
    xml=$(mktemp "${TMPDIR:-/tmp}/tunnel-plist.XXXXXX") || die "cannot create a temporary file"
    plist_xml "$KEXT_DEST/Contents/Info.plist" >"$xml" 2>/dev/null
    version=$(plist_string "$xml" CFBundleVersion)
    rm -f "$xml"
    say "installed:    $KEXT_DEST, version ${version:-unknown}"
else
    say "installed:    no ($KEXT_DEST is absent)"
fi

line=$(loaded_line "$BUNDLE_ID")
if [ -n "$line" ]; then
    loaded_version=$(printf '%s\n' "$line" | sed -n "s/.*$BUNDLE_ID (\([^)]*\)).*/\1/p")
    say "loaded:       yes, version ${loaded_version:-unknown}"
else
    say "loaded:       no"
fi

if [ -e "$DAEMON_PLIST" ]; then
    say "boot loading: yes, by the LaunchDaemon $DAEMON_PLIST"
else
    say "boot loading: no LaunchDaemon ($DAEMON_PLIST is absent)"
fi

nodes=$(dev_nodes)
if [ -n "$nodes" ]; then
    count=$(printf '%s\n' "$nodes" | wc -l | tr -d ' ')
    say "devices:      $count ($(printf '%s\n' "$nodes" | head -n 1) ... $(printf '%s\n' "$nodes" | tail -n 1))"
    busy=$(open_units)
    if [ -n "$busy" ]; then
        say "open:"
        describe_open_units "$busy" | sed 's/^/  /'
    else
        say "open:         none"
    fi
    [ "$(id -u)" = 0 ] || say "              (not root: only your own processes are visible; run with sudo to see all)"
else
    say "devices:      none (/dev/tunN exist only while tunnel.kext is loaded)"
fi

ifaces=$(ifconfig -l 2>/dev/null | tr ' ' '\n' | grep -E '^tun[0-9]+$')
if [ -n "$ifaces" ]; then
    say "interfaces:"
    for i in $ifaces; do
        ifconfig "$i" 2>/dev/null | sed 's/^/  /'
    done
else
    say "interfaces:   none (a tunN interface appears the first time /dev/tunN is opened)"
fi
