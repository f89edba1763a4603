#!/usr/bin/env bash
# Gives a kext bundle the ownership and modes macOS insists on before it loads a kext: every file
# owned by root:wheel, and no file writable by group or others. Works on a bundle anywhere on disk
# (the "chown -R root:wheel; chmod -R go-w" fix-up). Idempotent: a correct bundle is left alone.
#
#   sudo scripts/fix-permissions.sh [--dry-run] BUNDLE
#
# --dry-run lists what is wrong and the commands that would fix it, and changes nothing.
set -u
PROG=fix-permissions.sh
USAGE="usage: sudo scripts/fix-permissions.sh [--dry-run] BUNDLE"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib/mac-common.sh
. "$here/lib/mac-common.sh"

bundle=""
while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) DRY_RUN=1 ;;
    -h | --help) say "$USAGE"; exit 0 ;;
    -*) usage_error "unknown option '$1'" ;;
    *)
        [ -z "$bundle" ] || usage_error "give one bundle path, not '$bundle' and '$1'"
        bundle=$1
        ;;
    esac
    shift
done
[ -n "$bundle" ] || usage_error "missing the bundle path (for example /Library/Extensions/tunnel.kext)"
bundle=${bundle%/}
[ -e "$bundle" ] || die "no such file or directory: $bundle"
[ -L "$bundle" ] && die "$bundle is a symbolic link; give the bundle's real path."
[ -d "$bundle" ] || die "$bundle is not a directory: a kext is a bundle directory (NAME.kext/Contents/...)."
[ -f "$bundle/Contents/Info.plist" ] || die "$bundle is not a kext bundle: $bundle/Contents/Info.plist is missing."

bad=$(bad_ownership_or_modes "$bundle")
if [ -z "$bad" ]; then
    say "$bundle: ownership (root:wheel) and modes (no group/other write) are already correct; nothing to do."
    exit 0
fi
[ "$DRY_RUN" = 1 ] || require_root

owners=$(printf '%s\n' "$bad" | grep -c '^owner ')
modes=$(printf '%s\n' "$bad" | grep -c '^mode ')
say "$bundle: $owners file(s) not owned by root:wheel, $modes file(s) writable by group or others:"
printf '%s\n' "$bad" | sed -e 's/^owner /  not root:wheel: /' -e 's/^mode /  group\/other-writable: /'
if [ "$owners" -gt 0 ]; then
    run chown -R root:wheel "$bundle" || die "chown failed on $bundle"
fi
if [ "$modes" -gt 0 ]; then
    run chmod -R go-w "$bundle" || die "chmod failed on $bundle"
fi
if [ "$DRY_RUN" = 1 ]; then
    say "Dry run: nothing was changed."
else
    say "Fixed."
fi
