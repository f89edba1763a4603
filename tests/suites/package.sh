#!/usr/bin/env bash
# Tests the installer package (scripts/package.sh, pkg-build, scripts/pkg/, sign.sh --pkg) on
# Linux by taking the .pkg apart with readers that share no code with its writer:
#   bsdtar (libarchive)         the XAR, and the Payload and Scripts cpio archives
#   tests/package/lsbom.py      the Bom, read from the format description; coreutils cksum
#   python3 xml.etree           Distribution and PackageInfo
#   duk (duktape)               the Distribution's installation check, run against a fake system
#   tests/package/xar_signature.py + openssl
#                               the signature rcodesign adds: checksum, RSA and CMS signatures,
#                               certificate chain (a CA made here; no network)
# The package's scripts run on the fake Mac of tests/suites/mac-scripts.sh
# (tests/mac-scripts/fake-mac.sh), and postinstall must issue the same commands as install.sh
# after its copy step. Two builds from the same input must be byte-identical.
#
# Prints one PASS/FAIL/SKIP line per check and ends with "N passed, N failed[, N skipped]".
# Run from anywhere: bash tests/suites/package.sh
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
scripts=$repo/scripts
readers=$repo/tests/package
tmp=$(mktemp -d "${TMPDIR:-/tmp}/package-suite.XXXXXX") || { echo "FAIL cannot create a temp dir"; echo "0 passed, 1 failed"; exit 1; }
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=tests/suites/lib/report.sh
. "$repo/tests/suites/lib/report.sh"
# shellcheck source=scripts/lib/deps.sh
. "$repo/scripts/lib/deps.sh"
ensure_package_deps >/dev/null 2>&1 || true

have() { command -v "$1" >/dev/null 2>&1; }
missing_tools=""
for t in bsdtar python3 cksum; do have "$t" || missing_tools="$missing_tools $t"; done
if [ -n "$missing_tools" ]; then
    fail "the readers this suite needs are installed (scripts/lib/deps.sh ensure_package_deps)" "missing:$missing_tools"
    finish
fi

# --- fake bundles -------------------------------------------------------------------------------
# make_kext DIR VERSION ARCH...: a tunnel.kext with the repo's Info.plist (CFBundleVersion set to
# VERSION) and an executable holding one kext Mach-O header per ARCH (x86_64, arm64e): thin for
# one, universal for more.
make_kext() {
    local b=$1 version=$2
    shift 2
    rm -rf "$b"
    mkdir -p "$b/Contents/MacOS"
    sed "/<key>CFBundleVersion<\/key>/{n;s/<string>[^<]*</<string>$version</;}" "$repo/Info.plist" >"$b/Contents/Info.plist"
    python3 - "$b/Contents/MacOS/tunnel" "$@" <<'PY'
import struct, sys
kinds = {"x86_64": (0x01000007, 3), "arm64e": (0x0100000C, 0xC0000002)}
def thin(arch):
    cpu, sub = kinds[arch]
    return struct.pack("<IIII", 0xFEEDFACF, cpu, sub, 0xB).ljust(4096, b"\0")
archs = sys.argv[2:]
if len(archs) == 1:
    data = thin(archs[0])
else:
    data = struct.pack(">II", 0xCAFEBABE, len(archs))
    for i, a in enumerate(archs):
        data += struct.pack(">IIIII", kinds[a][0], kinds[a][1], 4096 * (i + 1), 4096, 12)
    data = data.ljust(4096, b"\0") + b"".join(thin(a) for a in archs)
open(sys.argv[1], "wb").write(data)
PY
}
# On purpose: group-writable files and an executable bit, which the package must not keep.
make_kext "$tmp/universal/tunnel.kext" 9.8.7 x86_64 arm64e
chmod -R g+w "$tmp/universal/tunnel.kext"
chmod 755 "$tmp/universal/tunnel.kext/Contents/MacOS/tunnel"
make_kext "$tmp/intel/tunnel.kext" 9.8.7 x86_64
make_kext "$tmp/silicon/tunnel.kext" 9.8.7 arm64e

export SOURCE_DATE_EPOCH=1700000000
# package BUNDLE OUTDIR: runs scripts/package.sh; sets rc, its output in $tmp/out.
package() {
    mkdir -p "$2"
    "$scripts/package.sh" --out-dir "$2" "$1" >"$tmp/out" 2>&1
    rc=$?
}
out() { cat "$tmp/out"; }

package "$tmp/universal/tunnel.kext" "$tmp/a"
pkg=$tmp/a/tunnel-9.8.7.pkg
if [ "$rc" = 0 ] && [ -f "$pkg" ] && grep -q "wrote $pkg" "$tmp/out"; then
    pass "package.sh writes tunnel-<CFBundleVersion>.pkg (tunnel-9.8.7.pkg)"
else
    fail "package.sh writes tunnel-<CFBundleVersion>.pkg (tunnel-9.8.7.pkg)" "rc=$rc" "$(out)"
    finish
fi

# --- the product archive, as bsdtar lists it ----------------------------------------------------
listing=$(bsdtar -tf "$pkg" 2>&1)
want="Distribution
Resources
Resources/en.lproj
Resources/en.lproj/conclusion.html
tunnel.pkg
tunnel.pkg/Bom
tunnel.pkg/Payload
tunnel.pkg/Scripts
tunnel.pkg/PackageInfo"
if [ "$listing" = "$want" ]; then
    pass "bsdtar lists the product archive: Distribution, conclusion page, tunnel.pkg/{Bom,Payload,Scripts,PackageInfo}"
else
    fail "bsdtar lists the product archive: Distribution, conclusion page, tunnel.pkg/{Bom,Payload,Scripts,PackageInfo}" "$listing"
fi
mkdir -p "$tmp/x"
bsdtar -xf "$pkg" -C "$tmp/x" 2>"$tmp/x.err" || fail "bsdtar extracts the product archive" "$(cat "$tmp/x.err")"

# --- Distribution -------------------------------------------------------------------------------
# xml_check FILE PYTHON-EXPRESSIONS...: each expression (over the parsed root element `r`) must
# be true; prints the false ones.
xml_check() {
    python3 - "$@" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
bad = [e for e in sys.argv[2:] if not eval(e, {"r": r})]
print("\n".join("false: " + e for e in bad))
sys.exit(1 if bad else 0)
PY
}
dist=$tmp/x/Distribution
if msg=$(xml_check "$dist" \
    "r.tag == 'installer-gui-script'" \
    "r.find('volume-check/allowed-os-versions/os-version').get('min') == '10.13'" \
    "r.find('installation-check').get('script') == 'tunnelInstallationCheck()'" \
    "'function tunnelInstallationCheck()' in r.find('script').text" \
    "r.find('options').get('hostArchitectures') == 'x86_64,arm64'" \
    "r.find('domains').get('enable_localSystem') == 'true' and r.find('domains').get('enable_anywhere') == 'false' and r.find('domains').get('enable_currentUserHome') == 'false'" \
    "r.find('pkg-ref[@version]').get('id') == 'org.tunnelkext.tunnel.pkg' and r.find('pkg-ref[@version]').text == '#tunnel.pkg'" \
    "r.find('pkg-ref[@version]').get('version') == '9.8.7'" \
    "r.find('conclusion').get('file') == 'conclusion.html'" \
    "r.find('choice[@id=\"org.tunnelkext.tunnel.pkg\"]/pkg-ref').get('id') == 'org.tunnelkext.tunnel.pkg'"); then
    pass "Distribution: macOS >= 10.13 (allowed-os-versions), the installation check, both host architectures, the component, the conclusion page"
else
    fail "Distribution: macOS >= 10.13 (allowed-os-versions), the installation check, both host architectures, the component, the conclusion page" "$msg"
fi

# js_check PKG_DISTRIBUTION MACOS ARM64(0|1): runs the installation check under duktape with a
# fake Installer `system`; prints "true" or "false|TYPE|TITLE|MESSAGE".
js_check() {
    {
        python3 -c 'import sys, xml.etree.ElementTree as ET; print(ET.parse(sys.argv[1]).getroot().find("script").text)' "$1"
        cat <<JS
var my = { result: {} };
var system = {
    version: { ProductVersion: '$2' },
    sysctl: function (name) { return (name == 'hw.optional.arm64' && $3) ? 1 : undefined; },
    compareVersions: function (a, b) {
        var x = a.split('.'), y = b.split('.');
        for (var i = 0; i < Math.max(x.length, y.length); i++) {
            var p = parseInt(x[i] || '0', 10), q = parseInt(y[i] || '0', 10);
            if (p != q) { return p < q ? -1 : 1; }
        }
        return 0;
    }
};
var ok = tunnelInstallationCheck();
print(ok ? 'true' : ['false', my.result.type, my.result.title, my.result.message].join('|'));
JS
    } >"$tmp/check.js"
    duk "$tmp/check.js" 2>&1
}
# js_case NAME DISTRIBUTION MACOS ARM64 EXPECT-REGEX
js_case() {
    local got
    got=$(js_check "$2" "$3" "$4")
    if printf '%s\n' "$got" | grep -qE "$5"; then pass "$1"; else fail "$1" "got: $got" "want: $5"; fi
}
if have duk; then
    js_case "installation check: macOS 10.12.6 is refused, naming 10.13 and the Mac's version" \
        "$dist" 10.12.6 0 '^false\|Fatal\|macOS 10\.13 or later is required\|.*This Mac has macOS 10\.12\.6\.$'
    js_case "installation check: macOS 10.13 on Intel is accepted" "$dist" 10.13 0 '^true$'
    js_case "installation check: macOS 14.5 on Apple silicon is accepted (universal bundle)" "$dist" 14.5 1 '^true$'
    package "$tmp/intel/tunnel.kext" "$tmp/intel-pkg"
    bsdtar -xOf "$tmp/intel-pkg/tunnel-9.8.7.pkg" Distribution >"$tmp/intel.dist"
    js_case "installation check: an x86_64-only bundle is refused on Apple silicon, saying it has no arm64e code" \
        "$tmp/intel.dist" 12.6 1 '^false\|Fatal\|[^|]*cannot be installed on a Mac with Apple silicon\|.*no arm64e code'
    js_case "installation check: an x86_64-only bundle is accepted on Intel 10.15.7" "$tmp/intel.dist" 10.15.7 0 '^true$'
    package "$tmp/silicon/tunnel.kext" "$tmp/silicon-pkg"
    bsdtar -xOf "$tmp/silicon-pkg/tunnel-9.8.7.pkg" Distribution >"$tmp/silicon.dist"
    js_case "installation check: an arm64e-only bundle is refused on Intel, saying it has no x86_64 code" \
        "$tmp/silicon.dist" 13.0 0 '^false\|Fatal\|[^|]*cannot be installed on an Intel Mac\|.*no x86_64 code'
else
    skip "installation check under duktape: duk is not installed (apt-get install duktape)"
fi

# --- PackageInfo --------------------------------------------------------------------------------
payload_list=$(bsdtar -tvf "$tmp/x/tunnel.pkg/Payload" --numeric-owner 2>&1)
n_payload=$(printf '%s\n' "$payload_list" | grep -c .)
if msg=$(xml_check "$tmp/x/tunnel.pkg/PackageInfo" \
    "r.tag == 'pkg-info' and r.get('format-version') == '2'" \
    "r.get('identifier') == 'org.tunnelkext.tunnel.pkg' and r.get('version') == '9.8.7'" \
    "r.get('install-location') == '/' and r.get('auth') == 'root' and r.get('relocatable') == 'false'" \
    "r.find('scripts/preinstall').get('file') == './preinstall' and r.find('scripts/postinstall').get('file') == './postinstall'" \
    "r.find('payload').get('numberOfFiles') == '$n_payload'" \
    "r.find('relocate') is not None and len(list(r.find('relocate'))) == 0"); then
    pass "PackageInfo: identifier, version, install location /, root, not relocatable, both hooks, numberOfFiles = payload entries ($n_payload)"
else
    fail "PackageInfo: identifier, version, install location /, root, not relocatable, both hooks, numberOfFiles = payload entries ($n_payload)" "$msg"
fi

# --- Payload: every path, mode and owner --------------------------------------------------------
# ls_columns: bsdtar -tv lines ("mode links uid gid size month day year|time name") reduced to
# "mode uid:gid name".
ls_columns() {
    awk '{ name = $0; for (i = 0; i < 8; i++) sub(/^[^ ]+ +/, "", name); print $1, $3 ":" $4, name }'
}
# bsdtar's "mode links uid gid size date name" columns, reduced to "mode uid:gid name".
payload_modes=$(printf '%s\n' "$payload_list" | ls_columns)
support='./Library/Application Support/tunnel.kext'
{
    echo "drwxr-xr-x 0:0 ."
    echo "drwxr-xr-x 0:0 ./Library"
    echo "drwxr-xr-x 0:80 ./Library/Application Support"
    echo "drwxr-xr-x 0:0 $support"
    echo "drwxr-xr-x 0:0 $support/scripts"
    ! grep -q 'lib/' "$scripts/uninstall.sh" "$scripts/status.sh" "$scripts/selftest.sh" 2>/dev/null || echo "drwxr-xr-x 0:0 $support/scripts/lib"
    for f in $(cd "$scripts/lib" && LC_ALL=C ls); do
        if grep -qF "lib/$f" "$scripts/uninstall.sh" "$scripts/status.sh" "$scripts/selftest.sh" "$scripts/lib/mac-common.sh" 2>/dev/null; then
            if [ -x "$scripts/lib/$f" ]; then echo "-rwxr-xr-x 0:0 $support/scripts/lib/$f"; else echo "-rw-r--r-- 0:0 $support/scripts/lib/$f"; fi
        fi
    done
    for s in selftest.sh status.sh uninstall.sh; do
        [ -f "$scripts/$s" ] && echo "-rwxr-xr-x 0:0 $support/scripts/$s"
    done
    echo "drwxr-xr-x 0:0 ./Library/Extensions"
    (cd "$tmp/universal" && find tunnel.kext | LC_ALL=C sort | while IFS= read -r p; do
        if [ -d "$p" ]; then echo "drwxr-xr-x 0:0 ./Library/Extensions/$p"; else echo "-rw-r--r-- 0:0 ./Library/Extensions/$p"; fi
    done)
} >"$tmp/payload.want"
if [ "$payload_modes" = "$(cat "$tmp/payload.want")" ]; then
    pass "Payload: every path, mode and owner (kext root:wheel 0755/0644 whatever the build's bits; support scripts 0755; /Library/Application Support root:admin)"
else
    fail "Payload: every path, mode and owner (kext root:wheel 0755/0644 whatever the build's bits; support scripts 0755; /Library/Application Support root:admin)" \
        "$(diff <(printf '%s\n' "$payload_modes") "$tmp/payload.want")"
fi
mkdir -p "$tmp/installed"
bsdtar -xpf "$tmp/x/tunnel.pkg/Payload" -C "$tmp/installed" --numeric-owner 2>/dev/null
same=1
diff -r "$tmp/universal/tunnel.kext" "$tmp/installed/Library/Extensions/tunnel.kext" >/dev/null || same=0
for s in selftest.sh status.sh uninstall.sh; do
    [ ! -f "$scripts/$s" ] || cmp -s "$scripts/$s" "$tmp/installed/Library/Application Support/tunnel.kext/scripts/$s" || same=0
done
if [ "$same" = 1 ]; then
    pass "Payload: the kext's files and the support scripts are byte for byte the inputs"
else
    fail "Payload: the kext's files and the support scripts are byte for byte the inputs"
fi

# --- Bom against the payload --------------------------------------------------------------------
# payload_as_lsbom DIR: what lsbom prints for the files bsdtar extracted into DIR, from bsdtar's
# own listing (mode, owner) and coreutils (size, cksum).
# mode_octal drwxr-xr-x: 40755 (type bits and permission bits, as lsbom prints a mode).
mode_octal() {
    local p=$1 i v=0
    for i in 1 2 3 4 5 6 7 8 9; do
        v=$((v * 2))
        [ "${p:i:1}" = - ] || v=$((v + 1))
    done
    if [ "${p:0:1}" = d ]; then v=$((v | 0x4000)); else v=$((v | 0x8000)); fi
    printf '%o' "$v"
}
payload_as_lsbom() {
    printf '%s\n' "$2" | while IFS= read -r line; do
        perm=${line%% *}
        rest=${line#* }
        owner=${rest%% *}
        name=${rest#* }
        bits=$(mode_octal "$perm")
        if [ "${perm:0:1}" = d ]; then
            printf '%s\t%s\t%s\n' "$name" "$bits" "${owner/:/\/}"
        else
            read -r sum size _ < <(cksum "$1/$name")
            printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$bits" "${owner/:/\/}" "$size" "$sum"
        fi
    done | LC_ALL=C sort
}
if bom=$(python3 "$readers/lsbom.py" "$tmp/x/tunnel.pkg/Bom" 2>&1); then
    if [ "$(printf '%s\n' "$bom" | LC_ALL=C sort)" = "$(payload_as_lsbom "$tmp/installed" "$payload_modes")" ]; then
        pass "Bom agrees with the Payload: paths, modes, uid/gid, sizes, cksum ($(printf '%s\n' "$bom" | wc -l) paths, read by tests/package/lsbom.py)"
    else
        fail "Bom agrees with the Payload: paths, modes, uid/gid, sizes, cksum" \
            "$(diff <(printf '%s\n' "$bom" | LC_ALL=C sort) <(payload_as_lsbom "$tmp/installed" "$payload_modes"))"
    fi
else
    fail "Bom agrees with the Payload: paths, modes, uid/gid, sizes, cksum" "$bom"
fi

# A bundle of 600 files: the Bom's Paths tree needs more than one leaf.
make_kext "$tmp/big/tunnel.kext" 1.0.0 x86_64
mkdir -p "$tmp/big/tunnel.kext/Contents/Resources"
for i in $(seq 1 600); do printf 'resource %s\n' "$i" >"$tmp/big/tunnel.kext/Contents/Resources/r$i.txt"; done
package "$tmp/big/tunnel.kext" "$tmp/big-pkg"
mkdir -p "$tmp/big-x" "$tmp/big-installed"
bsdtar -xf "$tmp/big-pkg/tunnel-1.0.0.pkg" -C "$tmp/big-x" 2>/dev/null
bsdtar -xpf "$tmp/big-x/tunnel.pkg/Payload" -C "$tmp/big-installed" --numeric-owner 2>/dev/null
big_modes=$(bsdtar -tvf "$tmp/big-x/tunnel.pkg/Payload" --numeric-owner 2>/dev/null | ls_columns)
if big_bom=$(python3 "$readers/lsbom.py" "$tmp/big-x/tunnel.pkg/Bom" 2>&1) &&
    [ "$(printf '%s\n' "$big_bom" | LC_ALL=C sort)" = "$(payload_as_lsbom "$tmp/big-installed" "$big_modes")" ]; then
    pass "Bom of a 600-file bundle (several leaves, linked both ways) agrees with its Payload"
else
    fail "Bom of a 600-file bundle (several leaves, linked both ways) agrees with its Payload" "$(printf '%s\n' "$big_bom" | tail -n 3)"
fi

# --- Scripts ------------------------------------------------------------------------------------
scripts_modes=$(bsdtar -tvf "$tmp/x/tunnel.pkg/Scripts" --numeric-owner 2>&1 | ls_columns)
mkdir -p "$tmp/pkgscripts"
bsdtar -xpf "$tmp/x/tunnel.pkg/Scripts" -C "$tmp/pkgscripts" 2>/dev/null
ok=1
for s in preinstall postinstall install.sh; do
    printf '%s\n' "$scripts_modes" | grep -qxF -- "-rwxr-xr-x 0:0 ./$s" || ok=0
done
cmp -s "$tmp/pkgscripts/preinstall" "$scripts/pkg/preinstall" || ok=0
cmp -s "$tmp/pkgscripts/postinstall" "$scripts/pkg/postinstall" || ok=0
cmp -s "$tmp/pkgscripts/install.sh" "$scripts/install.sh" || ok=0
cmp -s "$tmp/pkgscripts/lib/mac-common.sh" "$scripts/lib/mac-common.sh" || ok=0
if [ "$ok" = 1 ]; then
    pass "Scripts: preinstall, postinstall and install.sh executable (0755 root:wheel), with lib/mac-common.sh, byte for byte the repository's"
else
    fail "Scripts: preinstall, postinstall and install.sh executable (0755 root:wheel), with lib/mac-common.sh, byte for byte the repository's" "$scripts_modes"
fi

# shellcheck source=tests/package/fake-mac-checks.sh
. "$readers/fake-mac-checks.sh"

# --- reproducible -------------------------------------------------------------------------------
# The same input from another directory, with other file times, modes and umask: the same bytes.
mkdir -p "$tmp/copy"
cp -r "$tmp/universal/tunnel.kext" "$tmp/copy/"
touch -d '2011-11-11 11:11' "$tmp/copy/tunnel.kext/Contents/Info.plist"
chmod -R g-w,o+w "$tmp/copy/tunnel.kext"
(umask 077 && package "$tmp/copy/tunnel.kext" "$tmp/b")
if cmp -s "$pkg" "$tmp/b/tunnel-9.8.7.pkg"; then
    pass "reproducible: built twice (other directory, file times, modes, umask) the package is byte-identical ($(wc -c <"$pkg") bytes)"
else
    fail "reproducible: built twice (other directory, file times, modes, umask) the package is byte-identical" \
        "$(cmp "$pkg" "$tmp/b/tunnel-9.8.7.pkg")"
fi
SOURCE_DATE_EPOCH=1700000001 package "$tmp/universal/tunnel.kext" "$tmp/c"
if ! cmp -s "$pkg" "$tmp/c/tunnel-9.8.7.pkg" &&
    TZ=UTC bsdtar -tvf "$tmp/x/tunnel.pkg/Payload" | grep -q 'Nov 14  2023'; then
    pass "reproducible: every time in the package is SOURCE_DATE_EPOCH (another one gives other bytes)"
else
    fail "reproducible: every time in the package is SOURCE_DATE_EPOCH (another one gives other bytes)"
fi

# --- refusals of package.sh ---------------------------------------------------------------------
package "$tmp/nowhere/tunnel.kext" "$tmp/d"
if [ "$rc" = 1 ] && grep -q "no bundle at $tmp/nowhere/tunnel.kext" "$tmp/out" && grep -q "scripts/build.sh" "$tmp/out"; then
    pass "package.sh without a bundle says how to build one"
else
    fail "package.sh without a bundle says how to build one" "rc=$rc" "$(out)"
fi
mv "$tmp/intel/tunnel.kext" "$tmp/intel/other.kext"
package "$tmp/intel/other.kext" "$tmp/d"
if [ "$rc" = 1 ] && grep -q "must be named tunnel.kext" "$tmp/out"; then
    pass "package.sh refuses a bundle not named tunnel.kext"
else
    fail "package.sh refuses a bundle not named tunnel.kext" "rc=$rc" "$(out)"
fi

# shellcheck source=tests/package/signing-checks.sh
. "$readers/signing-checks.sh"

# --- shellcheck ---------------------------------------------------------------------------------
if have shellcheck; then
    if sc=$(cd "$repo" && shellcheck -x scripts/package.sh scripts/sign.sh scripts/release.sh scripts/pkg/preinstall scripts/pkg/postinstall \
        tests/suites/package.sh tests/package/fake-mac-checks.sh tests/package/signing-checks.sh 2>&1); then
        pass "shellcheck -x: package.sh, sign.sh, the package's hooks and this suite"
    else
        fail "shellcheck -x: package.sh, sign.sh, the package's hooks and this suite" "$sc"
    fi
else
    skip "shellcheck: not installed (apt-get install shellcheck)"
fi

finish
