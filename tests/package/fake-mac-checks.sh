# shellcheck shell=bash
# Part of tests/suites/package.sh (sourced; uses its $tmp, $pkg, $repo, $scripts and the report
# functions): the package's scripts, as extracted from its Scripts archive, run on the fake Mac
# of tests/suites/mac-scripts.sh (tests/mac-scripts/fake-mac.sh, first on PATH, logging every
# macOS command). "Installer" is played by bsdtar: it extracts the Payload into the fake root,
# then runs postinstall with Installer's arguments. postinstall must issue exactly the commands
# install.sh issues after its copy step, and preinstall must refuse another tun driver with
# install.sh's own words. Then the packaged uninstaller removes everything, the receipt too.
# shellcheck disable=SC2154 # tmp, pkg, repo, scripts: set by tests/suites/package.sh

fake=$repo/tests/mac-scripts/fake-mac.sh
fm=$tmp/fake-mac
bin=$fm/bin
mkdir -p "$bin"
for c in uname sw_vers sysctl id kextload kextunload kextstat kmutil kextcache chown touch launchctl \
    csrutil codesign lsof ifconfig fake-approve fake-reboot; do
    ln -s "$fake" "$bin/$c"
done
# pkgutil: the receipts database, as far as uninstall.sh uses it (--pkg-info, --forget).
cat >"$bin/pkgutil" <<'SH'
#!/usr/bin/env bash
printf 'pkgutil %s\n' "$*" >>"$FAKE_LOG"
case $1 in
--pkg-info) [ -e "$FAKE_STATE/receipt-$2" ] && echo "package-id: $2" ;;
--forget) [ -e "$FAKE_STATE/receipt-$2" ] && rm "$FAKE_STATE/receipt-$2" && echo "Forgot package '$2' on '/'." ;;
*) echo "pkgutil: (fake) unsupported: $*" >&2; exit 64 ;;
esac
SH
chmod 755 "$bin/pkgutil"

froot=$fm/root
fext=$froot/Library/Extensions
bid=$(sed -n '/<key>CFBundleIdentifier<\/key>/{n;s/.*<string>\(.*\)<\/string>.*/\1/p;}' "$repo/Info.plist")
fdaemon=$froot/Library/LaunchDaemons/$bid.plist
pkgscripts=$tmp/pkgscripts # the Scripts archive, extracted by tests/suites/package.sh

# fm_fresh MACOS: an empty fake Mac.
fm_fresh() {
    rm -rf "$froot" "$fm/state" "$fm/log"
    mkdir -p "$fext" "$froot/Library/LaunchDaemons" "$froot/Library/Logs" "$froot/dev" \
        "$froot/Applications" "$fm/state"
    : >"$fm/log"
    unset FAKE_KERNEL FAKE_ARCH FAKE_ARM64 FAKE_UID FAKE_LOAD_MAKES_DEV FAKE_UNLOAD_RC FAKE_UNLOAD_STAYS \
        FAKE_OTHER_LOADED FAKE_SIP FAKE_SIGNATURE FAKE_LSOF_FILE FAKE_SECURITY FAKE_PREAPPROVED FAKE_TEAM
    export TUNNEL_ROOT=$froot FAKE_LOG=$fm/log FAKE_STATE=$fm/state TUNNEL_DEV_WAIT=0 FAKE_BUNDLE_ID=$bid
    export FAKE_MACOS=$1
}
# fm_run SCRIPT ARGS...: runs SCRIPT on the fake Mac; sets rc, output in $fm/out.
fm_run() {
    PATH="$bin:$PATH" "$@" >"$fm/out" 2>&1
    rc=$?
}
# fm_actions: the logged commands that change something (queries left out), as mac-scripts.sh has it.
fm_actions() {
    grep -vE '^(uname|sw_vers|sysctl|id|kextstat|csrutil|codesign|lsof|ifconfig)( |$)|^kmutil showloaded|^launchctl print|^pkgutil --pkg-info' "$fm/log"
}
# installer_places_payload: what Installer does between preinstall and postinstall.
installer_places_payload() {
    bsdtar -xpf "$tmp/x/tunnel.pkg/Payload" -C "$froot" --numeric-owner 2>/dev/null
}
fm_out() { cat "$fm/out"; }

# --- preinstall ---------------------------------------------------------------------------------
fm_fresh 10.15.7
fm_run "$pkgscripts/preinstall" "$pkg" / /
if [ "$rc" = 0 ] && [ -z "$(fm_actions)" ]; then
    pass "preinstall on a Mac without another tun driver: exit 0, changes nothing"
else
    fail "preinstall on a Mac without another tun driver: exit 0, changes nothing" "rc=$rc" "$(fm_actions)" "$(fm_out)"
fi

fm_fresh 10.15.7
mkdir -p "$fext/tun.kext/Contents"
sed "s/$bid/net.sf.tuntaposx.tun/" "$repo/Info.plist" >"$fext/tun.kext/Contents/Info.plist"
fm_run "$pkgscripts/preinstall" "$pkg" / /
cp "$fm/out" "$fm/preinstall.out"
pre_rc=$rc
make_kext "$fm/build/tunnel.kext" 9.8.7 x86_64 arm64e
fm_run "$scripts/install.sh" "$fm/build/tunnel.kext"
if [ "$pre_rc" = 1 ] && grep -q "net.sf.tuntaposx.tun" "$fm/preinstall.out" &&
    grep -q "Nothing was installed" "$fm/preinstall.out" && [ -z "$(fm_actions)" ] &&
    [ "$(grep '^  ' "$fm/preinstall.out")" = "$(grep '^  ' "$fm/out")" ] && grep -q '^  ' "$fm/out"; then
    pass "preinstall refuses an installed tuntaposx tun.kext with install.sh's own explanation, changing nothing"
else
    fail "preinstall refuses an installed tuntaposx tun.kext with install.sh's own explanation, changing nothing" \
        "preinstall rc=$pre_rc:" "$(cat "$fm/preinstall.out")" "install.sh:" "$(fm_out)"
fi

fm_fresh 12.6
export FAKE_OTHER_LOADED=net.tunnelblick.tun
fm_run "$pkgscripts/preinstall" "$pkg" / /
if [ "$rc" = 1 ] && grep -q "Tunnelblick" "$fm/out" && grep -q "kmutil unload -b net.tunnelblick.tun" "$fm/out"; then
    pass "preinstall refuses while Tunnelblick's tun is loaded, saying how to unload it"
else
    fail "preinstall refuses while Tunnelblick's tun is loaded, saying how to unload it" "rc=$rc" "$(fm_out)"
fi

fm_fresh 10.15.7
fm_run "$pkgscripts/preinstall" "$pkg" / /Volumes/Data
if [ "$rc" = 1 ] && grep -q "startup disk" "$fm/out"; then
    pass "preinstall refuses a target volume other than the startup disk"
else
    fail "preinstall refuses a target volume other than the startup disk" "rc=$rc" "$(fm_out)"
fi

# --- postinstall: install.sh's steps after the copy ---------------------------------------------
# steps_of_install_sh MACOS: the commands install.sh issues on a fresh fake Mac, without its copy
# step (cp -R, chown -R, chmod -R: only chown is a fake that logs), and its exit status.
steps_of_install_sh() {
    fm_fresh "$1"
    fm_run "$scripts/install.sh" "$fm/build/tunnel.kext"
    fm_actions | grep -vxF "chown -R root:wheel $fext/tunnel.kext"
    echo "rc=$rc"
}
for macos in 10.15.7 12.6; do
    want=$(steps_of_install_sh "$macos")
    fm_fresh "$macos"
    installer_places_payload
    fm_run "$pkgscripts/postinstall" "$pkg" / /
    got=$(fm_actions)
    if [ "$got"$'\n'"rc=3" = "$want" ] && [ "$rc" = 0 ] && grep -q "Allow" "$fm/out"; then
        pass "postinstall on $macos runs install.sh's steps after the copy ($(printf '%s\n' "$got" | awk '{print $1}' | paste -sd, -)); approval pending is exit 0"
    else
        fail "postinstall on $macos runs install.sh's steps after the copy; approval pending is exit 0" \
            "install.sh without its copy:" "$want" "postinstall (rc=$rc):" "$got" "$(fm_out)"
    fi
done

# The rest of the double-click on 12.6: Allow, restart; the LaunchDaemon loads the kext.
PATH="$bin:$PATH" fake-approve >"$fm/user" 2>&1 && PATH="$bin:$PATH" fake-reboot >>"$fm/user" 2>&1
if [ -e "$froot/dev/tun0" ] && [ -e "$fm/state/loaded" ]; then
    pass "after the package on 12.6: Allow, restart, and the LaunchDaemon it wrote loads tunnel.kext (/dev/tun0)"
else
    fail "after the package on 12.6: Allow, restart, and the LaunchDaemon it wrote loads tunnel.kext (/dev/tun0)" "$(cat "$fm/user")"
fi

# The packaged uninstaller removes the kext, the LaunchDaemon, the support files and the receipt.
: >"$fm/state/receipt-$bid.pkg"
: >"$fm/log"
support_dir="$froot/Library/Application Support/tunnel.kext"
fm_run "$support_dir/scripts/uninstall.sh"
if [ "$rc" = 0 ] && [ ! -e "$fext/tunnel.kext" ] && [ ! -e "$fdaemon" ] && [ ! -e "$support_dir" ] &&
    [ -d "$froot/Library/Application Support" ] && [ ! -e "$fm/state/receipt-$bid.pkg" ] &&
    fm_actions | grep -qxF "pkgutil --forget $bid.pkg" && grep -q "receipt $bid.pkg" "$fm/out"; then
    pass "the packaged uninstaller removes kext, LaunchDaemon, its own support directory and the receipt (pkgutil --forget)"
else
    fail "the packaged uninstaller removes kext, LaunchDaemon, its own support directory and the receipt (pkgutil --forget)" \
        "rc=$rc" "$(fm_actions)" "$(fm_out)"
fi

# A load that fails for another reason: the placed files stay (the receipt lists them), exit 1.
fm_fresh 10.15.7
export FAKE_LOAD_MAKES_DEV=0 FAKE_PREAPPROVED=1
installer_places_payload
fm_run "$pkgscripts/postinstall" "$pkg" / /
if [ "$rc" = 1 ] && [ -d "$fext/tunnel.kext" ] && [ -e "$froot/Library/Application Support/tunnel.kext/scripts/uninstall.sh" ]; then
    pass "postinstall when the kext fails to start: exit 1 (Installer reports it), the installed files stay"
else
    fail "postinstall when the kext fails to start: exit 1 (Installer reports it), the installed files stay" "rc=$rc" "$(fm_out)"
fi
unset TUNNEL_ROOT FAKE_LOG FAKE_STATE TUNNEL_DEV_WAIT FAKE_BUNDLE_ID FAKE_MACOS FAKE_LOAD_MAKES_DEV FAKE_PREAPPROVED
