#!/usr/bin/env bash
# Tests the Mac scripts (scripts/install.sh, uninstall.sh, status.sh, fix-permissions.sh, sign.sh)
# and the LaunchDaemon on Linux: each script runs against a fake root directory (TUNNEL_ROOT) with
# the macOS commands replaced on PATH by tests/mac-scripts/fake-mac.sh, which logs every call.
# The checks compare the exact commands issued and the files written, for macOS 10.13, 10.15 and
# 11+, and the refusals (Apple silicon, non-Mac, old macOS, non-root, bad bundles, busy units).
#
# Prints one PASS/FAIL/SKIP line per check and ends with "N passed, N failed[, N skipped]".
# Run from anywhere: bash tests/suites/mac-scripts.sh
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
scripts=$repo/scripts
fake=$repo/tests/mac-scripts/fake-mac.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mac-scripts.XXXXXX") || { echo "FAIL cannot create a temp dir"; echo "0 passed, 1 failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=tests/suites/lib/report.sh
. "$repo/tests/suites/lib/report.sh"

# --- the fake Mac -------------------------------------------------------------------------------
bin=$tmp/bin
mkdir -p "$bin"
fake_commands="uname sw_vers sysctl id kextload kextunload kextstat kmutil chown launchctl rcodesign csrutil codesign lsof ifconfig"
for c in $fake_commands; do ln -s "$fake" "$bin/$c"; done
# The same without rcodesign, for sign.sh's "not installed" path.
bin_nors=$tmp/bin-no-rcodesign
mkdir -p "$bin_nors"
for c in $fake_commands; do [ "$c" = rcodesign ] || ln -s "$fake" "$bin_nors/$c"; done

root=$tmp/root
ext=$root/Library/Extensions
daemons=$root/Library/LaunchDaemons
dest=$ext/tunnel.kext
daemon=$daemons/org.tunnelkext.tunnel.plist
daemon_src=$scripts/launchd/org.tunnelkext.tunnel.plist
export TUNNEL_ROOT=$root FAKE_LOG=$tmp/log FAKE_STATE=$tmp/state TUNNEL_DEV_WAIT=0

# fresh [MACOS]: an empty fake Mac (nothing installed or loaded) and default knobs.
fresh() {
    rm -rf "$root" "$tmp/state" "$tmp/log" "$tmp/out"
    mkdir -p "$ext" "$daemons" "$root/Library/Logs" "$root/dev" "$tmp/state"
    : >"$tmp/log"
    unset FAKE_KERNEL FAKE_ARCH FAKE_ARM64 FAKE_UID FAKE_LOAD_RC FAKE_LOAD_MAKES_DEV FAKE_UNLOAD_RC \
        FAKE_LEGACY_LOADED FAKE_SIP FAKE_SIGNATURE FAKE_LSOF_FILE FAKE_IFCONFIG_DIR FAKE_LAUNCHCTL_RC \
        FAKE_RCODESIGN_RC TUNNEL_OWNER_IDS TUNNEL_P12 TUNNEL_P12_PASSWORD_FILE TUNNEL_NOTARY_API_KEY
    export FAKE_MACOS=${1:-10.15.7}
}

# make_bundle DIR [HEADER_HEX]: a fake tunnel.kext: the repo's Info.plist and a Mach-O header
# (default: x86_64 MH_KEXT_BUNDLE) padded to 4 KiB. Files are made group-writable on purpose.
x86_kext=cffaedfe07000001030000000b000000
make_bundle() {
    local b=$1 hex=${2:-$x86_kext}
    rm -rf "$b"
    mkdir -p "$b/Contents/MacOS"
    cp "$repo/Info.plist" "$b/Contents/Info.plist"
    printf '%b' "$(printf '%s' "$hex" | sed 's/../\\x&/g')" >"$b/Contents/MacOS/tunnel"
    head -c 4080 /dev/zero >>"$b/Contents/MacOS/tunnel"
    chmod -R g+w "$b"
}
bundle=$tmp/build/tunnel.kext
arm64e_kext=cffaedfe0c000001020000c00b000000
# make_universal DIR SLICE_HEX...: a fake tunnel.kext whose executable is a fat file with one
# 16-byte Mach-O header per slice, each slice on its own 4 KiB page.
make_universal() {
    local b=$1 n=$(($# - 1)) i=1 hdr exe
    shift
    make_bundle "$b"
    exe=$b/Contents/MacOS/tunnel
    hdr=$(printf 'cafebabe%08x' "$n")
    for h in "$@"; do
        hdr=$hdr$(printf '%s%s%08x%08x0000000c' "${h:8:8}" "${h:16:8}" $((4096 * i)) 16)
        i=$((i + 1))
    done
    : >"$exe"
    printf '%b' "$(printf '%s' "$hdr" | sed 's/../\\x&/g')" >"$exe"
    i=1
    for h in "$@"; do
        truncate -s $((4096 * i)) "$exe"
        printf '%b' "$(printf '%s' "$h" | sed 's/../\\x&/g')" >>"$exe"
        i=$((i + 1))
    done
    truncate -s $((4096 * i)) "$exe"
    chmod -R g+w "$b"
}

# sh_run SCRIPT ARGS...: runs a script with the fake commands first on PATH; sets rc, output in $tmp/out.
sh_run() {
    local s=$1
    shift
    PATH="$bin:$PATH" "$scripts/$s" "$@" >"$tmp/out" 2>&1
    rc=$?
}
out() { cat "$tmp/out"; }
# actions: the logged calls that change something (queries such as sw_vers or kextstat left out).
actions() {
    grep -vE '^(uname|sw_vers|sysctl|id|kextstat|csrutil|codesign|lsof|ifconfig)( |$)|^kmutil showloaded' "$tmp/log"
}
# snapshot: every path under the fake root with its mode and size.
snapshot() { (cd "$root" && find . -exec stat -c '%n %a %s' {} + | sort); }
# no_gw DIR: true when no file under DIR is writable by group or others.
no_gw() { [ -z "$(find "$1" \( -perm -020 -o -perm -002 \) -print)" ]; }

# verdict NAME RC [DETAIL...]: PASS when RC is 0.
verdict() {
    local name=$1 code=$2
    shift 2
    if [ "$code" = 0 ]; then pass "$name"; else fail "$name" "$@"; fi
}
# expect NAME EXPECTED ACTUAL: PASS when equal, else FAIL with both.
expect() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected:" "$2" "actual:" "$3" "output:" "$(out)"; fi
}
# expect_out NAME RC PATTERN...: the last run exited RC and its output matches every grep -E PATTERN.
expect_out() {
    local name=$1 want_rc=$2 p missing=""
    shift 2
    for p in "$@"; do grep -qE -- "$p" "$tmp/out" || missing="$missing [$p]"; done
    if [ "$rc" = "$want_rc" ] && [ -z "$missing" ]; then
        pass "$name"
    else
        fail "$name" "exit $rc (expected $want_rc); missing in output:${missing:- none}" "output:" "$(out)"
    fi
}

# --- property lists ----------------------------------------------------------------------------
plist_check=$(
    python3 - "$daemon_src" "$repo/Info.plist" <<'PY' 2>&1
import plistlib, sys
daemon_path, info_path = sys.argv[1], sys.argv[2]
with open(daemon_path, "rb") as f:
    d = plistlib.load(f)
with open(info_path, "rb") as f:
    info = plistlib.load(f)
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
bid = info.get("CFBundleIdentifier")
need(d.get("Label") == bid == "org.tunnelkext.tunnel", f"Label {d.get('Label')!r} != CFBundleIdentifier {bid!r}")
need(daemon_path.endswith("/" + str(d.get("Label")) + ".plist"), "file name is not LABEL.plist")
need(d.get("RunAtLoad") is True, "RunAtLoad is not true")
need(d.get("KeepAlive", False) is False, "KeepAlive must not restart a finished load")
args = d.get("ProgramArguments")
need(isinstance(args, list) and args[:2] == ["/bin/sh", "-c"] and len(args) == 3, f"ProgramArguments {args!r}")
if isinstance(args, list) and len(args) == 3:
    need("kextload /Library/Extensions/tunnel.kext" in args[2], "no kextload of /Library/Extensions/tunnel.kext")
    need("kmutil load -p /Library/Extensions/tunnel.kext" in args[2], "no kmutil load of /Library/Extensions/tunnel.kext")
path = d.get("EnvironmentVariables", {}).get("PATH", "")
need("/sbin" in path.split(":") and "/usr/bin" in path.split(":"), f"PATH {path!r} lacks /sbin or /usr/bin")
print("DAEMON-OK" if not errors else "; ".join(errors))
errors = []
need(isinstance(bid, str) and 0 < len(bid.encode()) < 64, "CFBundleIdentifier missing or 64 bytes or longer")
need(info.get("CFBundleExecutable") == "tunnel", "CFBundleExecutable is not tunnel")
need(info.get("CFBundlePackageType") == "KEXT", "CFBundlePackageType is not KEXT")
need(info.get("CFBundleInfoDictionaryVersion") == "6.0", "CFBundleInfoDictionaryVersion is not 6.0")
def ver(s):
    return tuple(int(x) for x in str(s).split("."))
v = info.get("CFBundleVersion")
need(isinstance(v, str) and all(p.isdigit() for p in v.split(".")), f"CFBundleVersion {v!r}")
cv = info.get("OSBundleCompatibleVersion")
if cv is not None and isinstance(v, str):
    need(ver(cv) <= ver(v), "OSBundleCompatibleVersion > CFBundleVersion")
libs = info.get("OSBundleLibraries")
need(isinstance(libs, dict) and len(libs) > 0, "OSBundleLibraries missing or empty")
need(isinstance(libs, dict) and "com.apple.kpi.private" not in libs, "links com.apple.kpi.private")
need("OSBundleRequired" not in info and "IOKitPersonalities" not in info, "has OSBundleRequired or IOKitPersonalities")
print("INFO-OK" if not errors else "; ".join(errors))
PY
)
case $plist_check in *DAEMON-OK*) pass "launchd plist parses; Label = CFBundleIdentifier, RunAtLoad, loads /Library/Extensions/tunnel.kext" ;;
*) fail "launchd plist parses; Label = CFBundleIdentifier, RunAtLoad, loads /Library/Extensions/tunnel.kext" "$plist_check" ;; esac
case $plist_check in *INFO-OK*) pass "Info.plist parses; identifier, executable, package type, versions and libraries are valid" ;;
*) fail "Info.plist parses; identifier, executable, package type, versions and libraries are valid" "$plist_check" ;; esac

# The daemon's command, run as launchd would but with the fake commands on PATH.
daemon_cmd=$(python3 -c 'import plistlib,sys; print(plistlib.load(open(sys.argv[1],"rb"))["ProgramArguments"][2])' "$daemon_src" 2>/dev/null)
for v in 10.13.6:kextload 10.15.7:kextload 11.7.10:kmutil 14.4:kmutil; do
    fresh "${v%%:*}"
    PATH="$bin:$PATH" sh -c "$daemon_cmd" >"$tmp/out" 2>&1
    rc=$?
    if [ "${v#*:}" = kextload ]; then want="kextload /Library/Extensions/tunnel.kext"; else want="kmutil load -p /Library/Extensions/tunnel.kext"; fi
    expect "LaunchDaemon at boot on macOS ${v%%:*} runs '$want'" "$want rc=0" "$(actions) rc=$rc"
done

# --- install.sh: success on each supported version ----------------------------------------------
make_bundle "$bundle"
for v in 10.13.6 10.15.7 11.7.10 14.4; do
    fresh "$v"
    sh_run install.sh "$bundle"
    case $v in
    10.*) load="kextload $dest" query=kextstat ;;
    *) load="kmutil load -p $dest" query="kmutil showloaded" ;;
    esac
    expect "install on macOS $v: exact commands" \
        "chown -R root:wheel $dest
$load
chown root:wheel $daemon
launchctl bootstrap system $daemon
rc=0" "$(actions)
rc=$rc"
    problems=""
    diff -r "$bundle" "$dest" >/dev/null 2>&1 || problems="$problems bundle-not-copied-identically"
    no_gw "$dest" || problems="$problems group/other-write-left"
    cmp -s "$daemon_src" "$daemon" || problems="$problems daemon-plist-differs"
    [ "$(stat -c %a "$daemon" 2>/dev/null)" = 644 ] || problems="$problems daemon-mode-not-644"
    [ -e "$root/dev/tun0" ] || problems="$problems no-/dev/tun0"
    grep -q "^$query .*org.tunnelkext.tunnel" "$tmp/log" || problems="$problems not-checked-with-$query"
    expect "install on macOS $v: files written (bundle, go-w, LaunchDaemon 644), checked with $query" "" "$problems"
done

# --- install.sh: refusals, nothing changed -----------------------------------------------------
# refused NAME PATTERN...: the last run exited 1, printed every PATTERN, issued no action and
# left the fake root as it was before ($before).
refused() {
    local name=$1
    shift
    local changes=""
    [ -z "$(actions)" ] || changes="commands issued: $(actions | tr '\n' ';')"
    [ "$(snapshot)" = "$before" ] || changes="$changes fake root changed"
    if [ -z "$changes" ]; then expect_out "$name" 1 "$@"; else fail "$name" "$changes" "$(out)"; fi
}

fresh 12.6
export FAKE_ARCH=arm64 FAKE_ARM64=1
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install on Apple silicon (arm64) with an x86_64-only bundle refuses, naming the missing arm64e slice" \
    "no arm64e slice" "universal bundle"

fresh 11.7.10
export FAKE_ARCH=x86_64 FAKE_ARM64=1
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install under Rosetta on Apple silicon (hw.optional.arm64) needs the arm64e slice too" "no arm64e slice"

fresh 14.5
export FAKE_ARCH=arm64 FAKE_ARM64=1 FAKE_UID=501
make_universal "$tmp/uni/tunnel.kext" "$x86_kext" "$arm64e_kext"
before=$(snapshot)
sh_run install.sh --dry-run "$tmp/uni/tunnel.kext"
if [ -z "$(actions)" ] && [ "$(snapshot)" = "$before" ]; then
    expect_out "install --dry-run on Apple silicon takes a universal bundle's arm64e slice and explains the steps" 0 \
        "Apple silicon" "arm64e slice will be used" "Reduced Security" \
        "Allow user management of kernel extensions from identified" "approve the developer" "restart" \
        "would run: cp -R $tmp/uni/tunnel.kext $dest"
else
    fail "install --dry-run on Apple silicon takes a universal bundle's arm64e slice" "$(actions)" "$(out)"
fi

fresh
export FAKE_KERNEL=Linux
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install on a non-Mac refuses" "not macOS"

if [ "$(uname -s)" != Darwin ]; then
    fresh
    before=$(snapshot)
    "$scripts/install.sh" "$bundle" >"$tmp/out" 2>&1
    rc=$?
    refused "install on this real $(uname -s) host (no fakes) refuses" "not macOS"
else
    skip "install on a real non-Mac host: this host is a Mac"
fi

fresh 10.12.6
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install on macOS 10.12 refuses (10.13 or later)" "10\.13"

fresh
export FAKE_UID=501
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install without root refuses and says to use sudo" "sudo"

fresh
export FAKE_UID=501
before=$(snapshot)
sh_run install.sh --dry-run "$bundle"
if [ -z "$(actions)" ] && [ "$(snapshot)" = "$before" ]; then
    expect_out "install --dry-run (no root needed) prints the plan and changes nothing" 0 \
        "would run: cp -R $bundle $dest" "would run: chown -R root:wheel $dest" "would run: kextload $dest" \
        "would run: launchctl bootstrap system $daemon" "nothing was changed"
else
    fail "install --dry-run (no root needed) prints the plan and changes nothing" "$(actions)" "$(out)"
fi

fresh
make_bundle "$tmp/bad/tunnel.kext"
rm "$tmp/bad/tunnel.kext/Contents/MacOS/tunnel"
before=$(snapshot)
sh_run install.sh "$tmp/bad/tunnel.kext"
refused "install refuses a bundle without its executable" "Contents/MacOS/tunnel is missing"

fresh
make_bundle "$tmp/bad/tunnel.kext" cffaedfe0c000001000000000b000000
before=$(snapshot)
sh_run install.sh "$tmp/bad/tunnel.kext"
refused "install refuses an arm64 executable (Mach-O header read with od)" "arm64 Mach-O"

fresh
make_bundle "$tmp/bad/tunnel.kext" cffaedfe070000010300000006000000
before=$(snapshot)
sh_run install.sh "$tmp/bad/tunnel.kext"
refused "install refuses an x86_64 Mach-O that is not MH_KEXT_BUNDLE" "file type 0x06" "MH_KEXT_BUNDLE"

fresh
make_universal "$tmp/bad/tunnel.kext" "$arm64e_kext"
before=$(snapshot)
sh_run install.sh "$tmp/bad/tunnel.kext"
refused "install on an Intel Mac refuses a universal executable without an x86_64 slice" "no x86_64 slice" "arm64e-kext"

fresh
make_universal "$tmp/uni/tunnel.kext" "$x86_kext" "$arm64e_kext"
export FAKE_UID=501
before=$(snapshot)
sh_run install.sh --dry-run "$tmp/uni/tunnel.kext"
expect_out "install --dry-run on an Intel Mac takes a universal bundle's x86_64 slice" 0 \
    "would run: cp -R $tmp/uni/tunnel.kext $dest"

fresh
make_bundle "$tmp/bad/tunnel.kext"
sed -i 's/org\.tunnelkext\.tunnel/com.example.other/; /<key>OSBundleLibraries<\/key>/,/<\/dict>/d' "$tmp/bad/tunnel.kext/Contents/Info.plist"
before=$(snapshot)
sh_run install.sh "$tmp/bad/tunnel.kext"
refused "install lists every Info.plist problem (identifier, OSBundleLibraries)" \
    "CFBundleIdentifier is 'com.example.other'" "OSBundleLibraries is missing"

fresh
before=$(snapshot)
sh_run install.sh "$tmp/nowhere/tunnel.kext"
refused "install with a bundle path that does not exist says how to build one" "no bundle at" "scripts/build.sh"

fresh
sh_run install.sh --frobnicate
expect_out "install with an unknown option prints usage and exits 2" 2 "unknown option '--frobnicate'" "usage:"

fresh
export FAKE_SIGNATURE=unsigned FAKE_SIP=enabled
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses an unsigned build while SIP is on, before changing anything" "unsigned" "csrutil disable" "sign\.sh"

fresh
export FAKE_SIGNATURE=adhoc FAKE_SIP=disabled
sh_run install.sh "$bundle"
expect "install of an ad-hoc build with SIP off goes ahead" "kextload $dest rc=0" "$(actions | grep kextload) rc=$rc"

fresh
sh_run install.sh "$bundle"
: >"$tmp/log"
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses when tunnel.kext is already installed, pointing to uninstall.sh" "already installed" "uninstall\.sh"

fresh
export FAKE_LEGACY_LOADED=1
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses while the old tuntaposx tun.kext is loaded" "net\.sf\.tuntaposx\.tun"

# --- install.sh: load failures leave the system as it was ----------------------------------------
for v in 10.13.6 10.15.7 12.6; do
    fresh "$v"
    export FAKE_LOAD_RC=27
    before=$(snapshot)
    sh_run install.sh "$bundle"
    case $v in 10.*) load="kextload $dest" ;; *) load="kmutil load -p $dest" ;; esac
    expect "install on $v, load fails: commands (copy, load, no LaunchDaemon)" "chown -R root:wheel $dest
$load rc=1" "$(actions) rc=$rc"
    [ "$(snapshot)" = "$before" ]
    verdict "install on $v, load fails: fake root left exactly as it was" $? "$(snapshot)"
    case $v in
    10.13.*) expect_out "install on $v, load fails: explains approval and SIP, not notarization" 1 \
        "Security & Privacy" "Allow" "SIP" "Nothing was changed"
        ! grep -q "notarized" "$tmp/out"
        verdict "install on 10.13 does not claim notarization is required" $? "$(out)" ;;
    10.15.*) expect_out "install on $v, load fails: explains approval, notarization (10.14.5+) and SIP" 1 \
        "Security & Privacy" "Allow" "notarized" "SIP" "Nothing was changed" ;;
    *) expect_out "install on $v, load fails: explains approval, restart on 11+ and --keep-on-failure" 1 \
        "Privacy" "restart" "auxiliary kernel collection" "--keep-on-failure" "notarized" "Nothing was changed" ;;
    esac
done

fresh 12.6
export FAKE_LOAD_RC=1
sh_run install.sh --keep-on-failure "$bundle"
if [ -d "$dest" ] && cmp -s "$daemon_src" "$daemon" && actions | grep -qx "launchctl bootstrap system $daemon"; then
    expect_out "install --keep-on-failure on 12.6 keeps the kext and LaunchDaemon for the restart" 1 "Kept as asked"
else
    fail "install --keep-on-failure on 12.6 keeps the kext and LaunchDaemon for the restart" "$(actions)" "$(out)"
fi

fresh 10.15.7
export FAKE_LOAD_MAKES_DEV=0
before=$(snapshot)
sh_run install.sh "$bundle"
expect "install, loaded but no /dev/tun0: unloads again, no LaunchDaemon" "chown -R root:wheel $dest
kextload $dest
kextunload -b org.tunnelkext.tunnel rc=1" "$(actions) rc=$rc"
if [ "$(snapshot)" = "$before" ]; then
    expect_out "install, loaded but no /dev/tun0: explains, fake root as it was" 1 "tun0 did not appear"
else
    fail "install, loaded but no /dev/tun0: explains, fake root as it was" "$(snapshot)"
fi

# --- uninstall.sh -------------------------------------------------------------------------------
lsof_openvpn=$tmp/lsof-openvpn
printf 'p321\ncopenvpn\nLroot\nf5\nn%s\np4711\ncmiredo\nL_miredo\nf3\nn%s\n' "$root/dev/tun0" "$root/dev/tun3" >"$lsof_openvpn"

for v in 10.15.7 13.6; do
    fresh "$v"
    sh_run install.sh "$bundle"
    : >"$tmp/log"
    sh_run uninstall.sh
    case $v in 10.*) unload="kextunload -b org.tunnelkext.tunnel" ;; *) unload="kmutil unload -b org.tunnelkext.tunnel" ;; esac
    expect "uninstall on $v: exact commands" "$unload
launchctl bootout system/org.tunnelkext.tunnel rc=0" "$(actions) rc=$rc"
    if [ ! -e "$dest" ] && [ ! -e "$daemon" ] && [ ! -e "$root/dev/tun0" ]; then
        expect_out "uninstall on $v: removes bundle and LaunchDaemon and reports them" 0 \
            "Removed:" "unloaded org.tunnelkext.tunnel" "$daemon" "$dest"
    else
        fail "uninstall on $v: removes bundle and LaunchDaemon and reports them" "$(snapshot)"
    fi
done
grep -q "restart the Mac" "$tmp/out"
verdict "uninstall on 11+ says a restart finishes the removal" $? "$(out)"

fresh
sh_run install.sh "$bundle"
: >"$tmp/log"
export FAKE_LSOF_FILE=$lsof_openvpn
before=$(snapshot)
sh_run uninstall.sh
refused "uninstall refuses while units are open, naming the processes" \
    "in use" "$root/dev/tun0 is open by openvpn \(pid 321, user root\)" "$root/dev/tun3 is open by miredo \(pid 4711"
grep -q "^lsof -F pcLn $root/dev/tun0 $root/dev/tun1 .*$root/dev/tun15\$" "$tmp/log"
verdict "uninstall asks lsof about every /dev/tunN" $? "$(cat "$tmp/log")"

fresh
sh_run install.sh "$bundle"
: >"$tmp/log"
export FAKE_UNLOAD_RC=1
before=$(snapshot)
sh_run uninstall.sh
expect "uninstall when the kext refuses to unload: tries once, removes nothing" \
    "kextunload -b org.tunnelkext.tunnel rc=1" "$(actions) rc=$rc"
if [ "$(snapshot)" = "$before" ]; then
    expect_out "uninstall when unloading fails explains and keeps everything" 1 "Nothing was removed"
else
    fail "uninstall when unloading fails explains and keeps everything" "$(snapshot)"
fi

fresh
sh_run install.sh "$bundle"
: >"$tmp/log"
before=$(snapshot)
sh_run uninstall.sh --dry-run
if [ -z "$(actions)" ] && [ "$(snapshot)" = "$before" ]; then
    expect_out "uninstall --dry-run prints the plan and changes nothing" 0 \
        "would run: kextunload -b org.tunnelkext.tunnel" "would run: rm -rf $dest" "would run: rm -f $daemon"
else
    fail "uninstall --dry-run prints the plan and changes nothing" "$(actions)" "$(out)"
fi

fresh
before=$(snapshot)
sh_run uninstall.sh
if [ -z "$(actions)" ] && [ "$(snapshot)" = "$before" ]; then
    expect_out "uninstall with nothing installed says so" 0 "nothing to remove"
else
    fail "uninstall with nothing installed says so" "$(actions)" "$(out)"
fi

fresh
export FAKE_UID=501
sh_run install.sh "$bundle"
sh_run uninstall.sh
expect_out "uninstall without root refuses and says to use sudo" 1 "sudo"

# --- status.sh ----------------------------------------------------------------------------------
fresh 10.13.6
sh_run status.sh
expect_out "status with nothing installed" 0 "installed: +no" "loaded: +no" "boot loading: no" "devices: +none" "interfaces: +none"

fresh 11.7.10
sh_run install.sh "$bundle"
export FAKE_LSOF_FILE=$lsof_openvpn FAKE_IFCONFIG_DIR=$tmp/ifconfig
mkdir -p "$FAKE_IFCONFIG_DIR"
printf 'tun0: flags=8851<UP,POINTOPOINT,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n\tinet 10.8.0.1 --> 10.8.0.2 netmask 0xffffffff\n\topen (pid 321)\n' >"$FAKE_IFCONFIG_DIR/tun0"
sh_run status.sh
expect_out "status on 11: loaded version, boot loading, open units with processes, interfaces" 0 \
    "installed: +$dest, version 1\.0\.0" "loaded: +yes, version 1\.0\.0" "boot loading: yes" "devices: +16" \
    "$root/dev/tun0 is open by openvpn \(pid 321, user root\)" "tun0: flags=8851<UP" "inet 10\.8\.0\.1 --> 10\.8\.0\.2" "open \(pid 321\)"
grep -q "^kmutil showloaded -b org.tunnelkext.tunnel" "$tmp/log" && ! actions | grep -qv -e '^chown' -e '^kmutil load' -e '^launchctl bootstrap'
verdict "status on 11 queries kmutil and changes nothing" $? "$(cat "$tmp/log")"
export FAKE_UID=501
sh_run status.sh
expect_out "status without root says only your own processes are visible" 0 "not root"

# --- fix-permissions.sh -------------------------------------------------------------------------
fresh
fp=$tmp/fp/tunnel.kext
make_bundle "$fp"
chmod o+w "$fp/Contents/Info.plist"
TUNNEL_OWNER_IDS="$(id -u):$(id -g)"
export TUNNEL_OWNER_IDS
modes_before=$(find "$fp" -exec stat -c '%n %a' {} + | sort)
sh_run fix-permissions.sh --dry-run "$fp"
if [ -z "$(actions)" ] && [ "$(find "$fp" -exec stat -c '%n %a' {} + | sort)" = "$modes_before" ]; then
    expect_out "fix-permissions --dry-run lists the writable files and changes nothing" 0 \
        "group/other-writable: $fp/Contents/Info.plist" "would run: chmod -R go-w $fp" "nothing was changed"
else
    fail "fix-permissions --dry-run lists the writable files and changes nothing" "$(actions)" "$(out)"
fi
sh_run fix-permissions.sh "$fp"
if no_gw "$fp" && [ -z "$(actions)" ]; then pass "fix-permissions removes group/other write (owner already right: no chown)"
else fail "fix-permissions removes group/other write (owner already right: no chown)" "$(actions)" "$(find "$fp" -exec stat -c '%n %a' {} +)"; fi
modes_after=$(find "$fp" -exec stat -c '%n %a' {} + | sort)
sh_run fix-permissions.sh "$fp"
if [ "$(find "$fp" -exec stat -c '%n %a' {} + | sort)" = "$modes_after" ] && [ -z "$(actions)" ]; then
    expect_out "fix-permissions is idempotent: a second run changes nothing" 0 "already correct; nothing to do"
else
    fail "fix-permissions is idempotent: a second run changes nothing" "$(out)"
fi

fresh
make_bundle "$fp"
chmod -R go-w "$fp"
if [ "$(id -u)" = 0 ]; then chown 1:1 "$fp/Contents/MacOS/tunnel"; fi # as a non-root user, every file is already not root-owned
sh_run fix-permissions.sh "$fp"
expect "fix-permissions issues chown -R root:wheel when a file is not root:wheel" "chown -R root:wheel $fp rc=0" "$(actions) rc=$rc"
grep -q "not root:wheel: $fp/Contents/MacOS/tunnel" "$tmp/out"
verdict "fix-permissions names the wrongly owned file" $? "$(out)"

fresh
sh_run fix-permissions.sh
expect_out "fix-permissions without a path prints usage and exits 2" 2 "missing the bundle path" "usage:"
sh_run fix-permissions.sh "$tmp/nowhere.kext"
expect_out "fix-permissions on a missing path says so" 1 "no such file or directory"
mkdir -p "$tmp/notabundle"
sh_run fix-permissions.sh "$tmp/notabundle"
expect_out "fix-permissions on a directory that is not a bundle refuses" 1 "not a kext bundle"

# --- sign.sh ------------------------------------------------------------------------------------
fresh
sh_run sign.sh "$bundle"
if [ -z "$(actions)" ]; then
    expect_out "sign.sh without a certificate explains what is missing and signs nothing" 1 \
        "No signing certificate" "--p12" "Developer ID Application" "kext signing"
else
    fail "sign.sh without a certificate explains what is missing and signs nothing" "$(actions)"
fi

fresh
printf 'not really a certificate' >"$tmp/cert.p12"
printf 'secret\n' >"$tmp/cert.pw"
sh_run sign.sh --p12 "$tmp/cert.p12" --p12-password-file "$tmp/cert.pw" "$bundle"
expect "sign.sh with a certificate runs rcodesign sign" \
    "rcodesign sign --p12-file $tmp/cert.p12 --p12-password-file $tmp/cert.pw $bundle rc=0" "$(actions) rc=$rc"
expect_out "sign.sh without an API key explains notarization" 0 "10\.14\.5" "encode-app-store-connect-api-key" "--api-key"

fresh
printf '{}' >"$tmp/key.json"
export TUNNEL_P12=$tmp/cert.p12
sh_run sign.sh --api-key "$tmp/key.json" "$bundle"
expect "sign.sh with an API key signs, then notarizes and staples" \
    "rcodesign sign --p12-file $tmp/cert.p12 $bundle
rcodesign notary-submit --api-key-file $tmp/key.json --staple $bundle rc=0" "$(actions) rc=$rc"

fresh
export FAKE_RCODESIGN_RC=3
sh_run sign.sh --p12 "$tmp/cert.p12" "$bundle"
expect_out "sign.sh reports a failing rcodesign" 1 "could not sign"

fresh
sh_run sign.sh --p12 "$tmp/missing.p12" "$bundle"
expect_out "sign.sh with an unreadable certificate file says so" 1 "missing\.p12 does not exist"
sh_run sign.sh --p12
expect_out "sign.sh --p12 without a file prints usage and exits 2" 2 "needs a file name" "usage:"

fresh
if command -v rcodesign >/dev/null 2>&1; then
    skip "sign.sh without rcodesign: this host has a real rcodesign on PATH"
else
    PATH="$bin_nors:$PATH" "$scripts/sign.sh" --p12 "$tmp/cert.p12" "$bundle" >"$tmp/out" 2>&1
    rc=$?
    expect_out "sign.sh without rcodesign says how to install it" 1 "rcodesign is not installed" "cargo install --locked apple-codesign"
fi

# --- shellcheck ---------------------------------------------------------------------------------
if ! command -v shellcheck >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1
fi
if command -v shellcheck >/dev/null 2>&1; then
    if sc=$(cd "$repo" && shellcheck -x scripts/*.sh scripts/lib/mac-common.sh tests/suites/mac-scripts.sh tests/mac-scripts/*.sh 2>&1); then
        pass "shellcheck scripts/*.sh, scripts/lib/mac-common.sh and this suite"
    else
        fail "shellcheck scripts/*.sh, scripts/lib/mac-common.sh and this suite" "$sc"
    fi
else
    fail "shellcheck scripts/*.sh, scripts/lib/mac-common.sh and this suite" "shellcheck is not installed (apt-get install shellcheck)"
fi

report
