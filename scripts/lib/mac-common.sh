# shellcheck shell=bash disable=SC2034 # variables used by the scripts that source this file
# Shared by the Mac scripts (install.sh, uninstall.sh, status.sh, fix-permissions.sh, sign.sh).
# Written for the bash 3.2 that macOS ships: no associative arrays, no mapfile, no ${x,,}.
#
# Test hooks (never needed on a real Mac):
#   TUNNEL_ROOT       prefix for every system path (/Library/Extensions, /Library/LaunchDaemons,
#                     /Library/StagedExtensions, /Library/Logs, /Applications, /dev). Empty (the
#                     default) means the real system.
#   TUNNEL_OWNER_IDS  numeric uid:gid that counts as "root:wheel" when checking ownership (default 0:0).
#   TUNNEL_DEV_WAIT   seconds install.sh waits for /dev/tun0 after loading (default 5).
# The macOS commands (kextload, kmutil, launchctl, sw_vers, ...) are looked up on PATH, so tests
# put logging stubs first on PATH (tests/mac-scripts/fake-mac.sh).
#
# Sources for the macOS behaviour the scripts rely on (see also the README, "Install on a Mac"):
#   TN2459 "User-Approved Kernel Extension Loading" and kext_tools kextload_main.h: a blocked
#     kextload exits 27 (kOSKextReturnSystemPolicy); on 10.13-10.15 an approved kext loads at once.
#   Apple Platform Deployment, "Kernel extensions in macOS", and support.apple.com/102026
#     (HT211860): on 11+ a new or changed kext needs approval and a restart, which rebuilds the
#     auxiliary kernel collection; MDM's Kernel Extension Policy can pre-approve.
#   VirtualBox's LaunchDaemon script: on 11+ load by bundle id (kmutil load -b), never by path.
#   Tunnelblick's installer: touch /Library/Extensions after changing kexts (kextcache(8)).

KEXT_NAME=tunnel.kext
# Other drivers that make /dev/tunN and tunN, or /dev/tapN and tapN (this kext makes both):
# tuntaposx (net.sf.tuntaposx.tun, .tap), Tunnelblick's copies (net.tunnelblick.tun, .tap) and
# the identifiers both used before (foo.tun, foo.tap). Two such drivers cannot be loaded at once:
# both claim the same device and interface names (the second's devfs_make_node fails).
OTHER_TUN_IDS="net.sf.tuntaposx.tun net.tunnelblick.tun foo.tun net.sf.tuntaposx.tap net.tunnelblick.tap foo.tap"
# install.sh's exit status when the kext is installed but macOS waits for the user's approval or
# for a restart (documented in install.sh and the README).
EXIT_PENDING=3

ROOT=${TUNNEL_ROOT:-}
EXT_DIR=$ROOT/Library/Extensions
KEXT_DEST=$EXT_DIR/$KEXT_NAME
# Where macOS keeps its own SIP-protected copy of a kext it has been asked to load (10.13+).
STAGED_DEST=$ROOT/Library/StagedExtensions/Library/Extensions/$KEXT_NAME
DAEMON_DIR=$ROOT/Library/LaunchDaemons
APPS_DIR=$ROOT/Applications
DEV_DIR=$ROOT/dev
MAC_COMMON_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_INFO_PLIST=$MAC_COMMON_DIR/../../Info.plist

# kextload, kextunload and kextstat live in /sbin or /usr/sbin; sudo normally has them on PATH.
# Appended, so that anything earlier on PATH (test stubs) wins.
PATH=$PATH:/usr/sbin:/sbin
export PATH

DRY_RUN=0

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
# die MESSAGE...: prints each argument as one line on stderr and exits 1.
die() {
    printf '%s: %s\n' "$PROG" "$1" >&2
    shift
    for line in "$@"; do printf '  %s\n' "$line" >&2; done
    exit 1
}
usage_error() {
    printf '%s: %s\n' "$PROG" "$1" >&2
    printf '%s\n' "$USAGE" >&2
    exit 2
}

# run CMD ARGS...: a command that changes the system. Printed, and only printed under --dry-run.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        say "would run: $*"
        return 0
    fi
    say "+ $*"
    "$@"
}

# --- the platform -------------------------------------------------------------------------------

# read_platform: sets KERNEL, ARCH, IS_ARM64 (1 on Apple silicon, also under Rosetta), MACOS,
# MACOS_MAJOR, MACOS_MINOR, MACOS_PATCH. Only KERNEL is set on a non-Mac.
read_platform() {
    KERNEL=$(uname -s 2>/dev/null || echo unknown)
    ARCH=$(uname -m 2>/dev/null || echo unknown)
    IS_ARM64=0
    MACOS=""
    MACOS_NOTE=""
    [ "$KERNEL" = Darwin ] || return 0
    # uname -m says x86_64 under Rosetta; hw.optional.arm64 tells the truth (absent on Intel).
    if [ "$ARCH" = arm64 ] || [ "$(sysctl -n hw.optional.arm64 2>/dev/null)" = 1 ]; then
        IS_ARM64=1
    fi
    # SYSTEM_VERSION_COMPAT=1 in the caller's environment makes sw_vers on macOS 11+ say 10.16.
    MACOS=$(SYSTEM_VERSION_COMPAT=0 sw_vers -productVersion 2>/dev/null)
    case $MACOS in
    [0-9]*.[0-9]* | [0-9]*) ;;
    *) die "could not read the macOS version (sw_vers -productVersion printed '$MACOS')" ;;
    esac
    case $MACOS in
    10.16 | 10.16.*)
        # Still the compatibility answer: the kernel's release says which macOS this is (Darwin
        # 20 = macOS 11, 21 = 12, ...).
        local darwin
        darwin=$(uname -r 2>/dev/null)
        darwin=${darwin%%.*}
        case $darwin in
        2[0-9] | [3-9][0-9]) MACOS="$((darwin - 9)).0" ;;
        *) MACOS=11.0 ;;
        esac
        MACOS_NOTE="sw_vers reported 10.16, the compatibility version (SYSTEM_VERSION_COMPAT); this is macOS $MACOS or later"
        ;;
    esac
    MACOS_MAJOR=${MACOS%%.*}
    local rest=${MACOS#"$MACOS_MAJOR"}
    rest=${rest#.}
    MACOS_MINOR=${rest%%.*}
    MACOS_MINOR=${MACOS_MINOR:-0}
    rest=${rest#"$MACOS_MINOR"}
    rest=${rest#.}
    MACOS_PATCH=${rest%%.*}
    MACOS_PATCH=${MACOS_PATCH:-0}
    case $MACOS_MAJOR$MACOS_MINOR$MACOS_PATCH in
    *[!0-9]*) die "could not read the macOS version (sw_vers -productVersion printed '$MACOS')" ;;
    esac
}

require_mac() {
    [ "$KERNEL" = Darwin ] && return 0
    die "this is $KERNEL, not macOS: $PROG manages a macOS kernel extension." \
        "On Linux, scripts/build.sh builds target/tunnel.kext and scripts/test.sh tests it; copy the bundle to a Mac to install it."
}

# uses_kmutil: true on macOS 11 and later, where kmutil replaces kextload/kextunload/kextstat and
# a new or changed kext needs the user's approval and a restart before it can load.
uses_kmutil() { [ "$MACOS_MAJOR" -ge 11 ]; }

# needs_notarization: true on 10.14.5 and later.
needs_notarization() {
    [ "$MACOS_MAJOR" -ge 11 ] && return 0
    [ "$MACOS_MAJOR" -eq 10 ] || return 1
    [ "$MACOS_MINOR" -gt 14 ] && return 0
    [ "$MACOS_MINOR" -eq 14 ] && [ "$MACOS_PATCH" -ge 5 ]
}

require_root() {
    [ "$(id -u)" = 0 ] && return 0
    die "this needs root: run it with sudo (sudo $0 ...), or add --dry-run to see what it would do."
}

# settings_pane: where the Allow button is on this macOS.
settings_pane() {
    if [ "$MACOS_MAJOR" -ge 13 ]; then
        echo "System Settings > Privacy & Security"
    else
        echo "System Preferences > Security & Privacy > General"
    fi
}

# read_sip: sets SIP to on, off or unknown, for what matters here: whether kext signatures are
# enforced. "csrutil status" says enabled, disabled, or "unknown (Custom Configuration)" followed
# by one line per protection, "Kext Signing" among them.
read_sip() {
    SIP=unknown
    SIP_TEXT="csrutil is not available"
    command -v csrutil >/dev/null 2>&1 || return 0
    local out
    out=$(csrutil status 2>/dev/null)
    SIP_TEXT=$(printf '%s\n' "$out" | head -n 1)
    case $out in
    *"Kext Signing: disabled"*) SIP=off ;;
    *"Kext Signing: enabled"*) SIP=on ;;
    *"status: disabled"*) SIP=off ;;
    *"status: enabled"*) SIP=on ;;
    esac
}

# read_signature BUNDLE: sets SIGNATURE (unsigned, ad-hoc, developer-id, other, unknown),
# SIGNATURE_WORDS, TEAM_ID (the Team Identifier approvals are recorded under, or empty) and
# DEVELOPER (the name the approval pane shows, "Name (TEAMID)", or empty).
read_signature() {
    SIGNATURE=unknown
    TEAM_ID=""
    DEVELOPER=""
    if command -v codesign >/dev/null 2>&1; then
        local out rc
        out=$(codesign -d --verbose=2 "$1" 2>&1)
        rc=$?
        case $out in
        *"not signed"*) SIGNATURE=unsigned ;;
        *Signature=adhoc*) SIGNATURE=ad-hoc ;;
        *"Authority=Developer ID Application"*) SIGNATURE=developer-id ;;
        *) if [ "$rc" -ne 0 ]; then SIGNATURE=unsigned; else SIGNATURE=other; fi ;;
        esac
        TEAM_ID=$(printf '%s\n' "$out" | sed -n 's/^TeamIdentifier=//p' | head -n 1)
        [ "$TEAM_ID" = "not set" ] && TEAM_ID=""
        DEVELOPER=$(printf '%s\n' "$out" | sed -n 's/^Authority=Developer ID Application: //p' | head -n 1)
    fi
    case $SIGNATURE in
    unsigned) SIGNATURE_WORDS="unsigned" ;;
    ad-hoc) SIGNATURE_WORDS="ad-hoc signed" ;;
    developer-id) SIGNATURE_WORDS="signed with a Developer ID certificate" ;;
    other) SIGNATURE_WORDS="signed, but not with a Developer ID certificate" ;;
    *) SIGNATURE_WORDS="of unknown signature (codesign is not available)" ;;
    esac
}

# --- the bundle identifier ----------------------------------------------------------------------

# set_bundle_id ID: BUNDLE_ID and the names made from it. The identifier is written once, in
# Info.plist (CFBundleIdentifier); the LaunchDaemon's label and file name are that identifier.
set_bundle_id() {
    BUNDLE_ID=$1
    DAEMON_LABEL=$BUNDLE_ID
    DAEMON_PLIST=$DAEMON_DIR/$BUNDLE_ID.plist
    DAEMON_LOG=$ROOT/Library/Logs/$BUNDLE_ID.log
}

# bundle_id_of BUNDLE: the CFBundleIdentifier in BUNDLE/Contents/Info.plist, or nothing.
bundle_id_of() {
    local info=$1/Contents/Info.plist xml id
    [ -f "$info" ] || return 0
    xml=$(mktemp "${TMPDIR:-/tmp}/tunnel-plist.XXXXXX") || return 0
    plist_xml "$info" >"$xml" 2>/dev/null
    id=$(plist_string "$xml" CFBundleIdentifier)
    rm -f "$xml"
    printf '%s' "$id"
}

# valid_bundle_id ID: reverse-DNS characters only (it becomes a file name and a launchd label).
valid_bundle_id() {
    case $1 in
    "" | *[!A-Za-z0-9.-]* | .* | *.) return 1 ;;
    *.*) return 0 ;;
    *) return 1 ;;
    esac
}

# use_installed_bundle_id: BUNDLE_ID from the installed bundle, else from this checkout's
# Info.plist (uninstall.sh and status.sh also work after the bundle is gone).
use_installed_bundle_id() {
    local id
    id=$(bundle_id_of "$KEXT_DEST")
    if ! valid_bundle_id "$id"; then
        id=""
        if [ -f "$REPO_INFO_PLIST" ]; then
            id=$(plist_string "$REPO_INFO_PLIST" CFBundleIdentifier)
        fi
    fi
    valid_bundle_id "$id" || die "cannot tell tunnel.kext's bundle identifier: neither $KEXT_DEST nor $REPO_INFO_PLIST has a usable CFBundleIdentifier."
    set_bundle_id "$id"
}

# --- the kext's state ---------------------------------------------------------------------------

# loaded_line ID: the kextstat/kmutil line of the loaded kext ID, or nothing.
loaded_line() {
    if uses_kmutil; then
        # kextstat still exists (deprecated) on 11+: the fallback if this kmutil lacks -b.
        { kmutil showloaded -b "$1" 2>/dev/null || kextstat -l -b "$1" 2>/dev/null; } | grep -F " $1 " | head -n 1
    else
        kextstat -l -b "$1" 2>/dev/null | grep -F " $1 " | head -n 1
    fi
}

is_loaded() { [ -n "$(loaded_line "$1")" ]; }

# loaded_version ID: the version in the kext's loaded line, or nothing.
loaded_version() {
    loaded_line "$1" | sed -n "s/.* $1 (\([^)]*\)).*/\1/p"
}

# load_kext_by_path: the load that brings up the approval prompt for a kext macOS has not seen:
# kextload PATH on 10.13-10.15, kmutil load -p PATH on 11+.
load_kext_by_path() {
    if uses_kmutil; then
        run kmutil load -p "$KEXT_DEST"
    else
        run kextload "$KEXT_DEST"
    fi
}

# load_kext_by_id: on 11+, once the kext is in the auxiliary kernel collection, the only load that
# works: by bundle identifier (the path on disk is never what is loaded). kextload PATH on 10.x.
load_kext_by_id() {
    if uses_kmutil; then
        run kmutil load -b "$BUNDLE_ID"
    else
        run kextload "$KEXT_DEST"
    fi
}

unload_kext() {
    if uses_kmutil; then
        run kmutil unload -b "$BUNDLE_ID"
    else
        run kextunload -b "$BUNDLE_ID"
    fi
}

# load_is_pending RC OUTPUT: true when a failed load means "waiting for the user's approval or for
# a restart" rather than a real failure: kextload's exit 27 (system policy, TN2459), or kmutil's
# "not approved to load ... Please approve" (KMErrorDomain Code=27) and its restart messages.
load_is_pending() {
    [ "$1" = 27 ] && return 0
    case $2 in
    *"not approved"* | *"approve using"* | *"system policy prevents"* | *Code=27* | \
        *"restart is required"* | *"require a restart"* | *"requires a restart"* | *"reboot"*) return 0 ;;
    esac
    return 1
}

# dev_nodes: the /dev/tunN paths that exist, one per line, in unit order.
dev_nodes() {
    local n=0
    while [ "$n" -lt 256 ]; do
        [ -e "$DEV_DIR/tun$n" ] && printf '%s\n' "$DEV_DIR/tun$n"
        n=$((n + 1))
    done
}

# open_units: one line per open /dev/tunN: "PATH<TAB>COMMAND<TAB>PID<TAB>USER" (lsof field output).
# Without root, lsof sees only the caller's own processes.
open_units() {
    local node nodes
    nodes=$(dev_nodes)
    set --
    while IFS= read -r node; do
        [ -n "$node" ] && set -- "$@" "$node"
    done <<LIST
$nodes
LIST
    [ $# -gt 0 ] || return 0
    lsof -F pcLn "$@" 2>/dev/null |
        awk '/^p/ { pid = substr($0, 2); cmd = "?"; user = "?" }
             /^c/ { cmd = substr($0, 2) }
             /^L/ { user = substr($0, 2) }
             /^n/ { printf "%s\t%s\t%s\t%s\n", substr($0, 2), cmd, pid, user }'
}

# describe_open_units: the lines of open_units in words.
describe_open_units() {
    printf '%s\n' "$1" | awk -F '\t' 'NF >= 4 { printf "%s is open by %s (pid %s, user %s)\n", $1, $2, $3, $4 }'
}

# --- other tun drivers --------------------------------------------------------------------------

# other_tun_drivers: one line per other tun driver found, "ID<TAB>loaded|installed<TAB>WHERE":
# loaded ones (kextstat/kmutil), and bundles with one of their identifiers in /Library/Extensions,
# /System/Library/Extensions or inside Tunnelblick (which loads its own copy when a
# configuration uses a tun device).
other_tun_drivers() {
    local id b bid
    for id in $OTHER_TUN_IDS; do
        if is_loaded "$id"; then
            printf '%s\tloaded\tthe kernel (version %s)\n' "$id" "$(loaded_version "$id")"
        fi
    done
    for b in "$EXT_DIR"/*.kext "$ROOT"/System/Library/Extensions/tun.kext \
        "$ROOT"/System/Library/Extensions/tap.kext "$APPS_DIR"/Tunnelblick*.app/Contents/Resources/*.kext; do
        [ -d "$b" ] || continue
        [ "$b" = "$KEXT_DEST" ] && continue
        bid=$(bundle_id_of "$b")
        case " $OTHER_TUN_IDS " in
        *" $bid "*) printf '%s\tinstalled\t%s\n' "$bid" "${b#"$ROOT"}" ;;
        esac
    done
}

# describe_other_drivers LINES: the drivers of other_tun_drivers in words, with how to remove each.
describe_other_drivers() {
    local id state where unload
    if uses_kmutil; then unload="kmutil unload -b"; else unload="kextunload -b"; fi
    while IFS="$(printf '\t')" read -r id state where; do
        [ -n "$id" ] || continue
        case $id in
        net.tunnelblick.tun) say "- Tunnelblick's tun driver ($id) is $state in $where." ;;
        net.sf.tuntaposx.tun) say "- The tuntaposx tun driver ($id) is $state in $where." ;;
        net.tunnelblick.tap) say "- Tunnelblick's tap driver ($id) is $state in $where." ;;
        net.sf.tuntaposx.tap) say "- The tuntaposx tap driver ($id) is $state in $where." ;;
        foo.tap) say "- An old tuntaposx or Tunnelblick tap driver ($id) is $state in $where." ;;
        *) say "- An old tuntaposx or Tunnelblick tun driver ($id) is $state in $where." ;;
        esac
        if [ "$state" = loaded ]; then
            say "  Disconnect the VPN using it, then unload it: sudo $unload $id"
        fi
        case $where in
        /Applications/*)
            say "  Tunnelblick loads this copy by itself whenever a configuration uses a tun device. Quit"
            say "  Tunnelblick and remove it with its uninstaller (https://tunnelblick.net/cUninstall.html)."
            ;;
        /*.kext)
            say "  Remove it: sudo rm -rf '$where'"
            case $id in
            net.tunnelblick.tun | net.tunnelblick.tap) say "  (Tunnelblick reinstalls it unless Tunnelblick is uninstalled too: https://tunnelblick.net/cUninstall.html)" ;;
            *) say "  and its start-up items: sudo rm -f /Library/LaunchDaemons/net.sf.tuntaposx.*.plist; sudo rm -rf /Library/StartupItems/tun /Library/StartupItems/tap" ;;
            esac
            say "  then: sudo touch /Library/Extensions"
            ;;
        esac
    done <<LINES
$1
LINES
}

# --- the LaunchDaemon ---------------------------------------------------------------------------

# daemon_program: the boot-time load for this macOS, one argument per line. No shell: launchd runs
# the loader itself, so Login Items (13+) names the real program, and status.sh can ask launchd.
daemon_program() {
    if uses_kmutil; then
        printf '%s\n' /usr/bin/kmutil load -b "$BUNDLE_ID"
    else
        printf '%s\n' /sbin/kextload "/Library/Extensions/$KEXT_NAME"
    fi
}

# daemon_plist_xml: the LaunchDaemon property list for this macOS.
daemon_plist_xml() {
    local arg
    cat <<HEAD
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Loads $KEXT_NAME at boot. Written by scripts/install.sh for macOS $MACOS_MAJOR; removed by
     scripts/uninstall.sh. The label is the kext's bundle identifier. -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>$DAEMON_LABEL</string>
	<key>ProgramArguments</key>
	<array>
HEAD
    daemon_program | while IFS= read -r arg; do
        printf '\t\t<string>%s</string>\n' "$arg"
    done
    cat <<TAIL
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>LaunchOnlyOnce</key>
	<true/>
	<key>StandardOutPath</key>
	<string>/Library/Logs/$BUNDLE_ID.log</string>
	<key>StandardErrorPath</key>
	<string>/Library/Logs/$BUNDLE_ID.log</string>
</dict>
</plist>
TAIL
}

# daemon_plist_program FILE: the ProgramArguments of an installed LaunchDaemon, space-separated.
daemon_plist_program() {
    plist_xml "$1" 2>/dev/null | awk '
        /<key>ProgramArguments<\/key>/ { inargs = 1; next }
        inargs && /<\/array>/ { exit }
        inargs && match($0, /<string>[^<]*<\/string>/) { printf "%s%s", sep, substr($0, RSTART + 8, RLENGTH - 17); sep = " " }'
}

# read_daemon_state: what launchd says about the job. Sets DAEMON_KNOWN (1 if launchd has it),
# DAEMON_DISABLED (1 if it is disabled: "launchctl disable", or switched off in System Settings >
# General > Login Items on 13+) and DAEMON_LAST_EXIT (its last exit status, or empty).
read_daemon_state() {
    local out
    DAEMON_KNOWN=0
    DAEMON_DISABLED=0
    DAEMON_LAST_EXIT=""
    if out=$(launchctl print "system/$DAEMON_LABEL" 2>/dev/null); then
        DAEMON_KNOWN=1
        DAEMON_LAST_EXIT=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*last exit code = //p' | head -n 1)
    fi
    # "label" => disabled (13+) or => true (older): disabled.
    if launchctl print-disabled system 2>/dev/null |
        grep -qE "\"$(printf '%s' "$DAEMON_LABEL" | sed 's/\./\\./g')\" => (disabled|true)"; then
        DAEMON_DISABLED=1
    fi
}

# --- the bundle ---------------------------------------------------------------------------------

# plist_xml FILE: prints the property list as XML (converting a binary one with plutil on a Mac).
plist_xml() {
    if [ "$(head -c 8 "$1" 2>/dev/null)" = bplist00 ]; then
        command -v plutil >/dev/null 2>&1 || die "$1 is a binary property list and plutil is not available to read it."
        plutil -convert xml1 -o - "$1"
    else
        cat "$1"
    fi
}

# plist_string XML_FILE KEY: the <string> value of the first KEY, or nothing.
plist_string() {
    awk -v key="$2" '
        function value(s) {
            if (match(s, /<string>[^<]*<\/string>/)) { print substr(s, RSTART + 8, RLENGTH - 17); return 1 }
            if (s ~ /<[a-z]/) return 1
            return 0
        }
        found { if (value($0)) exit; next }
        {
            tag = "<key>" key "</key>"
            i = index($0, tag)
            if (i) { found = 1; if (value(substr($0, i + length(tag)))) exit }
        }' "$1"
}

# plist_dict_nonempty XML_FILE KEY: true when KEY holds a <dict> with at least one key.
plist_dict_nonempty() {
    awk -v key="$2" '
        found == 1 && /<dict\/>/ { exit 1 }
        found == 1 && /<dict>/ { found = 2 }
        found == 2 && /<\/dict>/ { exit 1 }
        found == 2 && /<key>/ { ok = 1; exit 0 }
        found == 0 && index($0, "<key>" key "</key>") { found = 1 }
        END { exit ok ? 0 : 1 }' "$1"
}

# macho_kind FILE [OFFSET]: "x86_64-kext" for an x86_64 MH_KEXT_BUNDLE, "arm64e-kext" for an
# arm64e one (cpusubtype 0xC0000002, the kernel ABI), the kinds of its slices separated by spaces
# for a universal (fat) file, otherwise a description of what it is. Reads the header bytes with
# od, so that it works without file(1) or a Mac.
macho_kind() {
    local f=$1 at=${2:-0} h magic cpu sub ftype n i arch off kinds=""
    h=$(od -An -tx1 -j "$at" -N16 "$f" 2>/dev/null | tr -d ' \n')
    magic=${h:0:8}
    cpu=${h:8:8}
    sub=${h:16:8}
    ftype=${h:24:8}
    case $magic in
    cffaedfe) ;;
    cafebabe)
        [ "$at" = 0 ] || { echo "a universal binary nested in a universal binary"; return; }
        n=$((16#${h:8:8}))
        for ((i = 0; i < n && i < 8; i++)); do
            arch=$(od -An -tx1 -j $((8 + 20 * i)) -N20 "$f" | tr -d ' \n')
            off=$((16#${arch:16:8}))
            [ "$off" -gt 0 ] || { echo "a universal binary with a slice at offset 0"; return; }
            kinds="$kinds${kinds:+ }$(macho_kind "$f" "$off" | tr ' ' '_')"
        done
        echo "$kinds"
        return
        ;;
    feedfacf | feedface | cefaedfe) echo "a Mach-O of a byte order or width the kernel cannot load"; return ;;
    *) echo "not a Mach-O file (first bytes: ${h:0:8})"; return ;;
    esac
    if [ "$ftype" != 0b000000 ]; then
        echo "a Mach-O of file type 0x${ftype:0:2}, not a kext executable (MH_KEXT_BUNDLE, 0xb)"
        return
    fi
    case $cpu$sub in
    0700000103000000) echo x86_64-kext ;;
    0c000001020000c0) echo arm64e-kext ;;
    0c000001*) echo "an arm64 Mach-O of cpusubtype 0x${sub:6:2}${sub:4:2}${sub:2:2}${sub:0:2}, not arm64e with the kernel ABI (0xc0000002)" ;;
    *) echo "a Mach-O for an unknown CPU (cputype bytes $cpu)" ;;
    esac
}

# apple_silicon_steps: what an Apple-silicon Mac needs before it loads a third-party kext.
apple_silicon_steps() {
    cat <<'STEPS'
On Apple silicon a third-party kext loads only after these steps (once per Mac):
  1. Shut down; hold the power button until "Loading startup options" appears; choose Options.
  2. Utilities > Startup Security Utility: select the disk, Security Policy, choose
     "Reduced Security" and tick "Allow user management of kernel extensions from identified
     developers". Restart.
  3. After installing, approve the developer in System Settings > Privacy & Security
     (macOS 12 and earlier: System Preferences > Security & Privacy), then restart again:
     macOS links the kext into the auxiliary kernel collection while restarting.
Until step 2 is done, Privacy & Security shows "Enable system extensions..." instead of Allow.
An unsigned or ad-hoc signed build also needs Permissive Security (SIP off).
STEPS
}

# verify_bundle PATH: checks Info.plist keys, the executable and its architecture.
# Sets BUNDLE_VERSION, BUNDLE_EXEC and the bundle identifier (set_bundle_id, from the bundle's own
# Info.plist). Dies with every problem found.
verify_bundle() {
    local b=$1 xml problems="" id exe kind
    [ -e "$b" ] || die "no bundle at $b." \
        "Build it first (scripts/build.sh writes target/tunnel.kext) or pass the bundle's path."
    [ -d "$b" ] || die "$b is not a directory: a kext is a bundle directory (tunnel.kext/Contents/...)."
    [ -f "$b/Contents/Info.plist" ] || die "$b is not a kext bundle: $b/Contents/Info.plist is missing."
    xml=$(mktemp "${TMPDIR:-/tmp}/tunnel-plist.XXXXXX") || die "cannot create a temporary file"
    plist_xml "$b/Contents/Info.plist" >"$xml"
    id=$(plist_string "$xml" CFBundleIdentifier)
    if ! valid_bundle_id "$id"; then
        problems="${problems}CFBundleIdentifier is '$id', not a reverse-DNS identifier
"
    else
        case " $OTHER_TUN_IDS " in
        *" $id "*) problems="${problems}CFBundleIdentifier is '$id', another tun driver's identifier
" ;;
        *) set_bundle_id "$id" ;;
        esac
    fi
    [ "$(plist_string "$xml" CFBundlePackageType)" = KEXT ] ||
        problems="${problems}CFBundlePackageType is not KEXT
"
    BUNDLE_VERSION=$(plist_string "$xml" CFBundleVersion)
    [ -n "$BUNDLE_VERSION" ] || problems="${problems}CFBundleVersion is missing
"
    plist_dict_nonempty "$xml" OSBundleLibraries ||
        problems="${problems}OSBundleLibraries is missing or empty (the kernel needs the KPIs it links against)
"
    exe=$(plist_string "$xml" CFBundleExecutable)
    rm -f "$xml"
    BUNDLE_EXEC=""
    if [ -z "$exe" ]; then
        problems="${problems}CFBundleExecutable is missing
"
    elif [ ! -f "$b/Contents/MacOS/$exe" ]; then
        problems="${problems}the executable Contents/MacOS/$exe is missing
"
    else
        BUNDLE_EXEC=$b/Contents/MacOS/$exe
        kind=$(macho_kind "$BUNDLE_EXEC")
        local want=x86_64-kext
        [ "${IS_ARM64:-0}" = 1 ] && want=arm64e-kext
        case " $kind " in
        *" $want "*) ;;
        *" x86_64-kext "* | *" arm64e-kext "*)
            problems="${problems}Contents/MacOS/$exe has no ${want%-kext} slice (it has: $kind); this Mac needs ${want%-kext}. scripts/build.sh writes a universal bundle with both
" ;;
        *) problems="${problems}Contents/MacOS/$exe is $kind
" ;;
        esac
    fi
    if [ -n "$problems" ]; then
        printf '%s: %s is not a usable tunnel.kext:\n' "$PROG" "$b" >&2
        printf '%s' "$problems" | sed 's/^/  - /' >&2
        exit 1
    fi
}

# bad_ownership_or_modes PATH: every file under PATH that is not owned by root:wheel (0:0) or that
# group or others can write, one per line, as "owner PATH" or "mode PATH".
bad_ownership_or_modes() {
    local ids=${TUNNEL_OWNER_IDS:-0:0}
    find "$1" \( ! -uid "${ids%%:*}" -o ! -gid "${ids#*:}" \) -exec printf 'owner %s\n' {} + 2>/dev/null
    find "$1" ! -type l \( -perm -020 -o -perm -002 \) -exec printf 'mode %s\n' {} + 2>/dev/null
}
