#!/usr/bin/env bash
# Removes tunnel.kext from a Mac: unloads it, removes the LaunchDaemon that loads it at boot and
# the bundle in /Library/Extensions, tells macOS that /Library/Extensions changed
# (touch /Library/Extensions; on 10.13-10.15 also kextcache --prune-staging, which drops staged
# copies of kexts that are gone), and reports what it removed.
#
#   sudo scripts/uninstall.sh [--dry-run]
#
# On macOS 11 and later an unloaded kext stays active until the Mac restarts (it lives in the
# auxiliary kernel collection); the script says so, and a reinstall needs that restart first.
# It never runs "kmutil clear-staging": that would discard every vendor's staged kexts.
# What the installer package (scripts/package.sh) added goes too: the support files in
# /Library/Application Support/tunnel.kext (this script's packaged copy among them) and the
# package's receipt (pkgutil --forget <bundle id>.pkg).
# It refuses, changing nothing, while any /dev/tunN is open, and names the processes holding them.
# --dry-run prints the commands that would change the system.
set -u
PROG=uninstall.sh
USAGE="usage: sudo scripts/uninstall.sh [--dry-run]"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/mac-common.sh
. "$here/lib/mac-common.sh"

while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) DRY_RUN=1 ;;
    -h | --help) say "$USAGE"; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
    esac
    shift
done

read_platform
require_mac
[ "$DRY_RUN" = 1 ] || require_root
use_installed_bundle_id
support_dir="$ROOT/Library/Application Support/$KEXT_NAME"
pkg_id=$BUNDLE_ID.pkg
receipt=0
command -v pkgutil >/dev/null 2>&1 && pkgutil --pkg-info "$pkg_id" >/dev/null 2>&1 && receipt=1

loaded=0
is_loaded "$BUNDLE_ID" && loaded=1
if [ "$loaded" = 0 ] && [ ! -e "$KEXT_DEST" ] && [ ! -e "$DAEMON_PLIST" ] && [ ! -e "$support_dir" ] &&
    [ "$receipt" = 0 ]; then
    say "tunnel.kext is not installed and not loaded: nothing to remove."
    exit 0
fi

if [ "$loaded" = 1 ]; then
    busy=$(open_units)
    if [ -n "$busy" ]; then
        {
            printf '%s: tunnel.kext is in use, so it cannot be unloaded:\n' "$PROG"
            describe_open_units "$busy" | sed 's/^/  /'
            printf '  Quit those programs (or disconnect the VPN using them) and run uninstall.sh again.\n'
            printf '  Nothing was changed.\n'
        } >&2
        exit 1
    fi
fi

removed=""
still_active=0
if [ "$loaded" = 1 ]; then
    if ! unload_kext; then
        die "macOS refused to unload tunnel.kext: a /dev/tunN was probably opened in the meantime, or a" \
            "thread is still inside the driver. Close the programs using it and run uninstall.sh again." \
            "Nothing was removed."
    fi
    if [ "$DRY_RUN" = 0 ] && is_loaded "$BUNDLE_ID"; then
        still_active=1
        removed="${removed}  asked macOS to unload $BUNDLE_ID; it stays active until the Mac restarts
"
    else
        removed="${removed}  unloaded $BUNDLE_ID from the kernel
"
    fi
fi

if [ -e "$DAEMON_PLIST" ]; then
    # Fails harmlessly when the job is not registered (e.g. installed but not yet rebooted).
    run launchctl bootout "system/$DAEMON_LABEL" 2>/dev/null || true
    run rm -f "$DAEMON_PLIST" || die "could not remove $DAEMON_PLIST"
    removed="${removed}  $DAEMON_PLIST (LaunchDaemon; tunnel.kext no longer loads at boot)
"
fi
if [ -e "$DAEMON_LOG" ]; then
    run rm -f "$DAEMON_LOG" || warn "could not remove $DAEMON_LOG"
    removed="${removed}  $DAEMON_LOG
"
fi
if [ -e "$KEXT_DEST" ]; then
    run rm -rf "$KEXT_DEST" || die "could not remove $KEXT_DEST"
    removed="${removed}  $KEXT_DEST
"
    # kextcache(8): macOS notices the change to /Library/Extensions.
    run touch "$EXT_DIR" || warn "could not touch $EXT_DIR"
    if ! uses_kmutil; then
        # Drops staged copies (/Library/StagedExtensions) of kexts that are no longer installed.
        run kextcache --prune-staging || warn "kextcache --prune-staging failed; macOS prunes staged copies itself later."
    fi
fi

# Last: the packaged copy of this script may be running from there (bash keeps reading it).
if [ -e "$support_dir" ]; then
    run rm -rf "$support_dir" || warn "could not remove $support_dir"
    removed="${removed}  $support_dir (the package's uninstaller, status.sh and selftest.sh)
"
fi
if [ "$receipt" = 1 ]; then
    run pkgutil --forget "$pkg_id" || warn "could not remove the receipt $pkg_id (pkgutil --forget)"
    removed="${removed}  the installer package's receipt $pkg_id (pkgutil --forget)
"
fi

say ""
if [ "$DRY_RUN" = 1 ]; then
    say "Dry run: nothing was changed. It would remove:"
else
    say "Removed:"
fi
printf '%s' "$removed"
if uses_kmutil; then
    if [ "$still_active" = 1 ]; then
        say "On macOS 11 and later tunnel.kext stays active until the Mac restarts: /dev/tunN and tunN remain"
        say "until then. Restart to finish; reinstalling also needs that restart first."
    else
        say "macOS 11 and later keep a copy in the auxiliary kernel collection until it is rebuilt:"
        say "restart the Mac to finish (and before installing tunnel.kext again)."
    fi
fi
