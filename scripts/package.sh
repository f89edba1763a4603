#!/usr/bin/env bash
# Writes target/tunnel-<version>.pkg: the installer package a Mac user double-clicks. Runs on
# Linux (no Mac, no Xcode); pkg-build (a workspace member) writes the product archive.
#
#   scripts/package.sh [--build] [--out-dir DIR] [BUNDLE]
#
# BUNDLE defaults to target/tunnel.kext, what scripts/build.sh writes (--build runs it first);
# <version> is its CFBundleVersion. The package installs:
#   /Library/Extensions/tunnel.kext                  the bundle: root:wheel, directories 0755, files 0644
#   /Library/Application Support/tunnel.kext/scripts/  uninstall.sh, status.sh, selftest.sh and the
#                                                    lib/ files they use, laid out as in the
#                                                    repository, so that every path the scripts take
#                                                    from their own place is the same (root:wheel,
#                                                    scripts 0755)
# and runs, from its Scripts: preinstall (refuses while another tun driver is around: install.sh's
# own check) and postinstall (install.sh --in-place: LaunchDaemon, load, approval or restart
# pending). Its Distribution refuses macOS older than 10.13 and a Mac whose architecture the
# bundle has no slice for. Sign, notarize and staple it with: scripts/sign.sh --pkg (see there).
#
# Reproducible: every time in the package is $SOURCE_DATE_EPOCH, by default the time of the
# commit checked out (2000-01-01 outside git), and nothing depends on the build machine's owners,
# umask or directory order, so two runs on the same input write the same bytes.
set -euo pipefail
PROG=package.sh
USAGE="usage: scripts/package.sh [--build] [--out-dir DIR] [BUNDLE]  (default BUNDLE: target/tunnel.kext)"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s\n%s\n' "$PROG" "$1" "$USAGE" >&2; exit 2; }

build=0
out_dir=$root/target
bundle=""
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=1 ;;
    --out-dir)
        if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "--out-dir needs a directory"; fi
        out_dir=$2
        shift
        ;;
    -h | --help) printf '%s\n' "$USAGE"; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
        [ -z "$bundle" ] || usage_error "give one bundle path, not '$bundle' and '$1'"
        bundle=$1
        ;;
    esac
    shift
done
[ -n "$bundle" ] || bundle=$root/target/tunnel.kext
bundle=${bundle%/}

if [ "$build" = 1 ]; then
    "$here/build.sh"
fi
[ -d "$bundle" ] || die "no bundle at $bundle: build it first (scripts/build.sh, or scripts/package.sh --build) or pass its path."
[ "$(basename "$bundle")" = tunnel.kext ] ||
    die "$bundle: the bundle must be named tunnel.kext (it is installed under that name)."
mkdir -p "$out_dir"

# --- what the package carries, staged with the modes that matter (the execute bits) ---------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/tunnel-pkg.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/scripts" "$stage/support/scripts"

# add_libs FILE DIR: every scripts/lib/ file that FILE names ("$here/lib/NAME"), and those these
# name, into DIR/lib.
add_libs() {
    local lib
    while IFS= read -r lib; do
        if [ -f "$here/$lib" ] && [ ! -e "$2/$lib" ]; then
            mkdir -p "$2/lib"
            cp "$here/$lib" "$2/$lib"
            add_libs "$here/$lib" "$2"
        fi
    done < <(grep -oE 'lib/[A-Za-z0-9._-]+' "$1" | sort -u)
}
# stage_script FILE DIR: FILE (with its execute bit) and its lib/ files into DIR.
stage_script() {
    cp "$1" "$2/"
    add_libs "$1" "$2"
}

# Scripts: the hooks, and install.sh for postinstall (the one copy of the install logic).
for s in pkg/preinstall pkg/postinstall install.sh; do
    stage_script "$here/$s" "$stage/scripts"
done
# Support files: what a user runs afterwards. No Info.plist beside them (the scripts' fallback,
# scripts/../Info.plist, then finds none and says so): a second plist with the kext's identifier
# in a directory named tunnel.kext would look like a bundle.
missing=""
for s in uninstall.sh status.sh selftest.sh; do
    if [ -f "$here/$s" ]; then
        stage_script "$here/$s" "$stage/support/scripts"
    else
        missing="$missing $s"
    fi
done
[ -z "$missing" ] || printf '%s: note: not in this checkout, so not packaged:%s\n' "$PROG" "$missing" >&2

support='/Library/Application Support/tunnel.kext'
if [ -f "$stage/support/scripts/selftest.sh" ]; then
    check="sudo \"$support/scripts/selftest.sh\""
    check_words="It loads nothing new: it opens /dev/tun0, sends packets through it and reports what worked."
else
    check="\"$support/scripts/status.sh\""
    check_words="It shows whether tunnel.kext is loaded, its version and its /dev/tunN devices."
fi
# The package's last page: what Installer cannot do for the user.
cat >"$stage/conclusion.html" <<HTML
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>tunnel.kext</title></head>
<body style="font-family: -apple-system, sans-serif; font-size: 13px">
<p>tunnel.kext is installed in /Library/Extensions. macOS loads a new kernel extension only once you allow it:</p>
<ol>
<li>If macOS said that system software was blocked, open <b>System Settings &gt; Privacy &amp; Security</b>
(macOS 12 and earlier: <b>System Preferences &gt; Security &amp; Privacy &gt; General</b>) and click
<b>Allow</b> next to the developer's name. The button is there for 30 minutes.</li>
<li>On <b>macOS 11 and later, restart</b> the Mac after allowing it. tunnel.kext then loads at every start.</li>
<li>Check that it works, in Terminal:<br><code>$check</code><br>$check_words</li>
</ol>
<p>To remove it: <code>sudo "$support/scripts/uninstall.sh"</code></p>
</body></html>
HTML

# --- the package -----------------------------------------------------------------------------
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 946684800)
fi
export SOURCE_DATE_EPOCH
cargo_target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --quiet -p pkg-build) || die "could not build pkg-build (cargo's message is above)."
pkg=$("$cargo_target/debug/pkg-build" --kext "$bundle" --scripts "$stage/scripts" --support "$stage/support" \
    --conclusion "$stage/conclusion.html" --min-macos 10.13 --out-dir "$out_dir") ||
    die "pkg-build could not write the package (its message is above)."
echo "wrote $pkg"
echo "Sign, notarize and staple it: scripts/sign.sh --pkg --p12 DeveloperIDInstaller.p12 --api-key key.json $pkg"
