#!/usr/bin/env bash
# Signs tunnel.kext, or its installer package, with a Developer ID certificate using rcodesign
# (the Rust crate apple-codesign, which runs on Linux and macOS alike), and optionally notarizes
# and staples it.
#
#   scripts/sign.sh [--dry-run] --p12 CERT.p12 [--p12-password-file FILE] [--api-key KEY.json] [BUNDLE]
#   scripts/sign.sh --pkg [--dry-run] --p12 CERT.p12 [--p12-password-file FILE] [--api-key KEY.json]
#                   [--chain CERT.der]... [--timestamp-url URL|none] [PKG]
#
# The kext: BUNDLE defaults to target/tunnel.kext; the certificate is a "Developer ID Application"
# one that Apple has enabled for kexts. Options can also come from the environment: TUNNEL_P12,
# TUNNEL_P12_PASSWORD_FILE, TUNNEL_NOTARY_API_KEY. Untested on a real kext so far (see
# docs/kext-build.md section 8): check the result on a Mac with 'codesign -dvv' and 'kextutil -n'
# (10.x) or 'kmutil load' (11+).
#
# --pkg: the installer package scripts/package.sh wrote, by default target/tunnel-<version>.pkg
# (<version>: CFBundleVersion in Info.plist). The certificate is a "Developer ID Installer" one
# (TUNNEL_INSTALLER_P12, TUNNEL_INSTALLER_P12_PASSWORD_FILE). rcodesign adds Apple's intermediate
# and root certificates itself; --chain adds others (DER), e.g. a test CA's. --timestamp-url is
# passed to rcodesign (default: Apple's time-stamp server; 'none' signs offline, for tests). With
# an API key it then uploads the package to Apple's notary service, waits for the verdict and
# staples the ticket to it. Sign the kext before packaging it: the package carries the bundle as
# it is.
#
# Without a certificate it explains what is missing and changes nothing. --dry-run checks
# everything and prints the rcodesign commands instead of running them.
set -u
PROG=sign.sh
USAGE="usage: scripts/sign.sh [--dry-run] --p12 CERT.p12 [--p12-password-file FILE] [--api-key KEY.json] [BUNDLE]
       scripts/sign.sh --pkg [--dry-run] --p12 CERT.p12 [--p12-password-file FILE] [--api-key KEY.json]
                       [--chain CERT.der]... [--timestamp-url URL|none] [PKG]"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/mac-common.sh
. "$here/lib/mac-common.sh"

pkg=0
p12=""
password_file=""
api_key=${TUNNEL_NOTARY_API_KEY:-}
chain=()
timestamp_url=""
target=""
# value OPTION NEXT: the option's argument, or a usage error when it is missing.
value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a file name"; fi
    printf '%s' "$2"
}
while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) DRY_RUN=1 ;;
    --pkg) pkg=1 ;;
    --p12) p12=$(value "$@") || exit 2; shift ;;
    --p12-password-file) password_file=$(value "$@") || exit 2; shift ;;
    --api-key) api_key=$(value "$@") || exit 2; shift ;;
    --chain) chain+=("$(value "$@")") || exit 2; shift ;;
    --timestamp-url) timestamp_url=$(value "$@") || exit 2; shift ;;
    -h | --help) say "$USAGE"; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
        [ -z "$target" ] || usage_error "give one path, not '$target' and '$1'"
        target=$1
        ;;
    esac
    shift
done
if [ "$pkg" = 0 ]; then
    if [ ${#chain[@]} -gt 0 ] || [ -n "$timestamp_url" ]; then
        usage_error "--chain and --timestamp-url are for --pkg"
    fi
    [ -n "$p12" ] || p12=${TUNNEL_P12:-}
    [ -n "$password_file" ] || password_file=${TUNNEL_P12_PASSWORD_FILE:-}
    [ -n "$target" ] || target=$(cd "$here/.." && pwd)/target/$KEXT_NAME
    target=${target%/}
    what=$target
    cert_kind="Developer ID Application"
    cert_words="a \"Developer ID Application\" certificate of a paid Apple Developer
  account for which Apple has enabled kext signing (requested separately from Apple, through the
  kext signing request on developer.apple.com). A certificate without that permission signs,
  but macOS refuses to load the kext."
else
    [ -n "$p12" ] || p12=${TUNNEL_INSTALLER_P12:-}
    [ -n "$password_file" ] || password_file=${TUNNEL_INSTALLER_P12_PASSWORD_FILE:-}
    if [ -z "$target" ]; then
        version=$(plist_string "$here/../Info.plist" CFBundleVersion)
        target=$(cd "$here/.." && pwd)/target/tunnel-$version.pkg
    fi
    what=$target
    cert_kind="Developer ID Installer"
    cert_words="a \"Developer ID Installer\" certificate of a paid Apple Developer account
  (Certificates, Identifiers & Profiles on developer.apple.com; it is not the Application one)."
fi

missing=""
if [ "$pkg" = 0 ] && [ ! -d "$target" ]; then
    missing="${missing}- No bundle at $target. Build it first (scripts/build.sh writes target/tunnel.kext) or pass its path.
"
elif [ "$pkg" = 1 ] && [ ! -f "$target" ]; then
    missing="${missing}- No package at $target. Write it first (scripts/package.sh writes target/tunnel-<version>.pkg) or pass its path.
"
elif [ "$pkg" = 1 ] && [ "$(head -c 4 "$target")" != 'xar!' ]; then
    missing="${missing}- $target is not an installer package (a flat package starts with 'xar!').
"
fi
if ! command -v rcodesign >/dev/null 2>&1; then
    missing="${missing}- rcodesign is not installed. Install it with 'cargo install --locked apple-codesign'
  (it provides the rcodesign command, on Linux as on macOS).
"
fi
if [ -z "$p12" ]; then
    missing="${missing}- No signing certificate was given. Pass --p12 CERT.p12 (or set TUNNEL_$([ "$pkg" = 1 ] && printf 'INSTALLER_')P12): a PKCS#12 export,
  with its private key, of $cert_words
  If the .p12 has a password, also pass --p12-password-file FILE.
"
elif [ ! -r "$p12" ]; then
    missing="${missing}- The certificate file $p12 does not exist or is not readable.
"
fi
for f in "$password_file" "$api_key" ${chain[@]+"${chain[@]}"}; do
    if [ -n "$f" ] && [ ! -r "$f" ]; then
        missing="${missing}- The file $f does not exist or is not readable.
"
    fi
done
if [ -n "$missing" ]; then
    printf '%s: cannot sign %s; missing:\n%s' "$PROG" "$what" "$missing" >&2
    if [ "$pkg" = 0 ]; then
        printf 'Without a signature, the kext loads only on a Mac with System Integrity Protection off (test machines).\n' >&2
    else
        printf 'Without a signature, Gatekeeper refuses to open the package on a double-click (right-click > Open still works).\n' >&2
    fi
    exit 1
fi

[ "$pkg" = 1 ] || verify_bundle "$target"
set -- rcodesign sign --p12-file "$p12"
[ -n "$password_file" ] && set -- "$@" --p12-password-file "$password_file"
for c in ${chain[@]+"${chain[@]}"}; do set -- "$@" --certificate-der-file "$c"; done
[ -n "$timestamp_url" ] && set -- "$@" --timestamp-url "$timestamp_url"
run "$@" "$target" || die "rcodesign could not sign $target (its message is above)."

if [ -n "$api_key" ]; then
    run rcodesign notary-submit --api-key-file "$api_key" --staple "$target" ||
        die "notarization failed (rcodesign's message is above); $target is signed but not notarized."
    say "Signed ($cert_kind), notarized and stapled: $target"
else
    say "Signed ($cert_kind): $target"
    say ""
    if [ "$pkg" = 0 ]; then
        say "Notarization: macOS 10.14.5 and later load only kexts that Apple has also notarized. To notarize,"
    else
        say "Notarization: Gatekeeper opens a downloaded package on a double-click only if Apple notarized it. To notarize,"
    fi
    say "create an App Store Connect API key (App Store Connect > Users and Access > Integrations), turn it"
    say "into a JSON file with 'rcodesign encode-app-store-connect-api-key', then run this script again with"
    say "--api-key KEY.json: it uploads $([ "$pkg" = 1 ] && printf 'the package' || printf 'the bundle') to Apple, waits for the verdict and staples the ticket to"
    say "it, so that it can be installed offline."
fi
