#!/usr/bin/env bash
# Tests the Mac scripts (scripts/install.sh, uninstall.sh, status.sh, fix-permissions.sh, sign.sh,
# selftest.sh's refusals) on Linux: each script runs against a fake root directory (TUNNEL_ROOT)
# with the macOS commands replaced on PATH by tests/mac-scripts/fake-mac.sh, a state machine that
# models how macOS treats a new kext: blocked until approved (10.13-10.15: then loaded at once;
# 11+: loadable only after a restart, and then by bundle id only), staged copies, a changed bundle
# approved again, unload on 11+ taking effect at the restart, SIP states, SYSTEM_VERSION_COMPAT,
# Apple silicon with and without Reduced Security, pre-approval, launchd, and the other tun
# drivers (tuntaposx, Tunnelblick) loaded or only installed. The user's actions are the fake's
# fake-approve (clicking Allow) and fake-reboot (restarting).
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

bid=$(sed -n '/<key>CFBundleIdentifier<\/key>/{n;s/.*<string>\(.*\)<\/string>.*/\1/p;}' "$repo/Info.plist")

# --- the fake Mac -------------------------------------------------------------------------------
bin=$tmp/bin
mkdir -p "$bin"
fake_commands="uname sw_vers sysctl id kextload kextunload kextstat kmutil kextcache chown touch launchctl rcodesign csrutil codesign lsof ifconfig fake-approve fake-reboot"
for c in $fake_commands; do ln -s "$fake" "$bin/$c"; done
# The same without rcodesign (sign.sh's "not installed" path) and without codesign (a signature
# install.sh cannot read, so that a load fails for a reason other than approval).
bin_nors=$tmp/bin-no-rcodesign
bin_nocs=$tmp/bin-no-codesign
mkdir -p "$bin_nors" "$bin_nocs"
for c in $fake_commands; do
    [ "$c" = rcodesign ] || ln -s "$fake" "$bin_nors/$c"
    [ "$c" = codesign ] || ln -s "$fake" "$bin_nocs/$c"
done

root=$tmp/root
ext=$root/Library/Extensions
daemons=$root/Library/LaunchDaemons
dest=$ext/tunnel.kext
staged=$root/Library/StagedExtensions/Library/Extensions/tunnel.kext
daemon=$daemons/$bid.plist
export TUNNEL_ROOT=$root FAKE_LOG=$tmp/log FAKE_STATE=$tmp/state TUNNEL_DEV_WAIT=0 FAKE_BUNDLE_ID=$bid

# fresh [MACOS]: an empty fake Mac (nothing installed, loaded or approved) and default knobs.
fresh() {
    rm -rf "$root" "$tmp/state" "$tmp/log" "$tmp/out"
    mkdir -p "$ext" "$daemons" "$root/Library/Logs" "$root/dev" "$root/Applications" "$tmp/state"
    : >"$tmp/log"
    unset FAKE_KERNEL FAKE_ARCH FAKE_ARM64 FAKE_UID FAKE_LOAD_MAKES_DEV FAKE_UNLOAD_RC FAKE_UNLOAD_STAYS \
        FAKE_OTHER_LOADED FAKE_SIP FAKE_SIGNATURE FAKE_LSOF_FILE FAKE_IFCONFIG_DIR FAKE_LAUNCHCTL_RC \
        FAKE_RCODESIGN_RC FAKE_SECURITY FAKE_PREAPPROVED FAKE_CLICK FAKE_TEAM FAKE_SW_VERS_COMPAT SYSTEM_VERSION_COMPAT \
        TUNNEL_OWNER_IDS TUNNEL_P12 TUNNEL_P12_PASSWORD_FILE TUNNEL_NOTARY_API_KEY
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
# other_bundle DIR ID: a bundle of another driver (only its Info.plist matters).
other_bundle() {
    mkdir -p "$1/Contents/MacOS"
    sed "s/$bid/$2/" "$repo/Info.plist" >"$1/Contents/Info.plist"
}

# sh_run SCRIPT ARGS...: runs a script with the fake commands first on PATH; sets rc, output in $tmp/out.
sh_run() {
    local s=$1
    shift
    PATH="$bin:$PATH" "$scripts/$s" "$@" >"$tmp/out" 2>&1
    rc=$?
}
# user ACTION: the user clicks Allow (approve) or restarts (reboot); sets urc, output in $tmp/user.
user() {
    PATH="$bin:$PATH" "$bin/fake-$1" >"$tmp/user" 2>&1
    urc=$?
}
out() { cat "$tmp/out"; }
# actions: the logged calls that change something (queries such as sw_vers or kextstat left out).
actions() {
    grep -vE '^(uname|sw_vers|sysctl|id|kextstat|csrutil|codesign|lsof|ifconfig)( |$)|^kmutil showloaded|^launchctl print' "$tmp/log"
}
clear_log() { : >"$tmp/log"; }
# snapshot: every path under the fake root with its mode and size.
snapshot() { (cd "$root" && find . -exec stat -c '%n %a %s' {} + | sort); }
# no_gw DIR: true when no file under DIR is writable by group or others.
no_gw() { [ -z "$(find "$1" \( -perm -020 -o -perm -002 \) -print)" ]; }
is_loaded() { [ -e "$tmp/state/loaded" ]; }

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
# expect_out NAME RC PATTERN...: the last run exited RC and its output matches every grep -E
# PATTERN; a PATTERN starting with ! must not match.
expect_out() {
    local name=$1 want_rc=$2 p missing=""
    shift 2
    for p in "$@"; do
        case $p in
        !*) ! grep -qE -- "${p#!}" "$tmp/out" || missing="$missing [unwanted: ${p#!}]" ;;
        *) grep -qE -- "$p" "$tmp/out" || missing="$missing [$p]" ;;
        esac
    done
    if [ "$rc" = "$want_rc" ] && [ -z "$missing" ]; then
        pass "$name"
    else
        fail "$name" "exit $rc (expected $want_rc); output problems:${missing:- none}" "output:" "$(out)"
    fi
}
# refused NAME PATTERN...: the last run exited 1, printed every PATTERN and "Nothing was changed",
# issued no action and left the fake root as it was before ($before).
refused() {
    local name=$1
    shift
    local changes=""
    [ -z "$(actions)" ] || changes="commands issued: $(actions | tr '\n' ';')"
    [ "$(snapshot)" = "$before" ] || changes="$changes fake root changed"
    if [ -z "$changes" ]; then expect_out "$name" 1 "$@"; else fail "$name" "$changes" "$(out)"; fi
}
# daemon_check FILE OS: the LaunchDaemon written for macOS OS (10 or 11+), parsed by plistlib.
daemon_check() {
    python3 - "$1" "$2" "$bid" <<'PY' 2>&1
import plistlib, sys
path, os_major, bid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    d = plistlib.load(open(path, "rb"))
except Exception as e:
    print(f"does not parse: {e}"); sys.exit()
errors = []
want = ["/sbin/kextload", "/Library/Extensions/tunnel.kext"] if os_major == 10 else ["/usr/bin/kmutil", "load", "-b", bid]
if d.get("Label") != bid: errors.append(f"Label {d.get('Label')!r} != {bid!r}")
if not path.endswith("/" + bid + ".plist"): errors.append("file name is not LABEL.plist")
if d.get("ProgramArguments") != want: errors.append(f"ProgramArguments {d.get('ProgramArguments')!r}, expected {want!r}")
if "Program" in d: errors.append("has Program")
if d.get("RunAtLoad") is not True: errors.append("RunAtLoad is not true")
if d.get("KeepAlive", False) is not False: errors.append("KeepAlive must not restart a finished load")
print("OK" if not errors else "; ".join(errors))
PY
}

# --- Info.plist ---------------------------------------------------------------------------------
info_check=$(
    python3 - "$repo/Info.plist" <<'PY' 2>&1
import plistlib, sys
info = plistlib.load(open(sys.argv[1], "rb"))
errors = []
def need(cond, msg):
    if not cond: errors.append(msg)
bid = info.get("CFBundleIdentifier")
need(isinstance(bid, str) and 0 < len(bid.encode()) < 64, "CFBundleIdentifier missing or 64 bytes or longer")
need(info.get("CFBundleExecutable") == "tunnel", "CFBundleExecutable is not tunnel")
need(info.get("CFBundlePackageType") == "KEXT", "CFBundlePackageType is not KEXT")
need(info.get("CFBundleInfoDictionaryVersion") == "6.0", "CFBundleInfoDictionaryVersion is not 6.0")
def ver(s): return tuple(int(x) for x in str(s).split("."))
v = info.get("CFBundleVersion")
need(isinstance(v, str) and all(p.isdigit() for p in v.split(".")), f"CFBundleVersion {v!r}")
cv = info.get("OSBundleCompatibleVersion")
if cv is not None and isinstance(v, str): need(ver(cv) <= ver(v), "OSBundleCompatibleVersion > CFBundleVersion")
libs = info.get("OSBundleLibraries")
need(isinstance(libs, dict) and len(libs) > 0, "OSBundleLibraries missing or empty")
need(isinstance(libs, dict) and "com.apple.kpi.private" not in libs, "links com.apple.kpi.private")
need("OSBundleRequired" not in info and "IOKitPersonalities" not in info, "has OSBundleRequired or IOKitPersonalities")
print("INFO-OK" if not errors else "; ".join(errors))
PY
)
case $info_check in *INFO-OK*) pass "Info.plist parses; identifier, executable, package type, versions and libraries are valid" ;;
*) fail "Info.plist parses; identifier, executable, package type, versions and libraries are valid" "$info_check" ;; esac

# --- the fake itself: the model behaves as documented ---------------------------------------------
fresh 12.6
make_bundle "$bundle"
cp -R "$bundle" "$dest"
fk() { PATH="$bin:$PATH" "$bin/$1" "${@:2}" >"$tmp/out" 2>&1; rc=$?; }
fk kmutil load -p "$dest"
m1="$rc $(grep -c 'not approved to load. Please approve using System Preferences' "$tmp/out") $([ -d "$staged" ] && echo staged)"
user approve
fk kmutil load -b "$bid"
m2="$rc $(grep -c 'restart is required' "$tmp/out")"
user reboot
fk kmutil load -p "$dest"
m3=$rc
fk kmutil load -b "$bid"
m4="$rc $(is_loaded && echo loaded)"
fk kmutil unload -b "$bid"
m5="$rc $(is_loaded && echo still-loaded)"
user reboot
m6=$(is_loaded && echo loaded || echo gone)
expect "fake 11+: blocked and staged until approved; approved needs a restart; then loads by id only; unload waits for the restart" \
    "1 1 staged|1 1|1|0 loaded|0 still-loaded|gone" "$m1|$m2|$m3|$m4|$m5|$m6"
echo changed >>"$dest/Contents/Info.plist"
fk kmutil load -b "$bid"
expect "fake 11+: a changed bundle is not approved again by itself" "1 1" "$rc $(grep -c 'not approved' "$tmp/out")"

fresh 10.14.6
cp -R "$bundle" "$dest"
fk kextload "$dest"
m1="$rc $([ -d "$staged" ] && echo staged)"
user approve
m2="$urc $(is_loaded && echo loaded) $([ -e "$root/dev/tun0" ] && echo dev)"
expect "fake 10.14: kextload exits 27 and stages; Allow loads the blocked kext at once" "27 staged|0 loaded dev" "$m1|$m2"
fk kmutil clear-staging
verdict "fake: kmutil clear-staging is refused and recorded" "$([ "$rc" = 99 ] && [ -e "$tmp/state/clear-staging-called" ] && echo 0)"

# --- install.sh on 10.13-10.15: blocked, approved, loaded at once -------------------------------
for v in 10.13.6 10.15.7; do
    fresh "$v"
    sh_run install.sh "$bundle"
    expect "install on macOS $v, first time: exact commands (copy, touch, LaunchDaemon, kextload; launchd runs the job)" \
        "chown -R root:wheel $dest
touch $ext
chown root:wheel $daemon
kextload $dest
launchctl bootstrap system $daemon
kextload /Library/Extensions/tunnel.kext
rc=3" "$(actions)
rc=$rc"
    expect_out "install on macOS $v, blocked: exit 3, says Allow with a real click loads it at once, then status.sh and selftest.sh" 3 \
        "system policy prevents loading" "Security & Privacy" "Allow" "own mouse or" "ignores clicks" "loads at once" \
        "no restart" "scripts/status.sh" "selftest.sh" "Exit status 3" "!Nothing was changed" "!Removed again"
    problems=""
    diff -r "$bundle" "$dest" >/dev/null 2>&1 || problems="$problems bundle-not-copied-identically"
    no_gw "$dest" || problems="$problems group/other-write-left"
    [ "$(stat -c %a "$daemon" 2>/dev/null)" = 644 ] || problems="$problems daemon-mode-not-644"
    [ "$(daemon_check "$daemon" 10)" = OK ] || problems="$problems daemon: $(daemon_check "$daemon" 10)"
    [ -d "$staged" ] || problems="$problems no-staged-copy"
    [ ! -e "$root/dev/tun0" ] || problems="$problems /dev/tun0-exists"
    expect "install on macOS $v, blocked: bundle (go-w) and LaunchDaemon '/sbin/kextload PATH' kept, staged copy, no /dev/tun0" "" "$problems"
    user approve
    sh_run status.sh
    expect_out "status on $v after Allow: loaded, boot loading by launchd, selftest hint" 0 \
        "loaded: +yes, version 1\.0\.0" "boot loading: yes: launchd job $bid runs '/sbin/kextload /Library/Extensions/tunnel.kext'" \
        "devices: +16" "selftest\.sh"
    clear_log
    sh_run install.sh "$bundle"
    expect_out "install on $v again after Allow: already loaded, exit 0, no copy" 0 "already installed" "already loaded" "selftest\.sh"
    [ -z "$(actions)" ]
    verdict "install on $v again after Allow changes nothing" $? "$(actions)"
done

# 10.x: the Team ID stays approved, so a changed bundle of the same developer loads at once.
sh_run uninstall.sh
make_bundle "$tmp/v2/tunnel.kext"
echo "<!-- changed -->" >>"$tmp/v2/tunnel.kext/Contents/Info.plist"
clear_log
sh_run install.sh "$tmp/v2/tunnel.kext"
expect_out "install on 10.15 of a changed bundle by an approved developer: loads at once, /dev/tun0 appeared with it, exit 0" 0 \
    "Installed tunnel\.kext" "appeared with it" "selftest\.sh"

fresh 10.15.7
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
expect_out "install on 10.15 pre-approved (MDM / spctl kext-consent): loads at once, exit 0" 0 "Installed tunnel\.kext"

# --- install.sh on 11+ (Intel): blocked, approved, restart, loaded by id ------------------------
for v in 11.7.10 14.4; do
    fresh "$v"
    sh_run install.sh "$bundle"
    expect "install on macOS $v, first time: exact commands (copy, touch, LaunchDaemon, kmutil load -p; launchd runs kmutil load -b)" \
        "chown -R root:wheel $dest
touch $ext
chown root:wheel $daemon
kmutil load -p $dest
launchctl bootstrap system $daemon
kmutil load -b $bid
rc=3" "$(actions)
rc=$rc"
    case $v in 11.*) pane="System Preferences > Security & Privacy" ;; *) pane="System Settings > Privacy & Security" ;; esac
    expect_out "install on macOS $v, not approved: exit 3 with Allow (real click), restart, status.sh, selftest.sh" 3 \
        "not approved to load" "$pane" "Allow" "own mouse or" "Restart the Mac" "auxiliary" "scripts/status.sh" \
        "selftest\.sh" "Exit status 3" "spctl kext-consent add ABCDE12345" "!Nothing was changed" "!Removed again"
    problems=""
    [ -d "$dest" ] || problems="$problems bundle-removed"
    [ "$(daemon_check "$daemon" 11)" = OK ] || problems="$problems daemon: $(daemon_check "$daemon" 11)"
    [ -d "$staged" ] || problems="$problems no-staged-copy"
    expect "install on macOS $v, not approved: bundle and LaunchDaemon 'kmutil load -b $bid' kept, staged copy" "" "$problems"

    clear_log
    sh_run install.sh "$bundle"
    expect_out "install on $v again before Allow: resumes with kmutil load -b, still exit 3" 3 "already installed" "not approved"
    actions | grep -qx "kmutil load -b $bid" && ! actions | grep -q -e '^chown' -e "load -p"
    verdict "install on $v again: no copy, loads by bundle id" $? "$(actions)"

    user approve
    sh_run install.sh "$bundle"
    expect_out "install on $v after Allow, before the restart: exit 3, restart pending" 3 "restart" "Exit status 3"
    sh_run status.sh
    expect_out "status on $v while pending: installed, not loaded, approval and restart explained, staged copy" 0 \
        "installed: +$dest" "loaded: +no\. If it was installed recently" "restart" "staged copy"

    clear_log
    user reboot
    actions | grep -qx "kmutil load -b $bid" && is_loaded && [ -e "$root/dev/tun0" ]
    verdict "restart on $v: the LaunchDaemon loads tunnel.kext by bundle id, /dev/tun0 appears" $? "$(cat "$tmp/log")"
    sh_run status.sh
    expect_out "status on $v after the restart: loaded, boot loading by launchd (last exit 0)" 0 \
        "loaded: +yes, version 1\.0\.0" "boot loading: yes: launchd job $bid runs '/usr/bin/kmutil load -b $bid'" "!failed"
    sh_run install.sh "$bundle"
    expect_out "install on $v after the restart: already loaded, exit 0" 0 "already loaded"
done

# 11+: uninstall leaves it active until the restart; a changed bundle needs approval and a restart again.
clear_log
sh_run uninstall.sh
expect "uninstall on 14.4: exact commands (kmutil unload -b, bootout, touch; no prune, no clear-staging)" \
    "kmutil unload -b $bid
launchctl bootout system/$bid
touch $ext
rc=0" "$(actions)
rc=$rc"
expect_out "uninstall on 14.4: says it stays active until restart and a reinstall needs the restart" 0 \
    "stays active until the Mac restarts" "reinstalling also needs that restart"
make_bundle "$tmp/v2/tunnel.kext"
echo "<!-- changed -->" >>"$tmp/v2/tunnel.kext/Contents/Info.plist"
before=$(snapshot)
clear_log
sh_run install.sh "$tmp/v2/tunnel.kext"
refused "install on 14.4 after uninstall, before the restart: refused, restart first" "still active" "Restart the Mac" "Nothing was changed"
user reboot
sh_run install.sh "$tmp/v2/tunnel.kext"
expect_out "install on 14.4 of a changed bundle after the restart: approval needed again, exit 3" 3 "not approved"
user approve
user reboot
is_loaded
verdict "changed bundle on 14.4: approved and restarted, loaded at boot" $? "$(cat "$tmp/log")"

# Pre-approved by MDM on 11+: no click, but still the restart.
fresh 12.6
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
expect_out "install on 12.6 pre-approved (MDM): exit 3, restart pending" 3 "restart"
user reboot
is_loaded
verdict "pre-approved on 12.6: loaded after the restart" $? "$(cat "$tmp/log")"

# A synthetic click does nothing.
fresh 13.6
sh_run install.sh "$bundle"
export FAKE_CLICK=synthetic
user approve
expect "a synthetic (remote) click on Allow approves nothing" "1 ignores synthetic" "$urc $(grep -o 'ignores synthetic' "$tmp/user")"

# SYSTEM_VERSION_COMPAT=1: sw_vers says 10.16 on 11+; the scripts ask with SYSTEM_VERSION_COMPAT=0,
# and if the answer is still 10.16, take the version from the Darwin release (uname -r).
fresh 12.6
export SYSTEM_VERSION_COMPAT=1
sh_run install.sh "$bundle"
expect_out "install on 12.6 with SYSTEM_VERSION_COMPAT=1 in the environment: sees macOS 12.6, exit 3" 3 \
    "on macOS 12\.6" "System Preferences > Security & Privacy"
actions | grep -qx "kmutil load -p $dest" && ! actions | grep -q '^kextload'
verdict "install under SYSTEM_VERSION_COMPAT=1 loads with kmutil, not kextload" $? "$(actions)"
fresh 13.6
export FAKE_SW_VERS_COMPAT=1
sh_run install.sh "$bundle"
expect_out "install when sw_vers insists on 10.16: macOS 13 from the Darwin release, kmutil, exit 3" 3 \
    "sw_vers reported 10\.16" "macOS 13\.0" "System Settings > Privacy & Security"
actions | grep -qx "kmutil load -p $dest"
verdict "install when sw_vers insists on 10.16 loads with kmutil" $? "$(actions)"

# --in-place (the installer package placed the bundle): everything after the copy, never removing it.
fresh 12.6
cp -R "$bundle" "$dest"
sh_run install.sh --in-place
expect "install --in-place on 12.6: no copy; touch, LaunchDaemon, kmutil load -p; exit 3" "touch $ext
chown root:wheel $daemon
kmutil load -p $dest
launchctl bootstrap system $daemon
kmutil load -b $bid
rc=3" "$(actions)
rc=$rc"
fresh 10.15.7
cp -R "$bundle" "$dest"
export FAKE_LOAD_MAKES_DEV=0 FAKE_PREAPPROVED=1
sh_run install.sh --in-place
[ -d "$dest" ] && [ ! -e "$daemon" ] && [ "$rc" = 1 ]
verdict "install --in-place when the load fails: keeps the placed bundle, removes its own LaunchDaemon, exit 1" $? \
    "exit $rc" "$(snapshot)" "$(out)"
sh_run install.sh --in-place "$bundle"
expect_out "install --in-place with a BUNDLE is a usage error" 2 "give no BUNDLE"

# --- Apple silicon ----------------------------------------------------------------------------------
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

make_universal "$tmp/uni/tunnel.kext" "$x86_kext" "$arm64e_kext"
fresh 14.5
export FAKE_ARCH=arm64 FAKE_ARM64=1
sh_run install.sh "$tmp/uni/tunnel.kext"
expect_out "install on Apple silicon (Full Security): arm64e slice, Reduced Security steps, exit 3" 3 \
    "arm64e slice will be used" "Reduced Security" "Allow user management of kernel extensions" \
    "Enable system extensions" "If not done yet: Reduced Security" "Exit status 3"
user approve
expect "Apple silicon, Full Security: Allow is not offered (Enable system extensions...)" "1 Enable system extensions" \
    "$urc $(grep -o 'Enable system extensions' "$tmp/user")"
export FAKE_SECURITY=reduced
sh_run install.sh "$tmp/uni/tunnel.kext"
user approve
a=$urc
user reboot
expect "Apple silicon with Reduced Security: Allow, restart, loaded by the LaunchDaemon" "0 loaded" "$a $(is_loaded && echo loaded)"

fresh 14.5
export FAKE_ARCH=arm64 FAKE_ARM64=1 FAKE_UID=501
before=$(snapshot)
sh_run install.sh --dry-run "$tmp/uni/tunnel.kext"
if [ -z "$(actions)" ] && [ "$(snapshot)" = "$before" ]; then
    expect_out "install --dry-run on Apple silicon prints the plan and changes nothing" 0 \
        "would run: cp -R $tmp/uni/tunnel.kext $dest" "would write $daemon, which runs at boot: /usr/bin/kmutil load -b $bid" \
        "would run: kmutil load -p $dest" "Dry run: nothing was changed"
else
    fail "install --dry-run on Apple silicon prints the plan and changes nothing" "$(actions)" "$(out)"
fi

# --- other tun drivers: refused, named, with how to remove them ---------------------------------
for other in net.sf.tuntaposx.tun net.tunnelblick.tun foo.tun; do
    for v in 10.15.7 13.6; do
        fresh "$v"
        export FAKE_OTHER_LOADED=$other
        for n in 0 1 2 3; do : >"$root/dev/tun$n"; done
        case $v in 10.*) un="sudo kextunload -b $other" ;; *) un="sudo kmutil unload -b $other" ;; esac
        before=$(snapshot)
        sh_run install.sh "$bundle"
        refused "install on $v refuses while $other is loaded, naming it and how to unload it" \
            "another tun driver" "$other" "loaded" "$un" "Nothing was changed"
    done
done
fresh 13.6
other_bundle "$ext/tun.kext" net.sf.tuntaposx.tun
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses while tuntaposx is only installed (/Library/Extensions/tun.kext), saying how to remove it" \
    "net\.sf\.tuntaposx\.tun.* installed in /Library/Extensions/tun\.kext" "sudo rm -rf '/Library/Extensions/tun\.kext'" \
    "net\.sf\.tuntaposx" "touch /Library/Extensions"
# This kext makes /dev/tapN too: a tap driver of tuntaposx or Tunnelblick conflicts as well.
for other in net.sf.tuntaposx.tap net.tunnelblick.tap; do
    fresh 13.6
    export FAKE_OTHER_LOADED=$other
    before=$(snapshot)
    sh_run install.sh "$bundle"
    refused "install refuses while the tap driver $other is loaded, naming it" \
        "$other" "loaded" "sudo kmutil unload -b $other" "Nothing was changed"
done
fresh 13.6
other_bundle "$ext/tap.kext" net.sf.tuntaposx.tap
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses while tuntaposx's tap driver is only installed (/Library/Extensions/tap.kext)" \
    "tuntaposx tap driver \(net\.sf\.tuntaposx\.tap\) is installed in /Library/Extensions/tap\.kext" \
    "sudo rm -rf '/Library/Extensions/tap\.kext'"
fresh 14.4
other_bundle "$ext/tunnelblick-tun.kext" net.tunnelblick.tun
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses while Tunnelblick's tun kext is installed in /Library/Extensions" \
    "Tunnelblick's tun driver \(net\.tunnelblick\.tun\) is installed in /Library/Extensions/tunnelblick-tun\.kext" "cUninstall"
fresh 10.14.6
other_bundle "$root/Applications/Tunnelblick.app/Contents/Resources/tun-signed.kext" foo.tun
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses while Tunnelblick.app carries a tun kext (foo.tun) it loads by itself" \
    "foo\.tun" "Tunnelblick\.app/Contents/Resources/tun-signed\.kext" "Tunnelblick loads this copy by itself" "uninstaller"
fresh 13.6
: >"$root/dev/tun0"
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses when /dev/tun0 exists before the load and no known driver is found" \
    "/dev/tun0 already exists" "another driver" "kmutil showloaded"

# --- failures that are not a pending approval: rolled back, and said so ---------------------------
fresh 10.15.7
export FAKE_LOAD_MAKES_DEV=0 FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
expect "install, loaded but no /dev/tun0: unloads again, removes the LaunchDaemon and the bundle" "chown -R root:wheel $dest
touch $ext
chown root:wheel $daemon
kextload $dest
kextunload -b $bid
touch $ext rc=1" "$(actions | grep -v '^launchctl bootout') rc=$rc"
[ ! -e "$dest" ] && [ ! -e "$daemon" ]
verdict "install, loaded but no /dev/tun0: bundle and LaunchDaemon gone" $? "$(snapshot)"
expect_out "install, loaded but no /dev/tun0: explains, lists what it removed and the staged copy macOS keeps, never 'nothing changed'" 1 \
    "tun0 did not appear" "Removed again: $daemon $dest" "StagedExtensions" "kextcache --prune-staging" "!Nothing was changed"

for v in 10.15.7 12.6; do
    fresh "$v"
    export FAKE_SIGNATURE=unsigned FAKE_SIP=enabled
    PATH="$bin_nocs:$PATH" "$scripts/install.sh" "$bundle" >"$tmp/out" 2>&1
    rc=$?
    [ ! -e "$dest" ] && [ ! -e "$daemon" ]
    verdict "install on $v, load refused for its signature (not an approval): bundle and LaunchDaemon removed" $? "$(snapshot)"
    expect_out "install on $v, signature failure: explains the signature, lists what it removed, exit 1" 1 \
        "not because an approval is pending" "Developer ID" "Removed again:" "!Exit status 3" "!Nothing was changed"
done
fresh 12.6
export FAKE_SIGNATURE=unsigned FAKE_SIP=enabled
PATH="$bin_nocs:$PATH" "$scripts/install.sh" --keep-on-failure "$bundle" >"$tmp/out" 2>&1
rc=$?
[ -d "$dest" ] && [ -f "$daemon" ]
verdict "install --keep-on-failure keeps the bundle and the LaunchDaemon after a failed load" $? "$(snapshot)"
expect_out "install --keep-on-failure: says what stays, exit 1" 1 "Kept: $dest and $daemon"

# --- SIP and signatures ----------------------------------------------------------------------------
fresh
export FAKE_SIGNATURE=unsigned FAKE_SIP=enabled
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses an unsigned build while SIP is on, before changing anything" "unsigned" "csrutil disable" "sign\.sh"
fresh 12.6
export FAKE_SIGNATURE=unsigned FAKE_SIP=custom-kext-on
before=$(snapshot)
sh_run install.sh "$bundle"
refused "install refuses an unsigned build under 'unknown (Custom Configuration)' with Kext Signing enabled" "Custom Configuration" "unsigned"
fresh 12.6
export FAKE_SIGNATURE=unsigned FAKE_SIP=custom-kext-off
sh_run install.sh "$bundle"
expect_out "install of an unsigned build under 'unknown (Custom Configuration)' with Kext Signing disabled goes ahead (exit 3)" 3 "not approved"
fresh
export FAKE_SIGNATURE=adhoc FAKE_SIP=disabled
sh_run install.sh "$bundle"
expect "install of an ad-hoc build with SIP off goes ahead to the load" "kextload $dest rc=3" "$(actions | grep "^kextload $dest") rc=$rc"

# --- install.sh: refusals, nothing changed -----------------------------------------------------
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
    expect_out "install --dry-run on 10.15 (no root needed) prints the plan and changes nothing" 0 \
        "would run: cp -R $bundle $dest" "would run: chown -R root:wheel $dest" "would run: kextload $dest" \
        "would write $daemon, which runs at boot: /sbin/kextload /Library/Extensions/tunnel.kext" \
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
sh_run install.sh --dry-run "$tmp/uni/tunnel.kext"
expect_out "install --dry-run on an Intel Mac takes a universal bundle's x86_64 slice" 0 \
    "would run: cp -R $tmp/uni/tunnel.kext $dest"

fresh
make_bundle "$tmp/bad/tunnel.kext"
sed -i "s/$bid/com example\/other/; /<key>OSBundleLibraries<\/key>/,/<\/dict>/d" "$tmp/bad/tunnel.kext/Contents/Info.plist"
before=$(snapshot)
sh_run install.sh "$tmp/bad/tunnel.kext"
refused "install lists every Info.plist problem (identifier, OSBundleLibraries)" \
    "CFBundleIdentifier is 'com example/other'" "OSBundleLibraries is missing"

fresh 13.6
make_bundle "$tmp/other-id/tunnel.kext"
sed -i "s/$bid/com.example.tunnel/" "$tmp/other-id/tunnel.kext/Contents/Info.plist"
sh_run install.sh "$tmp/other-id/tunnel.kext"
[ "$(daemon_check "$daemons/com.example.tunnel.plist" 11 | sed "s/com.example.tunnel/ID/g")" = "Label 'ID' != '$bid'; file name is not LABEL.plist; ProgramArguments ['/usr/bin/kmutil', 'load', '-b', 'ID'], expected ['/usr/bin/kmutil', 'load', '-b', '$bid']" ] &&
    actions | grep -qx "kmutil load -b com.example.tunnel"
verdict "the bundle identifier comes from the bundle's Info.plist: LaunchDaemon label, file name and kmutil -b follow it" $? \
    "$(ls "$daemons")" "$(actions)"

fresh
before=$(snapshot)
sh_run install.sh "$tmp/nowhere/tunnel.kext"
refused "install with a bundle path that does not exist says how to build one" "no bundle at" "scripts/build.sh"

fresh
sh_run install.sh --frobnicate
expect_out "install with an unknown option prints usage and exits 2" 2 "unknown option '--frobnicate'" "usage:"

fresh 10.15.7
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
make_bundle "$tmp/v2/tunnel.kext"
echo "<!-- changed -->" >>"$tmp/v2/tunnel.kext/Contents/Info.plist"
clear_log
before=$(snapshot)
sh_run install.sh "$tmp/v2/tunnel.kext"
refused "install refuses when a different tunnel.kext is already installed, pointing to uninstall.sh" \
    "different tunnel\.kext is already installed" "uninstall\.sh"

# --- uninstall.sh -------------------------------------------------------------------------------
lsof_openvpn=$tmp/lsof-openvpn
printf 'p321\ncopenvpn\nLroot\nf5\nn%s\np4711\ncmiredo\nL_miredo\nf3\nn%s\n' "$root/dev/tun0" "$root/dev/tun3" >"$lsof_openvpn"

fresh 10.15.7
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
clear_log
sh_run uninstall.sh
expect "uninstall on 10.15: exact commands (kextunload, bootout, touch, kextcache --prune-staging)" "kextunload -b $bid
launchctl bootout system/$bid
touch $ext
kextcache --prune-staging
rc=0" "$(actions)
rc=$rc"
if [ ! -e "$dest" ] && [ ! -e "$daemon" ] && [ ! -e "$root/dev/tun0" ] && [ ! -e "$staged" ]; then
    expect_out "uninstall on 10.15: removes bundle, LaunchDaemon and the staged copy, and reports them" 0 \
        "Removed:" "unloaded $bid" "$daemon" "$dest" "!restart"
else
    fail "uninstall on 10.15: removes bundle, LaunchDaemon and the staged copy, and reports them" "$(snapshot)"
fi

fresh 13.6
export FAKE_PREAPPROVED=1 FAKE_UNLOAD_STAYS=0
sh_run install.sh "$bundle"
user reboot
sh_run uninstall.sh
expect_out "uninstall on 13.6 when the unload takes effect at once: still says to restart before reinstalling" 0 \
    "unloaded $bid" "restart the Mac to finish"

fresh
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
clear_log
export FAKE_LSOF_FILE=$lsof_openvpn
before=$(snapshot)
sh_run uninstall.sh
refused "uninstall refuses while units are open, naming the processes" \
    "in use" "$root/dev/tun0 is open by openvpn \(pid 321, user root\)" "$root/dev/tun3 is open by miredo \(pid 4711"
grep -q "^lsof -F pcLn $root/dev/tun0 $root/dev/tun1 .*$root/dev/tun15\$" "$tmp/log"
verdict "uninstall asks lsof about every /dev/tunN" $? "$(cat "$tmp/log")"

fresh
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
clear_log
export FAKE_UNLOAD_RC=1
before=$(snapshot)
sh_run uninstall.sh
expect "uninstall when the kext refuses to unload: tries once, removes nothing" \
    "kextunload -b $bid rc=1" "$(actions) rc=$rc"
if [ "$(snapshot)" = "$before" ]; then
    expect_out "uninstall when unloading fails explains and keeps everything" 1 "Nothing was removed"
else
    fail "uninstall when unloading fails explains and keeps everything" "$(snapshot)"
fi

fresh
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
clear_log
before=$(snapshot)
sh_run uninstall.sh --dry-run
if [ -z "$(actions)" ] && [ "$(snapshot)" = "$before" ]; then
    expect_out "uninstall --dry-run prints the plan and changes nothing" 0 \
        "would run: kextunload -b $bid" "would run: rm -rf $dest" "would run: rm -f $daemon" \
        "would run: touch $ext" "would run: kextcache --prune-staging"
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
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
export FAKE_UID=501
sh_run uninstall.sh
expect_out "uninstall without root refuses and says to use sudo" 1 "sudo"

# --- status.sh ----------------------------------------------------------------------------------
fresh 10.13.6
sh_run status.sh
expect_out "status with nothing installed" 0 "installed: +no" "loaded: +no" "boot loading: no" "devices: +none" "interfaces: +none"

fresh 11.7.10
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
user reboot
export FAKE_LSOF_FILE=$lsof_openvpn FAKE_IFCONFIG_DIR=$tmp/ifconfig
mkdir -p "$FAKE_IFCONFIG_DIR"
printf 'tun0: flags=8851<UP,POINTOPOINT,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n\tinet 10.8.0.1 --> 10.8.0.2 netmask 0xffffffff\n\topen (pid 321)\n' >"$FAKE_IFCONFIG_DIR/tun0"
clear_log
sh_run status.sh
expect_out "status on 11: loaded version, boot loading from launchd, open units with processes, interfaces" 0 \
    "installed: +$dest, version 1\.0\.0" "loaded: +yes, version 1\.0\.0" "boot loading: yes: launchd job" "devices: +16" \
    "$root/dev/tun0 is open by openvpn \(pid 321, user root\)" "tun0: flags=8851<UP" "inet 10\.8\.0\.1 --> 10\.8\.0\.2" "open \(pid 321\)"
grep -q "^kmutil showloaded -b $bid" "$tmp/log" && grep -qx "launchctl print system/$bid" "$tmp/log" &&
    grep -qx "launchctl print-disabled system" "$tmp/log" && [ -z "$(actions)" ]
verdict "status on 11 asks kmutil and launchd (print, print-disabled) and changes nothing" $? "$(cat "$tmp/log")"
export FAKE_UID=501
sh_run status.sh
expect_out "status without root says only your own processes are visible" 0 "not root"
unset FAKE_UID
PATH="$bin:$PATH" launchctl disable "system/$bid"
sh_run status.sh
expect_out "status when the LaunchDaemon is switched off (Login Items / launchctl disable): boot loading no, says how to turn it on" 0 \
    "boot loading: no: launchd has the LaunchDaemon $bid disabled" "Login Items" "launchctl enable system/$bid" "!boot loading: yes"

fresh 12.6
export FAKE_PREAPPROVED=1
sh_run install.sh "$bundle"
python3 - "$daemon" <<'PY'
import plistlib, sys
d = plistlib.load(open(sys.argv[1], "rb"))
d["ProgramArguments"] = ["/bin/sh", "-c", "kmutil load -p /Library/Extensions/tunnel.kext"]
plistlib.dump(d, open(sys.argv[1], "wb"))
PY
sh_run status.sh
expect_out "status flags a LaunchDaemon whose program is wrong for this macOS (old shell wrapper)" 0 \
    "boot loading: no: the LaunchDaemon .* runs '/bin/sh -c" "install\.sh again"
sh_run install.sh "$bundle"
[ "$(daemon_check "$daemon" 12)" = OK ]
verdict "install.sh again rewrites a wrong LaunchDaemon for this macOS" $? "$(daemon_check "$daemon" 12)"

fresh 14.4
export FAKE_OTHER_LOADED=net.tunnelblick.tun
: >"$root/dev/tun0"
other_bundle "$ext/tun.kext" net.sf.tuntaposx.tun
sh_run status.sh
expect_out "status lists other tun drivers (loaded and installed) and devices made by another driver" 0 \
    "other tun drivers" "net\.tunnelblick\.tun\) is loaded" "net\.sf\.tuntaposx\.tun\) is installed in /Library/Extensions/tun\.kext" \
    "made by another driver"

# --- rules checked over the scripts themselves --------------------------------------------------
cs=$(cd "$repo" && grep -n 'clear-staging' scripts/*.sh scripts/lib/*.sh | grep -vE '^[^:]+:[0-9]+:[[:space:]]*#' | grep -v 'never runs')
verdict "no script runs 'kmutil clear-staging'" "$([ -z "$cs" ] && echo 0)" "$cs"
ls "$tmp"/state/shell-wrapped-* >/dev/null 2>&1 && wrapped=1 || wrapped=0
sh=$(cd "$repo" && grep -n '/bin/sh' scripts/lib/mac-common.sh scripts/install.sh)
verdict "no LaunchDaemon is wrapped in a shell (the scripts never write one; launchd never ran one in this suite)" \
    "$([ -z "$sh" ] && [ "$wrapped" = 0 ] && echo 0)" "$sh"
grep -q 'Exit status:' "$scripts/install.sh" && grep -qE '^#   3 +installed, but approval or a restart is pending' "$scripts/install.sh" &&
    grep -qiE 'exit status[^.]*3|3.*approval or (a )?restart' "$repo/README.md"
verdict "install.sh and the README document exit status 3 (approval or restart pending)" $?

# --- selftest.sh: its refusals on the fake Mac ---------------------------------------------------
fresh 13.6
export FAKE_KERNEL=Linux
sh_run selftest.sh
expect_out "selftest on a non-Mac without test hooks refuses" 1 "not macOS"
fresh 13.6
export FAKE_UID=501
sh_run selftest.sh
expect_out "selftest without root refuses and says to use sudo" 1 "sudo"
fresh 13.6
sh_run selftest.sh
expect_out "selftest with tunnel.kext not loaded: says so, points to status.sh, exit 1" 1 "not loaded" "status\.sh"

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
# The host may have a real rcodesign (scripts/lib/deps.sh installs one for the package suite):
# drop every PATH entry that holds one.
path_nors=$bin_nors
IFS=: read -ra path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
    [ -n "$d" ] && [ ! -x "$d/rcodesign" ] && path_nors="$path_nors:$d"
done
PATH="$path_nors" "$scripts/sign.sh" --p12 "$tmp/cert.p12" "$bundle" >"$tmp/out" 2>&1
rc=$?
expect_out "sign.sh without rcodesign says how to install it" 1 "rcodesign is not installed" "cargo install --locked apple-codesign"

# --- shellcheck ---------------------------------------------------------------------------------
if ! command -v shellcheck >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null 2>&1
fi
if command -v shellcheck >/dev/null 2>&1; then
    if sc=$(cd "$repo" && shellcheck -x scripts/*.sh scripts/lib/mac-common.sh tests/suites/mac-scripts.sh \
        tests/suites/selftest.sh tests/mac-scripts/*.sh tests/selftest/*.sh 2>&1); then
        pass "shellcheck -x: scripts/*.sh (selftest.sh as POSIX sh), mac-common.sh, the fakes and these suites"
    else
        fail "shellcheck -x: scripts/*.sh (selftest.sh as POSIX sh), mac-common.sh, the fakes and these suites" "$sc"
    fi
else
    fail "shellcheck scripts/*.sh, scripts/lib/mac-common.sh and this suite" "shellcheck is not installed (apt-get install shellcheck)"
fi

report
