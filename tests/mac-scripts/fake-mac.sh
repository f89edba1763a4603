#!/usr/bin/env bash
# A pretend Mac for tests/suites/mac-scripts.sh: a state machine modelling how macOS treats a
# third-party kext. The suite links every macOS command the scripts use (kextload, kmutil,
# launchctl, sw_vers, uname, csrutil, codesign, ...) to this file, first on PATH, plus the user's
# own actions: fake-approve (clicking Allow) and fake-reboot (restarting). Each call appends
# "NAME ARGS..." to $FAKE_LOG. State lives in $FAKE_STATE and under $TUNNEL_ROOT (the fake file
# system: /Library/Extensions, /Library/StagedExtensions, /Library/LaunchDaemons, /dev).
#
# What it models (sources in scripts/lib/mac-common.sh and the README):
#   10.13-10.15  kextload of a kext whose Team ID is not approved: staged into
#                /Library/StagedExtensions, exit 27 "system policy prevents loading". fake-approve
#                records the Team ID and loads the blocked kext at once (TN2459). Later loads of any
#                bundle of that team load immediately; kextunload really unloads.
#   11 and later kmutil load of a bundle whose exact content is not approved: staged, Code=27 "not
#                approved to load. Please approve using System Settings." fake-approve records the
#                content; still not loadable ("restart is required") until fake-reboot links the
#                approved content into the auxiliary kernel collection (AuxKC). From then on it loads
#                by bundle id only (kmutil load -b); a load by path is refused. A changed bundle
#                needs approval and a restart again. kmutil unload leaves the kext running until
#                the next restart. kextload on 11+ behaves like kmutil load -p.
#   Apple silicon (FAKE_ARM64=1): with FAKE_SECURITY=full (the default) the pane offers "Enable
#                system extensions..." instead of Allow: fake-approve fails. FAKE_SECURITY=reduced is
#                Reduced Security with user-managed kexts.
#   Pre-approval (MDM Kernel Extension Policy, or spctl kext-consent in Recovery): FAKE_PREAPPROVED=1.
#                10.x then loads at once; 11+ still needs the restart that rebuilds the AuxKC.
#   SIP: FAKE_SIP=enabled|disabled|custom-kext-off|custom-kext-on ("unknown (Custom Configuration)"
#                with Kext Signing disabled or enabled). With kext signing enforced, a build that is
#                not Developer ID signed fails to load (not a pending approval).
#   SYSTEM_VERSION_COMPAT=1 in the caller's environment: sw_vers says 10.16 on 11+ (FAKE_SW_VERS_COMPAT=1:
#                whatever the environment says, for the scripts' fallback to uname -r).
#   Other tun drivers: FAKE_OTHER_LOADED="net.sf.tuntaposx.tun ..." are loaded (the suite also makes
#                their /dev/tunN); installed ones are bundles the suite puts in the fake file system.
#                While one is loaded, tunnel.kext's start fails (contract LD-4).
#   launchd: bootstrap runs the job's ProgramArguments at once (RunAtLoad), fake-reboot runs every
#                enabled LaunchDaemon; a job whose program is a shell is refused and recorded.
#                print / print-disabled / enable / disable answer from the state.
#   kmutil clear-staging: refused loudly and recorded (it wipes every vendor's staged kexts).
#
# Other knobs: FAKE_KERNEL (Darwin) FAKE_ARCH (x86_64) FAKE_MACOS (10.15.7) FAKE_UID (0)
#   FAKE_SIGNATURE (developer-id|adhoc|unsigned) FAKE_TEAM (ABCDE12345) FAKE_CLICK (real|synthetic)
#   FAKE_LOAD_MAKES_DEV (1) FAKE_UNLOAD_RC (0) FAKE_UNLOAD_STAYS (1 on 11+) FAKE_LOADED_VERSION (1.0.0)
#   FAKE_LSOF_FILE FAKE_IFCONFIG_DIR FAKE_LAUNCHCTL_RC (bootstrap) FAKE_RCODESIGN_RC FAKE_CHOWN_RC
set -u
name=$(basename "$0")
printf '%s\n' "$name${*:+ $*}" >>"${FAKE_LOG:?FAKE_LOG is not set}"
state=${FAKE_STATE:?FAKE_STATE is not set}
root=${TUNNEL_ROOT:?TUNNEL_ROOT is not set}
dev=$root/dev
bindir=${0%/*}
# The bundle identifier, from the repository's Info.plist (the suite passes it in FAKE_BUNDLE_ID).
id=${FAKE_BUNDLE_ID:-}
if [ -z "$id" ]; then
    repo=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
    id=$(sed -n '/<key>CFBundleIdentifier<\/key>/{n;s/.*<string>\(.*\)<\/string>.*/\1/p;}' "$repo/Info.plist")
fi
kext=$root/Library/Extensions/tunnel.kext
staged=$root/Library/StagedExtensions/Library/Extensions/tunnel.kext
macos=${FAKE_MACOS:-10.15.7}
major=${macos%%.*}
[ -d "$state" ] || mkdir -p "$state"

# content_hash DIR: what identifies a bundle's content (its files, names and bytes).
content_hash() {
    (cd "$1" 2>/dev/null && find . -type f | LC_ALL=C sort | while IFS= read -r f; do
        printf '%s\n' "$f"
        cat "$f"
    done) | md5sum | cut -c1-16
}
team() {
    case ${FAKE_SIGNATURE:-developer-id} in
    developer-id) echo "${FAKE_TEAM:-ABCDE12345}" ;;
    *) echo "unsigned" ;;
    esac
}
signing_enforced() {
    case ${FAKE_SIP:-enabled} in enabled | custom-kext-on) return 0 ;; esac
    return 1
}
make_devs() {
    [ "${FAKE_LOAD_MAKES_DEV:-1}" = 1 ] || return 0
    for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do : >"$dev/tun$n"; done
}
mark_loaded() {
    echo "$1" >"$state/loaded"
    make_devs
}
stage() {
    mkdir -p "${staged%/*}"
    rm -rf "$staged"
    cp -R "$kext" "$staged"
}
other_loaded() { [ -n "${FAKE_OTHER_LOADED:-}" ]; }

# load_path_10 PATH: kextload on 10.13-10.15.
load_path_10() {
    local path=$1 h
    [ -d "$path" ] || { echo "$name: can't open $path" >&2; return 10; }
    if [ -e "$state/loaded" ]; then return 0; fi
    if other_loaded; then
        echo "(kernel) $id: start failed: another tun driver holds the tun plumbers" >&2
        echo "$path failed to load - (libkern/kext) kext (kmod) start/stop routine failed; check the system/kernel logs for errors or try kextutil(8)." >&2
        return 10
    fi
    if signing_enforced && [ "$(team)" = unsigned ]; then
        echo "Untrusted kexts are not allowed" >&2
        echo "$path failed to load - (libkern/kext) not loadable (reason unspecified); check the system/kernel logs for errors or try kextutil(8)." >&2
        return 10
    fi
    stage
    h=$(content_hash "$path")
    if [ -e "$state/approved-team-$(team)" ] || [ "${FAKE_PREAPPROVED:-0}" = 1 ]; then
        mark_loaded "$h"
        return 0
    fi
    echo "$h" >"$state/pending"
    echo "$path failed to load - (libkern/kext) system policy prevents loading; check the system/kernel logs for errors or try kextutil(8)." >&2
    return 27
}

# load_11 by path|id ARG: kmutil load on 11+.
load_11() {
    local by=$1 arg=$2 h
    if [ -e "$state/loaded" ]; then return 0; fi
    if [ "$by" = id ] && [ "$arg" != "$id" ]; then
        echo "Error Domain=KMErrorDomain Code=1 \"No kext with bundle identifier $arg\"" >&2
        return 1
    fi
    if [ "$by" = path ] && [ "$arg" != "${kext#"$root"}" ] && [ "$arg" != "$kext" ]; then
        echo "(fake) only $kext is modelled" >&2
        return 1
    fi
    if [ ! -d "$kext" ]; then
        if [ "$by" = id ] && [ -s "$state/auxkc" ]; then
            mark_loaded "$(cat "$state/auxkc")"
            return 0
        fi
        echo "Error Domain=KMErrorDomain Code=1 \"No kext with bundle identifier $id\"" >&2
        return 1
    fi
    h=$(content_hash "$kext")
    if [ "$(cat "$state/auxkc" 2>/dev/null)" = "$h" ]; then
        if [ "$by" = path ]; then
            echo "(fake) $kext is in the auxiliary kernel collection, where the path on disk is never what is loaded: load it by bundle identifier (kmutil load -b $id)" >&2
            return 1
        fi
        if other_loaded; then
            echo "Error Domain=KMErrorDomain Code=1 \"Kernel request failed: (libkern/kext) kext (kmod) start/stop routine failed\"" >&2
            return 1
        fi
        mark_loaded "$h"
        return 0
    fi
    if signing_enforced && [ "$(team)" = unsigned ]; then
        echo "Error Domain=KMErrorDomain Code=29 \"Authenticating extension failed: Bad code signature\"" >&2
        return 1
    fi
    stage
    if [ -e "$state/approved-$h" ] || [ "${FAKE_PREAPPROVED:-0}" = 1 ]; then
        echo "Error Domain=KMErrorDomain Code=27 \"(fake) $id is approved; a restart is required: the auxiliary kernel collection is rebuilt while restarting\"" >&2
        return 1
    fi
    echo "$h" >"$state/pending"
    local where="System Settings"
    [ "$major" -ge 13 ] || where="System Preferences"
    echo "Error Domain=KMErrorDomain Code=27 \"Extension with identifiers $id not approved to load. Please approve using $where.\" UserInfo={NSLocalizedDescription=Extension with identifiers $id not approved to load. Please approve using $where.}" >&2
    return 1
}

unload() {
    [ "${FAKE_UNLOAD_RC:-0}" = 0 ] || { echo "$name: (fake) unload failed: (libkern/kext) kext is in use or retained" >&2; exit "$FAKE_UNLOAD_RC"; }
    [ -e "$state/loaded" ] || { echo "$name: (fake) $id is not loaded" >&2; exit 1; }
    if [ "$major" -ge 11 ] && [ "${FAKE_UNLOAD_STAYS:-1}" = 1 ]; then
        : >"$state/unload-pending"
        return 0
    fi
    rm -f "$state/loaded" "$dev"/tun*
}

# show_loaded BUNDLE_ID: a kextstat line for it when it is loaded.
show_loaded() {
    if [ "$1" = "$id" ] && [ -e "$state/loaded" ]; then
        echo "  180    0 0xffffff7f8a6f2000 0x9000     0x9000     $id (${FAKE_LOADED_VERSION:-1.0.0}) 0B1C2D3E-0000-0000-0000-000000000000 <7 5 4 3 1>"
        return
    fi
    case " ${FAKE_OTHER_LOADED:-} " in
    *" $1 "*) echo "  151    0 0xffffff7f83c3e000 0x6000     0x6000     $1 (1.0) 9A8B7C6D-0000-0000-0000-000000000000 <7 5 4 3 1>" ;;
    esac
}
arg_after() {
    local flag=$1
    shift
    while [ $# -gt 1 ]; do
        [ "$1" = "$flag" ] && { echo "$2"; return; }
        shift
    done
}

# run_job PLIST: what launchd does with a job: runs its ProgramArguments (the programs mapped to
# the fakes by name); a shell as the program is refused.
run_job() {
    local plist=$1 label args rc
    label=$(awk '/<key>Label<\/key>/ { getline; gsub(/.*<string>|<\/string>.*/, ""); print; exit }' "$plist")
    [ -n "$label" ] || return 1
    [ -e "$state/disabled-$label" ] && return 0
    : >"$state/bootstrapped-$label"
    args=$(awk '/<key>ProgramArguments<\/key>/ { f = 1; next } f && /<\/array>/ { exit }
        f && /<string>/ { gsub(/.*<string>|<\/string>.*/, ""); print }' "$plist")
    local prog
    prog=$(printf '%s\n' "$args" | head -n 1)
    case $prog in
    /bin/sh | /bin/bash | /bin/zsh | */sh)
        : >"$state/shell-wrapped-$label"
        echo 126 >"$state/lastexit-$label"
        return 0
        ;;
    esac
    set --
    while IFS= read -r a; do set -- "$@" "$a"; done <<ARGS
$(printf '%s\n' "$args" | tail -n +2)
ARGS
    "$bindir/$(basename "$prog")" "$@" >>"$state/daemon-output" 2>&1
    rc=$?
    echo "$rc" >"$state/lastexit-$label"
}

case $name in
uname)
    case ${1:-} in
    -m) echo "${FAKE_ARCH:-x86_64}" ;;
    -r)
        if [ "$major" -ge 11 ]; then echo "$((major + 9)).0.0"; else
            minor=${macos#10.}
            echo "$((${minor%%.*} + 4)).0.0"
        fi
        ;;
    *) echo "${FAKE_KERNEL:-Darwin}" ;;
    esac
    ;;
sw_vers)
    if [ "$major" -ge 11 ] && { [ "${SYSTEM_VERSION_COMPAT:-0}" = 1 ] || [ "${FAKE_SW_VERS_COMPAT:-0}" = 1 ]; }; then
        echo 10.16
    else
        echo "$macos"
    fi
    ;;
sysctl)
    if [ -n "${FAKE_ARM64:-}" ]; then echo "$FAKE_ARM64"; else echo "sysctl: unknown oid 'hw.optional.arm64'" >&2; exit 1; fi
    ;;
id) echo "${FAKE_UID:-0}" ;;
kextload)
    path=${!#}
    [ "$path" = "${kext#"$root"}" ] && path=$kext
    if [ "$major" -ge 11 ]; then
        echo "Executing: /usr/bin/kmutil load -p $path" >&2
        load_11 path "$path"
        exit $?
    fi
    load_path_10 "$path"
    exit $?
    ;;
kextunload) unload ;;
kextstat) show_loaded "$(arg_after -b "$@")" ;;
kmutil)
    case ${1:-} in
    load)
        if b=$(arg_after -b "$@") && [ -n "$b" ]; then load_11 id "$b"; else load_11 path "$(arg_after -p "$@")"; fi
        exit $?
        ;;
    unload) unload ;;
    showloaded) show_loaded "$(arg_after -b "$@")" ;;
    clear-staging)
        : >"$state/clear-staging-called"
        echo "kmutil: (fake) clear-staging would remove every vendor's staged kexts: never run it" >&2
        exit 99
        ;;
    *) echo "kmutil: (fake) unknown subcommand" >&2; exit 64 ;;
    esac
    ;;
kextcache)
    if [ "${1:-}" = --prune-staging ]; then
        [ -d "$kext" ] || rm -rf "$staged"
    fi
    ;;
fake-approve)
    if [ ! -e "$state/pending" ]; then
        echo "(fake) nothing was blocked in the last 30 minutes: no Allow button" >&2
        exit 1
    fi
    if [ "${FAKE_ARM64:-0}" = 1 ] && [ "${FAKE_SECURITY:-full}" != reduced ]; then
        echo "(fake) Full Security: the pane offers \"Enable system extensions...\" (Startup Security Utility), not Allow" >&2
        exit 1
    fi
    if [ "${FAKE_CLICK:-real}" = synthetic ]; then
        echo "(fake) the Allow button ignores synthetic clicks" >&2
        exit 1
    fi
    h=$(cat "$state/pending")
    rm -f "$state/pending"
    if [ "$major" -ge 11 ]; then
        : >"$state/approved-$h"
        echo "(fake) approved; New system extensions require a restart before they can be used."
    else
        : >"$state/approved-team-$(team)"
        [ -e "$state/loaded" ] || mark_loaded "$h"
        echo "(fake) approved; macOS loaded the blocked kext"
    fi
    ;;
fake-reboot)
    rm -f "$state/loaded" "$state/unload-pending" "$state/pending" "$dev"/tun* "$state"/bootstrapped-*
    if [ "$major" -ge 11 ]; then
        if [ -d "$kext" ]; then
            h=$(content_hash "$kext")
            if [ -e "$state/approved-$h" ] || [ "${FAKE_PREAPPROVED:-0}" = 1 ]; then
                echo "$h" >"$state/auxkc"
            else
                rm -f "$state/auxkc"
            fi
        else
            rm -f "$state/auxkc"
        fi
    fi
    for p in "$root"/Library/LaunchDaemons/*.plist; do
        [ -f "$p" ] && run_job "$p"
    done
    ;;
touch)
    command -p touch "$@"
    ;;
chown) exit "${FAKE_CHOWN_RC:-0}" ;;
launchctl)
    case ${1:-} in
    bootstrap)
        [ "${FAKE_LAUNCHCTL_RC:-0}" = 0 ] || exit "$FAKE_LAUNCHCTL_RC"
        run_job "$3"
        ;;
    bootout)
        label=${2#system/}
        [ -e "$state/bootstrapped-$label" ] || { echo "Boot-out failed: 3: No such process" >&2; exit 3; }
        rm -f "$state/bootstrapped-$label"
        ;;
    print)
        label=${2#system/}
        if [ ! -e "$state/bootstrapped-$label" ]; then
            echo "Could not find service \"$label\" in domain for system" >&2
            exit 113
        fi
        printf 'system/%s = {\n\tactive count = 0\n\tstate = not running\n\tlast exit code = %s\n}\n' \
            "$label" "$(cat "$state/lastexit-$label" 2>/dev/null || echo '(never exited)')"
        ;;
    print-disabled)
        echo "disabled services = {"
        for f in "$state"/disabled-*; do
            [ -e "$f" ] || continue
            if [ "$major" -ge 13 ]; then word=disabled; else word=true; fi
            printf '\t"%s" => %s\n' "${f##*/disabled-}" "$word"
        done
        echo "}"
        ;;
    disable) : >"$state/disabled-${2#system/}" ;;
    enable) rm -f "$state/disabled-${2#system/}" ;;
    *) echo "launchctl: (fake) unknown subcommand" >&2; exit 64 ;;
    esac
    ;;
rcodesign) exit "${FAKE_RCODESIGN_RC:-0}" ;;
csrutil)
    case ${FAKE_SIP:-enabled} in
    enabled) echo "System Integrity Protection status: enabled." ;;
    disabled) echo "System Integrity Protection status: disabled." ;;
    custom-kext-off | custom-kext-on)
        k=disabled
        [ "$FAKE_SIP" = custom-kext-on ] && k=enabled
        printf 'System Integrity Protection status: unknown (Custom Configuration).\n\nConfiguration:\n\tApple Internal: disabled\n\tKext Signing: %s\n\tFilesystem Protections: enabled\n\tDebugging Restrictions: enabled\n\tDTrace Restrictions: enabled\n\tNVRAM Protections: enabled\n\tBaseSystem Verification: enabled\n\nThis is an unsupported configuration, likely to break in the future and leave your machine in an unknown state.\n' "$k"
        ;;
    esac
    ;;
codesign)
    target=${!#}
    case ${FAKE_SIGNATURE:-developer-id} in
    developer-id)
        printf 'Executable=%s/Contents/MacOS/tunnel\nIdentifier=%s\nAuthority=Developer ID Application: Example Corp (%s)\nAuthority=Developer ID Certification Authority\nAuthority=Apple Root CA\nTeamIdentifier=%s\n' \
            "$target" "$id" "${FAKE_TEAM:-ABCDE12345}" "${FAKE_TEAM:-ABCDE12345}" >&2
        ;;
    adhoc) printf 'Executable=%s/Contents/MacOS/tunnel\nIdentifier=%s\nSignature=adhoc\nTeamIdentifier=not set\n' "$target" "$id" >&2 ;;
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
