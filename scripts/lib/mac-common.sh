# shellcheck shell=bash disable=SC2034 # variables used by the scripts that source this file
# Shared by the Mac scripts (install.sh, uninstall.sh, status.sh, fix-permissions.sh, sign.sh).
# Written for the bash 3.2 that macOS ships: no associative arrays, no mapfile, no ${x,,}.
#
# Test hooks (never needed on a real Mac):
#   TUNNEL_ROOT       prefix for every system path (/Library/Extensions, /Library/LaunchDaemons,
#                     /Library/Logs, /dev). Empty (the default) means the real system.
#   TUNNEL_OWNER_IDS  numeric uid:gid that counts as "root:wheel" when checking ownership (default 0:0).
#   TUNNEL_DEV_WAIT   seconds install.sh waits for /dev/tun0 after loading (default 5).
# The macOS commands (kextload, kmutil, launchctl, sw_vers, ...) are looked up on PATH, so tests
# put logging stubs first on PATH.

BUNDLE_ID=org.tunnelkext.tunnel
KEXT_NAME=tunnel.kext
# The older tun driver (tuntaposx) also makes /dev/tunN; both cannot be loaded at once.
LEGACY_TUN_ID=net.sf.tuntaposx.tun

ROOT=${TUNNEL_ROOT:-}
EXT_DIR=$ROOT/Library/Extensions
KEXT_DEST=$EXT_DIR/$KEXT_NAME
DAEMON_DIR=$ROOT/Library/LaunchDaemons
DAEMON_PLIST=$DAEMON_DIR/$BUNDLE_ID.plist
DAEMON_LOG=$ROOT/Library/Logs/$BUNDLE_ID.log
DEV_DIR=$ROOT/dev

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
    [ "$KERNEL" = Darwin ] || return 0
    # uname -m says x86_64 under Rosetta; hw.optional.arm64 tells the truth (absent on Intel).
    if [ "$ARCH" = arm64 ] || [ "$(sysctl -n hw.optional.arm64 2>/dev/null)" = 1 ]; then
        IS_ARM64=1
    fi
    MACOS=$(sw_vers -productVersion 2>/dev/null)
    case $MACOS in
    [0-9]*.[0-9]* | [0-9]*) ;;
    *) die "could not read the macOS version (sw_vers -productVersion printed '$MACOS')" ;;
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

# uses_kmutil: true on macOS 11 and later, where kmutil replaces kextload/kextunload/kextstat.
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

# load_kext / unload_kext: kextload/kextunload on 10.13-10.15, kmutil on 11+.
load_kext() {
    if uses_kmutil; then
        run kmutil load -p "$KEXT_DEST"
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
     kmutil links the kext into the auxiliary kernel collection at boot.
An unsigned or ad-hoc signed build also needs Permissive Security (SIP off).
STEPS
}

# verify_bundle PATH: checks Info.plist keys, the executable and its architecture.
# Sets BUNDLE_VERSION and BUNDLE_EXEC. Dies with every problem found.
verify_bundle() {
    local b=$1 xml problems="" id exe kind
    [ -e "$b" ] || die "no bundle at $b." \
        "Build it first (scripts/build.sh writes target/tunnel.kext) or pass the bundle's path."
    [ -d "$b" ] || die "$b is not a directory: a kext is a bundle directory (tunnel.kext/Contents/...)."
    [ -f "$b/Contents/Info.plist" ] || die "$b is not a kext bundle: $b/Contents/Info.plist is missing."
    xml=$(mktemp "${TMPDIR:-/tmp}/tunnel-plist.XXXXXX") || die "cannot create a temporary file"
    plist_xml "$b/Contents/Info.plist" >"$xml"
    id=$(plist_string "$xml" CFBundleIdentifier)
    [ "$id" = "$BUNDLE_ID" ] || problems="${problems}CFBundleIdentifier is '$id', expected '$BUNDLE_ID'
"
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
