#!/usr/bin/env bash
# Builds and signs a release of tunnel.kext on Linux (or a Mac), in one command:
#
#   scripts/release.sh [--dry-run] --p12 APPLICATION.p12 --installer-p12 INSTALLER.p12
#                      [--p12-password-file FILE] [--installer-p12-password-file FILE] [--api-key KEY.json]
#
#   1. scripts/build.sh                         target/tunnel.kext (universal)
#   2. scripts/sign.sh --p12 APPLICATION.p12    the kext, with the Developer ID Application
#                                               certificate Apple enabled for kexts; notarized and
#                                               stapled with --api-key
#   3. scripts/package.sh                       target/tunnel-<version>.pkg, from the signed bundle
#   4. scripts/sign.sh --pkg --p12 INSTALLER.p12
#                                               the package, with the Developer ID Installer
#                                               certificate; notarized and stapled with --api-key
#
# Stops at the first step that fails. --dry-run builds nothing and prints the four commands.
set -u
PROG=release.sh
USAGE="usage: scripts/release.sh [--dry-run] --p12 APPLICATION.p12 --installer-p12 INSTALLER.p12
                          [--p12-password-file FILE] [--installer-p12-password-file FILE] [--api-key KEY.json]"
here=$(cd "$(dirname "$0")" && pwd)

die() { printf '%s: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s\n%s\n' "$PROG" "$1" "$USAGE" >&2; exit 2; }
value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a file name"; fi
    printf '%s' "$2"
}

dry=0
app=() # sign.sh options for the kext
inst=() # sign.sh options for the package
api=()
while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) dry=1 ;;
    --p12) app+=(--p12 "$(value "$@")") || exit 2; shift ;;
    --p12-password-file) app+=(--p12-password-file "$(value "$@")") || exit 2; shift ;;
    --installer-p12) inst+=(--p12 "$(value "$@")") || exit 2; shift ;;
    --installer-p12-password-file) inst+=(--p12-password-file "$(value "$@")") || exit 2; shift ;;
    --api-key) api=(--api-key "$(value "$@")") || exit 2; shift ;;
    -h | --help) printf '%s\n' "$USAGE"; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
    esac
    shift
done
[ ${#app[@]} -gt 0 ] || usage_error "--p12 (the Developer ID Application certificate, for the kext) is required"
[ ${#inst[@]} -gt 0 ] || usage_error "--installer-p12 (the Developer ID Installer certificate, for the package) is required"

# rcodesign signs both the kext and the package; scripts/lib/deps.sh builds it once if missing.
if [ "$dry" = 0 ] && ! command -v rcodesign >/dev/null 2>&1; then
    # shellcheck source=scripts/lib/deps.sh
    . "$here/lib/deps.sh"
    ensure_rcodesign || die "could not install rcodesign (cargo install apple-codesign)"
fi

# step NAME COMMAND...: runs one step (prints it under --dry-run), or stops the release.
step() {
    local name=$1
    shift
    if [ "$dry" = 1 ]; then
        printf 'would run: %s\n' "$*"
        return 0
    fi
    printf '== %s: %s\n' "$name" "$*"
    "$@" || die "$name failed (its message is above); the release is not complete."
}
step build "$here/build.sh"
step "sign the kext" "$here/sign.sh" "${app[@]}" ${api[@]+"${api[@]}"}
step package "$here/package.sh"
step "sign the package" "$here/sign.sh" --pkg "${inst[@]}" ${api[@]+"${api[@]}"}
[ "$dry" = 1 ] || printf '%s: done: target/tunnel-<version>.pkg is signed%s.\n' "$PROG" \
    "$([ ${#api[@]} -gt 0 ] && printf ', notarized and stapled')"
