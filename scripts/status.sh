#!/usr/bin/env bash
# Shows the state of tunnel.kext on this Mac: installed or not, loaded or not and which version,
# whether macOS holds a staged copy, whether it loads at boot (asking launchd, not just looking
# for the file: a LaunchDaemon switched off in Login Items does not run), other tun drivers,
# which /dev/tunN are open and by whom, and the tunN interfaces.
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
use_installed_bundle_id

arch_note=$ARCH
[ "$IS_ARM64" = 1 ] && arch_note="$ARCH, Apple silicon: needs Reduced Security with user-managed kexts"
say "tunnel.kext status on macOS $MACOS ($arch_note)"
[ -z "$MACOS_NOTE" ] || say "note:         $MACOS_NOTE"

installed=0
if [ -d "$KEXT_DEST" ]; then
    installed=1
    xml=$(mktemp "${TMPDIR:-/tmp}/tunnel-plist.XXXXXX") || die "cannot create a temporary file"
    plist_xml "$KEXT_DEST/Contents/Info.plist" >"$xml" 2>/dev/null
    version=$(plist_string "$xml" CFBundleVersion)
    rm -f "$xml"
    say "installed:    $KEXT_DEST, version ${version:-unknown} ($BUNDLE_ID)"
else
    say "installed:    no ($KEXT_DEST is absent)"
fi

loaded=0
if is_loaded "$BUNDLE_ID"; then
    loaded=1
    v=$(loaded_version "$BUNDLE_ID")
    if [ "$installed" = 0 ] && uses_kmutil; then
        say "loaded:       yes, version ${v:-unknown}, although it is no longer installed: it stays active until the Mac restarts"
    else
        say "loaded:       yes, version ${v:-unknown}"
    fi
elif [ "$installed" = 1 ]; then
    if uses_kmutil; then
        say "loaded:       no. If it was installed recently, macOS waits for your approval in"
        say "              $(settings_pane) and then a restart; after the restart the"
        say "              LaunchDaemon loads it (or run: sudo scripts/install.sh)."
    else
        say "loaded:       no. If it was installed recently, macOS waits for your approval in"
        say "              $(settings_pane) (it loads at once after Allow), or run: sudo scripts/install.sh"
    fi
else
    say "loaded:       no"
fi
if [ -e "$STAGED_DEST" ]; then
    say "staged copy:  ${STAGED_DEST} (macOS's own SIP-protected copy from a load attempt)"
fi

if [ -e "$DAEMON_PLIST" ]; then
    program=$(daemon_plist_program "$DAEMON_PLIST")
    expected=$(daemon_program | tr '\n' ' ')
    expected=${expected% }
    read_daemon_state
    if [ "$program" != "$expected" ]; then
        say "boot loading: no: the LaunchDaemon $DAEMON_PLIST runs '$program', which is wrong for"
        say "              macOS $MACOS (it should run '$expected'). Run sudo scripts/install.sh again."
    elif [ "$DAEMON_DISABLED" = 1 ]; then
        say "boot loading: no: launchd has the LaunchDaemon $DAEMON_LABEL disabled (on macOS 13+ it was"
        say "              switched off in System Settings > General > Login Items). Turn it on there, or:"
        say "              sudo launchctl enable system/$DAEMON_LABEL"
    elif [ "$DAEMON_KNOWN" = 0 ]; then
        say "boot loading: from the next boot: $DAEMON_PLIST runs '$program'"
        say "              (launchd has not registered it yet; it reads it at boot)"
    else
        last=""
        case $DAEMON_LAST_EXIT in
        "" | 0 | "(never exited)") ;;
        *)
            if [ "$loaded" = 1 ]; then
                last="; its last run failed ($DAEMON_LAST_EXIT), see $DAEMON_LOG"
            else
                last="; its last run failed ($DAEMON_LAST_EXIT), as it does while approval or a restart is pending (see $DAEMON_LOG)"
            fi
            ;;
        esac
        say "boot loading: yes: launchd job $DAEMON_LABEL runs '$program' at every boot$last"
    fi
else
    say "boot loading: no LaunchDaemon ($DAEMON_PLIST is absent)"
fi

others=$(other_tun_drivers)
if [ -n "$others" ]; then
    say "other tun drivers (they conflict with tunnel.kext):"
    describe_other_drivers "$others" | sed 's/^/  /'
fi

nodes=$(dev_nodes)
if [ -n "$nodes" ]; then
    count=$(printf '%s\n' "$nodes" | wc -l | tr -d ' ')
    whose=""
    [ "$loaded" = 1 ] || whose=", made by another driver: tunnel.kext is not loaded"
    say "devices:      $count ($(printf '%s\n' "$nodes" | head -n 1) ... $(printf '%s\n' "$nodes" | tail -n 1))$whose"
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
if [ "$loaded" = 1 ]; then
    say "To prove it works on this Mac: sudo scripts/selftest.sh"
fi
