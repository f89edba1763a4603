# shellcheck shell=bash
# Installs what building and testing need, only when it is missing.
# Sourced by scripts/build.sh and scripts/test.sh.

LLVM_VERSION=19
# The arm64e shim needs clang-22: clang-19 drops the @AUTH bits of signed function pointers, and
# nothing between 19 and 22 is packaged (docs/kext-build.md 9.2). It brings llvm-22's tools too.
ARM64E_CLANG_VERSION=22

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "missing packages: ${missing[*]} (install them with your package manager)" >&2
        return 1
    fi
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Everything the host build (bindgen needs libclang) and the kext build need.
ensure_build_deps() {
    if [ "$(uname -s)" = Linux ]; then
        apt_install "clang-$LLVM_VERSION" "libclang-$LLVM_VERSION-dev" "lld-$LLVM_VERSION" \
            "llvm-$LLVM_VERSION" "clang-$ARM64E_CLANG_VERSION" "llvm-$ARM64E_CLANG_VERSION" \
            shellcheck || return 1
        export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-$LLVM_VERSION/lib}
        export PATH="/usr/lib/llvm-$LLVM_VERSION/bin:$PATH"
    fi
    # rust-toolchain.toml names the toolchain, components and targets; this installs them.
    rustup toolchain install >/dev/null 2>&1 || rustup show >/dev/null
    command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
}

# What tests/suites/package.sh reads the installer package with: bsdtar for XAR and cpio,
# duktape for the Distribution's JavaScript, openssl for the signature. rcodesign, which signs
# it, is built from crates.io (~15 minutes on two cores, once), so it is installed only when
# asked (RCODESIGN_INSTALL=1, or scripts/release.sh): a first scripts/test.sh on a fresh machine
# stays within its time budget and reports the signing checks skipped without it.
ensure_package_deps() {
    if [ "$(uname -s)" = Linux ]; then
        apt_install libarchive-tools duktape openssl python3 || return 1
    fi
    if [ "${RCODESIGN_INSTALL:-0}" = 1 ]; then
        ensure_rcodesign || return 1
    fi
}

# rcodesign (apple-codesign), pinned: the signature tests know its output.
RCODESIGN_VERSION=0.29.0
ensure_rcodesign() {
    command -v rcodesign >/dev/null 2>&1 && return 0
    echo "installing rcodesign (apple-codesign $RCODESIGN_VERSION) with cargo; this takes a while, once"
    cargo install --locked --quiet apple-codesign --version "$RCODESIGN_VERSION"
}
