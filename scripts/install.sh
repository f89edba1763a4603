#!/usr/bin/env bash
# Installs tunnel.kext on a Mac (Intel: macOS 10.13 or later; Apple silicon: macOS 11 or later) and arranges for it to load at boot.
#
#   sudo scripts/install.sh [--dry-run] [--keep-on-failure] [BUNDLE]
#
# BUNDLE defaults to target/tunnel.kext (what scripts/build.sh writes). Steps: refuse on a non-Mac,
# on Apple silicon and on macOS older than 10.13; check the bundle (Info.plist keys, executable,
# x86_64 or arm64e slice for this Mac); copy it to /Library/Extensions with root:wheel ownership and no group/other
# write bit; load it (kextload on 10.13-10.15, kmutil on 11+); check that /dev/tun0 appeared;
# install the LaunchDaemon that loads it at every boot. If loading fails, it explains the usual
# causes and removes what it copied, so the system is left as it was; --keep-on-failure keeps
# the kext and the LaunchDaemon in place instead (the macOS 11+ approval needs a restart).
# --dry-run checks everything and prints the commands that would change the system.
set -u
PROG=install.sh
USAGE="usage: sudo scripts/install.sh [--dry-run] [--keep-on-failure] [BUNDLE]  (default BUNDLE: target/tunnel.kext)"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/mac-common.sh
. "$here/lib/mac-common.sh"

bundle=""
keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) DRY_RUN=1 ;;
    --keep-on-failure) keep=1 ;;
    -h | --help) say "$USAGE"; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
        [ -z "$bundle" ] || usage_error "give one bundle path, not '$bundle' and '$1'"
        bundle=$1
        ;;
    esac
    shift
done
[ -n "$bundle" ] || bundle=$(cd "$here/.." && pwd)/target/$KEXT_NAME
bundle=${bundle%/}
daemon_src=$here/launchd/$BUNDLE_ID.plist

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
if [ "$IS_ARM64" = 1 ]; then
    rosetta=""
    [ "$ARCH" != arm64 ] && rosetta=" (this shell runs under Rosetta; the kernel is arm64e)"
    echo "This Mac has Apple silicon$rosetta: the bundle's arm64e slice will be used."
    apple_silicon_steps
fi
[ -f "$daemon_src" ] || die "the LaunchDaemon property list $daemon_src is missing from this checkout."
[ -d "$EXT_DIR" ] || die "$EXT_DIR does not exist: is this really macOS?"
[ -d "$DAEMON_DIR" ] || die "$DAEMON_DIR does not exist: is this really macOS?"

if [ -e "$KEXT_DEST" ]; then
    die "tunnel.kext is already installed at $KEXT_DEST." \
        "To replace it, run 'sudo scripts/uninstall.sh' first (it unloads the old version safely), then install again."
fi
if line=$(loaded_line "$BUNDLE_ID") && [ -n "$line" ]; then
    die "a tunnel.kext ($BUNDLE_ID) is already loaded, from somewhere other than $KEXT_DEST." \
        "Unload it first: sudo scripts/uninstall.sh"
fi
if is_loaded "$LEGACY_TUN_ID"; then
    die "the older tun.kext ($LEGACY_TUN_ID, from tuntaposx) is loaded: it also creates /dev/tunN, so both cannot be loaded." \
        "Close the programs using it, unload it with 'sudo kextunload -b $LEGACY_TUN_ID', remove its" \
        "/Library/Extensions/tun.kext and its startup item or LaunchDaemon, then run this again."
fi

# Which signature the bundle carries, and whether System Integrity Protection allows other ones.
signature=unknown
if command -v codesign >/dev/null 2>&1; then
    sig_out=$(codesign -d --verbose=2 "$bundle" 2>&1)
    sig_rc=$?
    case $sig_out in
    *"not signed"*) signature=unsigned ;;
    *Signature=adhoc*) signature=ad-hoc ;;
    *"Authority=Developer ID Application"*) signature=developer-id ;;
    *) if [ "$sig_rc" -ne 0 ]; then signature=unsigned; else signature=other; fi ;;
    esac
fi
sip=unknown
if command -v csrutil >/dev/null 2>&1; then
    sip_out=$(csrutil status 2>/dev/null)
    case $sip_out in
    *"Kext Signing: disabled"* | *"status: disabled"*) sip=off ;;
    *"status: enabled"*) sip=on ;;
    esac
fi
case $signature in
unsigned) signature_words="unsigned" ;;
ad-hoc) signature_words="ad-hoc signed" ;;
developer-id) signature_words="signed with a Developer ID certificate" ;;
other) signature_words="signed, but not with a Developer ID certificate" ;;
*) signature_words="of unknown signature (codesign is not available)" ;;
esac
if [ "$sip" = on ] && [ "$signature" != developer-id ] && [ "$signature" != unknown ]; then
    die "this build of tunnel.kext is $signature_words and System Integrity Protection is on, so macOS would refuse to load it." \
        "Either sign it with a Developer ID certificate enabled for kexts (see scripts/sign.sh)," \
        "or, on a test machine only, turn SIP off: restart into Recovery, open Terminal, run 'csrutil disable', restart." \
        "Nothing was changed."
fi

# --- changes ------------------------------------------------------------------------------------
copied=0
rollback() {
    [ "$copied" = 1 ] || return 0
    run rm -rf "$KEXT_DEST"
    copied=0
}
trap 'rollback; exit 130' INT TERM

explain_load_failure() {
    local settings="System Preferences > Security & Privacy > General"
    [ "$MACOS_MAJOR" -ge 13 ] && settings="System Settings > Privacy & Security"
    say ""
    say "macOS did not load tunnel.kext. The usual causes, most likely first:"
    say ""
    say "1. Your approval is pending. Since macOS 10.13 a kext from a new developer stays blocked until"
    say "   you allow it: open $settings, click Allow next to the"
    say "   developer's name, then run this script again. The button shows for about 30 minutes after a"
    say "   blocked load; if it is gone, run the script again to bring it back."
    if uses_kmutil; then
        say "   On macOS 11 and later the approval also needs a restart: macOS adds the kext to its"
        say "   auxiliary kernel collection only while restarting. For that the kext must stay installed:"
        say "   run 'sudo scripts/install.sh --keep-on-failure', approve, restart; the LaunchDaemon then"
        say "   loads it at boot, and 'scripts/status.sh' shows whether it did."
    fi
    say ""
    say "2. The signature. This build is $signature_words; System Integrity Protection is $sip."
    if needs_notarization; then
        say "   macOS $MACOS loads a kext only if it is signed with a Developer ID certificate that Apple"
        say "   enabled for kexts and notarized by Apple (required since 10.14.5); see scripts/sign.sh."
    else
        say "   macOS $MACOS loads a kext only if it is signed with a Developer ID certificate that Apple"
        say "   enabled for kexts; see scripts/sign.sh."
    fi
    say "   Unsigned and ad-hoc signed test builds load only with SIP turned off (test machines only:"
    say "   'csrutil disable' from the Recovery system)."
    say ""
    say "3. Something else: the kernel's reason is in the system log, e.g."
    say "   log show --last 5m | grep -i -e tunnel -e kext"
}

say "Installing tunnel.kext $BUNDLE_VERSION on macOS $MACOS ($ARCH) from $bundle"
run cp -R "$bundle" "$KEXT_DEST" || die "could not copy $bundle to $KEXT_DEST. Nothing was changed."
copied=1
if ! run chown -R root:wheel "$KEXT_DEST" || ! run chmod -R go-w "$KEXT_DEST"; then
    rollback
    die "could not set root:wheel ownership and remove group/other write on $KEXT_DEST. Nothing was changed."
fi

install_daemon() {
    run cp "$daemon_src" "$DAEMON_PLIST" &&
        run chown root:wheel "$DAEMON_PLIST" &&
        run chmod 644 "$DAEMON_PLIST" || return 1
    # Registers the job now; it would otherwise start at the next boot. Its RunAtLoad load of an
    # already loaded kext does nothing.
    run launchctl bootstrap system "$DAEMON_PLIST" ||
        warn "launchctl bootstrap failed; the LaunchDaemon still loads tunnel.kext from the next boot on."
    return 0
}

if ! load_kext; then
    explain_load_failure
    if [ "$keep" = 1 ]; then
        install_daemon || warn "could not install $DAEMON_PLIST"
        say ""
        say "Kept as asked (--keep-on-failure): $KEXT_DEST and $DAEMON_PLIST stay installed."
        say "Approve, restart, then check with scripts/status.sh. To remove: sudo scripts/uninstall.sh"
    else
        say ""
        rollback
        say "Nothing was changed: the copy in $EXT_DIR was removed again."
    fi
    exit 1
fi

if [ "$DRY_RUN" = 0 ]; then
    waited=0
    while [ ! -e "$DEV_DIR/tun0" ] && [ "$waited" -lt "${TUNNEL_DEV_WAIT:-5}" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if [ ! -e "$DEV_DIR/tun0" ]; then
        say "tunnel.kext loaded, but $DEV_DIR/tun0 did not appear: the kext's start routine failed to make its devices."
        say "The kernel log says why: log show --last 5m | grep -i tunnel"
        unload_kext || warn "could not unload it again; 'sudo scripts/uninstall.sh' retries."
        rollback
        say "Nothing was changed: the copy in $EXT_DIR was removed again."
        exit 1
    fi
fi

if ! install_daemon; then
    warn "could not install $DAEMON_PLIST: tunnel.kext is loaded now but will not load at boot."
    exit 1
fi
trap - INT TERM
say ""
if [ "$DRY_RUN" = 1 ]; then
    say "Dry run: nothing was changed."
else
    say "Installed tunnel.kext $BUNDLE_VERSION: $DEV_DIR/tun0 ... are ready, and the LaunchDaemon loads it at every boot."
    say "Check with scripts/status.sh; remove with sudo scripts/uninstall.sh."
fi
