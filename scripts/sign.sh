#!/usr/bin/env bash
# Signs tunnel.kext with a Developer ID certificate using rcodesign (the Rust crate apple-codesign,
# which runs on Linux and macOS alike), and optionally notarizes and staples it.
#
#   scripts/sign.sh [--dry-run] --p12 CERT.p12 [--p12-password-file FILE] [--api-key KEY.json] [BUNDLE]
#
# BUNDLE defaults to target/tunnel.kext. The options can also come from the environment:
# TUNNEL_P12, TUNNEL_P12_PASSWORD_FILE, TUNNEL_NOTARY_API_KEY. Without a certificate it explains
# what is missing and changes nothing. Untested on a real kext so far (see
# docs/kext-build.md section 8): check the result on a Mac with
# 'codesign -dvv' and 'kextutil -n' (10.x) or 'kmutil load' (11+).
set -u
PROG=sign.sh
USAGE="usage: scripts/sign.sh [--dry-run] --p12 CERT.p12 [--p12-password-file FILE] [--api-key KEY.json] [BUNDLE]"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/mac-common.sh
. "$here/lib/mac-common.sh"

p12=${TUNNEL_P12:-}
password_file=${TUNNEL_P12_PASSWORD_FILE:-}
api_key=${TUNNEL_NOTARY_API_KEY:-}
bundle=""
# value OPTION NEXT: the option's argument, or a usage error when it is missing.
value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a file name"; fi
    printf '%s' "$2"
}
while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) DRY_RUN=1 ;;
    --p12) p12=$(value "$@") || exit 2; shift ;;
    --p12-password-file) password_file=$(value "$@") || exit 2; shift ;;
    --api-key) api_key=$(value "$@") || exit 2; shift ;;
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

missing=""
if [ ! -d "$bundle" ]; then
    missing="${missing}- No bundle at $bundle. Build it first (scripts/build.sh writes target/tunnel.kext) or pass its path.
"
fi
if ! command -v rcodesign >/dev/null 2>&1; then
    missing="${missing}- rcodesign is not installed. Install it with 'cargo install --locked apple-codesign'
  (it provides the rcodesign command, on Linux as on macOS).
"
fi
if [ -z "$p12" ]; then
    missing="${missing}- No signing certificate was given. Pass --p12 CERT.p12 (or set TUNNEL_P12): a PKCS#12 export,
  with its private key, of a \"Developer ID Application\" certificate of a paid Apple Developer
  account for which Apple has enabled kext signing (requested separately from Apple, through the
  kext signing request on developer.apple.com). A certificate without that permission signs,
  but macOS refuses to load the kext.
  If the .p12 has a password, also pass --p12-password-file FILE.
"
elif [ ! -r "$p12" ]; then
    missing="${missing}- The certificate file $p12 does not exist or is not readable.
"
fi
if [ -n "$password_file" ] && [ ! -r "$password_file" ]; then
    missing="${missing}- The password file $password_file does not exist or is not readable.
"
fi
if [ -n "$api_key" ] && [ ! -r "$api_key" ]; then
    missing="${missing}- The App Store Connect API key file $api_key does not exist or is not readable.
"
fi
if [ -n "$missing" ]; then
    printf '%s: cannot sign %s; missing:\n%s' "$PROG" "$bundle" "$missing" >&2
    printf 'Without a signature, the kext loads only on a Mac with System Integrity Protection off (test machines).\n' >&2
    exit 1
fi

verify_bundle "$bundle"
set -- rcodesign sign --p12-file "$p12"
[ -n "$password_file" ] && set -- "$@" --p12-password-file "$password_file"
run "$@" "$bundle" || die "rcodesign could not sign $bundle (its message is above)."

if [ -n "$api_key" ]; then
    run rcodesign notary-submit --api-key-file "$api_key" --staple "$bundle" ||
        die "notarization failed (rcodesign's message is above); the bundle is signed but not notarized."
    say "Signed, notarized and stapled: $bundle"
else
    say "Signed: $bundle"
    say ""
    say "Notarization: macOS 10.14.5 and later load only kexts that Apple has also notarized. To notarize,"
    say "create an App Store Connect API key (App Store Connect > Users and Access > Integrations), turn it"
    say "into a JSON file with 'rcodesign encode-app-store-connect-api-key', then run this script again with"
    say "--api-key KEY.json: it uploads the bundle to Apple, waits for the verdict and staples the ticket to"
    say "the bundle, so that it can be installed offline."
fi
