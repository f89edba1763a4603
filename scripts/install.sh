#!/usr/bin/env bash
# Installs tunnel.kext on a Mac (Intel: macOS 10.13 or later; Apple silicon: macOS 11 or later) and
# arranges for it to load at boot.
#
#   sudo scripts/install.sh [--dry-run] [--keep-on-failure] [BUNDLE]
#   sudo scripts/install.sh [--dry-run] [--keep-on-failure] --in-place
#
# BUNDLE defaults to target/tunnel.kext (what scripts/build.sh writes). The bundle identifier is
# read from the bundle's own Info.plist.
#
# Before changing anything it refuses on a non-Mac, on macOS older than 10.13, on a bundle without
# the slice this Mac needs, on an unsigned build while SIP enforces kext signatures, and whenever
# another tun driver is around: tuntaposx or Tunnelblick's tun (net.sf.tuntaposx.tun,
# net.tunnelblick.tun, foo.tun) loaded or installed, or any /dev/tunN already present. It then
# copies the bundle to /Library/Extensions (root:wheel, no group/other write), writes the
# LaunchDaemon for this macOS (/sbin/kextload PATH on 10.13-10.15, /usr/bin/kmutil load -b ID on
# 11+, no shell in between) and loads the kext. /dev/tun0 counts only if it appeared with this load.
#
# What macOS does with a kext it has not seen before (TN2459; support.apple.com/102026):
#   10.13-10.15  the load is blocked (kextload exits 27) until you click Allow; then it loads at once.
#   11 and later the load is blocked ("not approved to load") until you click Allow, and even then
#                only a restart (which rebuilds the auxiliary kernel collection) makes it loadable.
# In both cases the bundle and the LaunchDaemon stay installed and the exit status is 3.
#
# Exit status:
#   0  installed and loaded: /dev/tun0 appeared with this load (or it was already loaded).
#   1  refused or failed; the message says what, if anything, was changed and what remains.
#   2  usage error.
#   3  installed, but approval or a restart is pending: the exact steps are printed; afterwards run
#      scripts/status.sh (or this script again), then sudo scripts/selftest.sh.
#
# Run it again after approving/restarting: with the same bundle already installed it only loads
# it (kmutil load -b on 11+) and checks. --keep-on-failure keeps the bundle and the LaunchDaemon
# even when the load fails for another reason than a pending approval. --dry-run checks
# everything and prints the commands that would change the system. --in-place takes the bundle
# already at /Library/Extensions/tunnel.kext (placed there by the installer package,
# scripts/package.sh) and does everything after the copy; it never removes that bundle.
set -u
PROG=install.sh
USAGE="usage: sudo scripts/install.sh [--dry-run] [--keep-on-failure] [--in-place | BUNDLE]  (default BUNDLE: target/tunnel.kext)"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/mac-common.sh
. "$here/lib/mac-common.sh"

bundle=""
keep=0
in_place=0
while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) DRY_RUN=1 ;;
    --keep-on-failure) keep=1 ;;
    --in-place) in_place=1 ;;
    -h | --help) say "$USAGE"; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
        [ -z "$bundle" ] || usage_error "give one bundle path, not '$bundle' and '$1'"
        bundle=$1
        ;;
    esac
    shift
done
if [ "$in_place" = 1 ]; then
    [ -z "$bundle" ] || usage_error "--in-place installs the bundle already at $KEXT_DEST: give no BUNDLE"
    bundle=$KEXT_DEST
fi
[ -n "$bundle" ] || bundle=$(cd "$here/.." && pwd)/target/$KEXT_NAME
bundle=${bundle%/}

# --- refusals: nothing is changed before all of these pass ------------------------------------
read_platform
require_mac
case $ARCH in
x86_64 | arm64) ;;
*) die "unsupported processor architecture '$ARCH': tunnel.kext is built for x86_64 and arm64e." ;;
esac
if [ "$MACOS_MAJOR" -lt 10 ] || { [ "$MACOS_MAJOR" -eq 10 ] && [ "$MACOS_MINOR" -lt 13 ]; }; then
    die "macOS $MACOS is too old: tunnel.kext supports macOS 10.13 (High Sierra) and later."
fi
[ "$DRY_RUN" = 1 ] || require_root
verify_bundle "$bundle"
[ -z "$MACOS_NOTE" ] || say "Note: $MACOS_NOTE."
if [ "$IS_ARM64" = 1 ]; then
    rosetta=""
    [ "$ARCH" != arm64 ] && rosetta=" (this shell runs under Rosetta; the kernel is arm64e)"
    say "This Mac has Apple silicon$rosetta: the bundle's arm64e slice will be used."
    apple_silicon_steps
fi
[ -d "$EXT_DIR" ] || die "$EXT_DIR does not exist: is this really macOS?"
[ -d "$DAEMON_DIR" ] || die "$DAEMON_DIR does not exist: is this really macOS?"

# The same bundle already installed: this run resumes (loads it, checks it). A different one: no.
resume=0
if [ "$in_place" = 1 ]; then
    : # the bundle is where it belongs already; it is loaded as a new one (by path)
elif [ -e "$KEXT_DEST" ]; then
    if diff -r "$bundle" "$KEXT_DEST" >/dev/null 2>&1; then
        resume=1
    else
        restart_hint=""
        uses_kmutil && restart_hint=" On macOS 11 and later restart after uninstalling: the old kext stays active until then."
        die "a different tunnel.kext is already installed at $KEXT_DEST." \
            "To replace it, run 'sudo scripts/uninstall.sh' first (it unloads the old version safely), then install again.$restart_hint" \
            "Nothing was changed."
    fi
fi
ours_loaded=0
is_loaded "$BUNDLE_ID" && ours_loaded=1
if [ "$ours_loaded" = 1 ] && [ "$resume" = 0 ] && [ "$in_place" = 0 ]; then
    if uses_kmutil; then
        die "tunnel.kext ($BUNDLE_ID) is still active, although it is not installed in $EXT_DIR:" \
            "on macOS 11 and later an uninstalled kext stays loaded until the Mac restarts." \
            "Restart the Mac, then run this again. Nothing was changed."
    fi
    die "a tunnel.kext ($BUNDLE_ID) is loaded from somewhere other than $KEXT_DEST." \
        "Unload it first (sudo kextunload -b $BUNDLE_ID), then run this again. Nothing was changed."
fi

others=$(other_tun_drivers)
if [ -n "$others" ]; then
    {
        printf '%s: another tun driver is on this Mac. It also makes /dev/tunN and tunN, so it and\n' "$PROG"
        printf 'tunnel.kext cannot both be loaded; remove it first:\n'
        describe_other_drivers "$others" | sed 's/^/  /'
        printf 'Then run this again. Nothing was changed.\n'
    } >&2
    exit 1
fi
nodes_before=$(dev_nodes)
if [ -n "$nodes_before" ] && [ "$ours_loaded" = 0 ]; then
    die "$(printf '%s\n' "$nodes_before" | head -n 1) already exists, although tunnel.kext is not loaded: another driver made it." \
        "tunnel.kext would not get those device nodes, and a check for /dev/tun0 would be fooled." \
        "Find the driver with 'kextstat | grep -v com.apple' (macOS 11+: 'kmutil showloaded | grep -v com.apple')," \
        "unload and remove it, then run this again. Nothing was changed."
fi

# Which signature the bundle carries, and whether System Integrity Protection enforces kext ones.
read_signature "$bundle"
read_sip
if [ "$SIP" = on ] && [ "$SIGNATURE" != developer-id ] && [ "$SIGNATURE" != unknown ]; then
    die "this build of tunnel.kext is $SIGNATURE_WORDS and System Integrity Protection enforces kext signatures ($SIP_TEXT), so macOS would refuse to load it." \
        "Either sign it with a Developer ID certificate enabled for kexts (see scripts/sign.sh)," \
        "or, on a test machine only, turn SIP off: restart into Recovery, open Terminal, run 'csrutil disable', restart." \
        "Nothing was changed."
fi

# --- changes ------------------------------------------------------------------------------------
copied=0
removed_again=""
daemon_new=0
[ -e "$DAEMON_PLIST" ] || daemon_new=1
# rollback: removes what this run added (never a bundle or LaunchDaemon that was there before).
rollback() {
    removed_again=""
    if [ "$daemon_new" = 1 ] && [ -e "$DAEMON_PLIST" ]; then
        run launchctl bootout "system/$DAEMON_LABEL" 2>/dev/null
        run rm -f "$DAEMON_PLIST"
        removed_again="$removed_again $DAEMON_PLIST"
    fi
    if [ "$copied" = 1 ]; then
        run rm -rf "$KEXT_DEST"
        run touch "$EXT_DIR"
        removed_again="$removed_again $KEXT_DEST"
        copied=0
    fi
}
# what_remains: after a rollback, in words. A load attempt leaves macOS's own staged copy.
what_remains() {
    [ -z "$removed_again" ] || say "Removed again:$removed_again."
    if [ -e "$STAGED_DEST" ]; then
        say "macOS keeps its own copy from the load attempt in ${STAGED_DEST%/*} (protected by SIP;"
        say "macOS removes it itself$(uses_kmutil || printf ', or: sudo kextcache --prune-staging'))."
    fi
}
trap 'rollback; what_remains; exit 130' INT TERM

explain_load_failure() {
    say ""
    say "macOS did not load tunnel.kext, and not because an approval is pending. The usual causes:"
    say ""
    say "1. The signature. This build is $SIGNATURE_WORDS; System Integrity Protection: $SIP_TEXT"
    if needs_notarization; then
        say "   macOS $MACOS loads a kext only if it is signed with a Developer ID certificate that Apple"
        say "   enabled for kexts and notarized by Apple (required since 10.14.5); see scripts/sign.sh."
    else
        say "   macOS $MACOS loads a kext only if it is signed with a Developer ID certificate that Apple"
        say "   enabled for kexts; see scripts/sign.sh."
    fi
    say "   Unsigned and ad-hoc signed test builds load only with SIP turned off (test machines only:"
    say "   'csrutil disable' from the Recovery system)."
    if [ "$IS_ARM64" = 1 ]; then
        say ""
        say "2. Apple silicon: the startup security policy (Reduced Security, user-managed kexts; see above)."
    fi
    say ""
    say "The kernel's own reason is in the system log, e.g."
    say "   log show --last 5m | grep -i -e tunnel -e kext"
}

explain_pending() {
    local step=1 developer=${DEVELOPER:-the developer who signed this build}
    say ""
    if uses_kmutil; then
        say "tunnel.kext $BUNDLE_VERSION is installed, but macOS does not load it yet: it waits for your"
        say "approval and a restart. The bundle ($KEXT_DEST) and the LaunchDaemon"
        say "($DAEMON_PLIST) stay in place for that. What to do:"
    else
        say "tunnel.kext $BUNDLE_VERSION is installed, but macOS does not load it yet: it waits for your"
        say "approval. The bundle ($KEXT_DEST) and the LaunchDaemon ($DAEMON_PLIST)"
        say "stay in place. What to do:"
    fi
    if [ "$IS_ARM64" = 1 ]; then
        say "  $step. If not done yet: Reduced Security with user-managed kexts (the steps above)."
        step=$((step + 1))
    fi
    say "  $step. Open $(settings_pane). Near the bottom it says that system software from"
    say "     $developer was blocked from loading. Click Allow with your own mouse or"
    say "     trackpad: macOS ignores clicks sent through Screen Sharing, VNC, remote-control tools or scripts."
    say "     The button shows for 30 minutes after a blocked load; to bring it back, run this script again."
    step=$((step + 1))
    if uses_kmutil; then
        say "  $step. Restart the Mac (macOS offers it after Allow). macOS adds tunnel.kext to its auxiliary"
        say "     kernel collection only while restarting. If you had already clicked Allow, just restart."
        step=$((step + 1))
        say "  $step. After the restart the LaunchDaemon loads tunnel.kext. Check with: scripts/status.sh"
    else
        say "  $step. That is all: on macOS 10.13-10.15 an approved kext loads at once, no restart."
        step=$((step + 1))
        say "  $step. Check with: scripts/status.sh"
    fi
    say "     Then prove it works on this Mac: sudo scripts/selftest.sh"
    say "If the Allow button does nothing or is missing, see the README ('Install on a Mac'): an"
    say "organisation can pre-approve the Team ID ${TEAM_ID:-of the signature} with MDM (Kernel Extension Policy)"
    say "or, on an Intel Mac, from Recovery with: spctl kext-consent add ${TEAM_ID:-TEAMID}"
    say ""
    say "Exit status $EXIT_PENDING: installed; approval or restart pending."
}

if [ "$resume" = 1 ]; then
    say "tunnel.kext $BUNDLE_VERSION is already installed at $KEXT_DEST (the same bundle): checking that it is loaded."
elif [ "$in_place" = 1 ]; then
    say "Installing tunnel.kext $BUNDLE_VERSION ($BUNDLE_ID) on macOS $MACOS ($ARCH), in place at $KEXT_DEST"
    run touch "$EXT_DIR"
else
    say "Installing tunnel.kext $BUNDLE_VERSION ($BUNDLE_ID) on macOS $MACOS ($ARCH) from $bundle"
    run cp -R "$bundle" "$KEXT_DEST" || die "could not copy $bundle to $KEXT_DEST. Nothing was changed."
    copied=1
    if ! run chown -R root:wheel "$KEXT_DEST" || ! run chmod -R go-w "$KEXT_DEST"; then
        rollback
        die "could not set root:wheel ownership and remove group/other write on $KEXT_DEST." \
            "Removed the copy again."
    fi
    # kextcache(8): tells macOS that /Library/Extensions changed.
    run touch "$EXT_DIR"
fi

# The LaunchDaemon for this macOS (rewritten when it differs, e.g. after an upgrade to macOS 11).
daemon_xml=$(daemon_plist_xml)
daemon_words=$(daemon_program | tr '\n' ' ')
daemon_words=${daemon_words% }
daemon_changed=0
if [ ! -f "$DAEMON_PLIST" ] || [ "$(cat "$DAEMON_PLIST")" != "$daemon_xml" ]; then
    daemon_changed=1
    if [ "$DRY_RUN" = 1 ]; then
        say "would write $DAEMON_PLIST, which runs at boot: $daemon_words"
    else
        say "+ write $DAEMON_PLIST (runs at boot: $daemon_words)"
        if ! printf '%s\n' "$daemon_xml" >"$DAEMON_PLIST" || ! run chown root:wheel "$DAEMON_PLIST" ||
            ! run chmod 644 "$DAEMON_PLIST"; then
            rollback
            die "could not write $DAEMON_PLIST." "$(what_remains)"
        fi
    fi
fi

# register_daemon: tells launchd about the job now (it would otherwise read it at the next boot).
# Its RunAtLoad load of an already loaded kext, or of one still waiting for approval, changes nothing.
register_daemon() {
    read_daemon_state
    if [ "$DAEMON_KNOWN" = 1 ] && [ "$daemon_changed" = 0 ]; then
        return 0
    fi
    [ "$DAEMON_KNOWN" = 1 ] && run launchctl bootout "system/$DAEMON_LABEL" 2>/dev/null
    run launchctl bootstrap system "$DAEMON_PLIST" ||
        warn "launchctl bootstrap failed; launchd reads $DAEMON_PLIST at the next boot anyway."
    if [ "$DAEMON_DISABLED" = 1 ]; then
        warn "the LaunchDaemon $DAEMON_LABEL is disabled (macOS 13+: switched off in System Settings > General > Login Items), so tunnel.kext will not load at boot. Turn it on there, or: sudo launchctl enable system/$DAEMON_LABEL"
    fi
    return 0
}

if [ "$ours_loaded" = 1 ]; then
    load_rc=0
    load_out="(already loaded: version $(loaded_version "$BUNDLE_ID"))"
    say "$load_out"
elif [ "$resume" = 1 ]; then
    load_out=$(load_kext_by_id 2>&1)
    load_rc=$?
    printf '%s\n' "$load_out"
else
    load_out=$(load_kext_by_path 2>&1)
    load_rc=$?
    printf '%s\n' "$load_out"
fi

if [ "$load_rc" != 0 ]; then
    if load_is_pending "$load_rc" "$load_out"; then
        register_daemon
        trap - INT TERM
        explain_pending
        exit "$EXIT_PENDING"
    fi
    explain_load_failure
    say ""
    if [ "$keep" = 1 ] || [ "$resume" = 1 ] || [ "$in_place" = 1 ]; then
        register_daemon
        say "Kept: $KEXT_DEST and $DAEMON_PLIST stay installed. To remove them: sudo scripts/uninstall.sh"
    else
        rollback
        what_remains
    fi
    exit 1
fi

if [ "$DRY_RUN" = 0 ] && [ "$ours_loaded" = 0 ]; then
    # /dev/tun0 counts only if it appeared with this load: none existed before (checked above).
    waited=0
    while [ ! -e "$DEV_DIR/tun0" ] && [ "$waited" -lt "${TUNNEL_DEV_WAIT:-5}" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if [ ! -e "$DEV_DIR/tun0" ]; then
        say "tunnel.kext loaded, but $DEV_DIR/tun0 did not appear: the kext's start routine failed to make its devices."
        say "The kernel log says why: log show --last 5m | grep -i tunnel"
        unload_kext || warn "could not unload it again; 'sudo scripts/uninstall.sh' retries."
        if [ "$resume" = 1 ] || [ "$in_place" = 1 ]; then
            rollback
            say "The bundle $KEXT_DEST was there before this run and stays."
        else
            rollback
            what_remains
        fi
        exit 1
    fi
elif [ "$DRY_RUN" = 0 ] && [ ! -e "$DEV_DIR/tun0" ]; then
    die "tunnel.kext is loaded but $DEV_DIR/tun0 does not exist: its devices are gone. Restart the Mac and run this again."
fi

register_daemon
trap - INT TERM
say ""
if [ "$DRY_RUN" = 1 ]; then
    say "Dry run: nothing was changed."
else
    say "Installed tunnel.kext $BUNDLE_VERSION: it is loaded, $DEV_DIR/tun0 ... appeared with it, and the"
    say "LaunchDaemon loads it at every boot. Prove it works on this Mac: sudo scripts/selftest.sh"
    say "Check with scripts/status.sh; remove with sudo scripts/uninstall.sh."
fi
