#!/usr/bin/env bash
# Builds target/tunnel.kext, one bundle whose executable is universal (x86_64 + arm64e), on
# Linux (no SDK, no Apple tools) or on a Mac (Xcode command-line tools + rustup). See
# docs/kext-build.md and docs/kext-format.md.
#
#   1. host crates (kext-bundle, the simulator, the driver tests): cargo build --workspace
#   2. the Rust core for each kernel target (targets/<arch>-apple-macos-kext.json, build-std,
#      LTO into one crate object); build.rs compiles the shim with clang -mkernel into the
#      same static library (clang-19 for x86_64, clang-22 for arm64e)
#   3. kext-bundle links each libtunnel.a into an MH_KEXT_BUNDLE and writes
#      target/tunnel.kext/Contents/{Info.plist,MacOS/tunnel} with a fat header
#   4. the CI checks of docs/kext-build.md section 2.1 on the x86_64 inputs and slice
#
# KEXT_ARCHS="x86_64" (or "arm64e") builds one slice only; the default is both.
#
# Exits non-zero, naming what is wrong, if any step or check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
ensure_build_deps

if [ "$(uname -s)" = Darwin ]; then
    export CLANG=${CLANG:-clang}
    export CLANG_ARM64E=${CLANG_ARM64E:-clang} # Xcode's clang signs arm64e pointers
    objdump=${OBJDUMP:-objdump} # Xcode's objdump is llvm-objdump
    ar_tool='ar'
    lipo=${LIPO:-lipo}
else
    export CLANG=${CLANG:-clang-19}
    export CLANG_ARM64E=${CLANG_ARM64E:-clang-22}
    objdump=${OBJDUMP:-llvm-objdump-19}
    ar_tool=llvm-ar-19
    lipo=${LIPO:-llvm-lipo-19}
fi
archs=${KEXT_ARCHS:-x86_64 arm64e}
cargo_target=${CARGO_TARGET_DIR:-target}
bundle=target/tunnel.kext
exports_dir=$root/../shared/xnu-exports

echo "== host crates (cargo build --workspace)"
cargo build --workspace

libs=()
for arch in $archs; do
    case $arch in
        x86_64) min_os=10.13 ;;
        arm64e) min_os=11.0 ;;
        *) echo "build.sh: unknown architecture $arch (x86_64, arm64e)" >&2; exit 1 ;;
    esac
    kext_target=targets/$arch-apple-macos-kext.json
    echo "== core + shim for the kernel target ($kext_target)"
    # `cargo rustc --crate-type staticlib` (rather than `cargo build`) builds only the static
    # library: with the rlib crate type beside it, rustc skips LTO and the archive carries whole
    # `core`/`spin` objects instead of one crate object (docs/kext-build.md 2.1).
    MACOSX_DEPLOYMENT_TARGET=$min_os RUSTC_BOOTSTRAP=1 cargo rustc --release -p tunnel --lib \
        --crate-type staticlib --target "$kext_target" \
        -Zbuild-std=core,compiler_builtins -Zjson-target-spec
    libs+=("$cargo_target/$arch-apple-macos-kext/release/libtunnel.a")
done

echo "== link and bundle ($bundle: $archs)"
exports_arg=()
[ -d "$exports_dir" ] && exports_arg=(--exports "$exports_dir")
"$cargo_target/debug/kext-bundle" bundle --out "$bundle" --plist Info.plist --kpi shim/kpi-symbols.txt \
    "${exports_arg[@]}" "${libs[@]}"
exe=$bundle/Contents/MacOS/tunnel
case " $archs " in
    *" x86_64 "*) ;;
    *) echo "built $bundle ($archs, $(wc -c <"$exe" | tr -d ' ') bytes; no x86_64 slice to check)"; exit 0 ;;
esac
lib=$cargo_target/x86_64-apple-macos-kext/release/libtunnel.a
image=$exe
if [ "$(wc -w <<<"$archs")" -gt 1 ]; then
    # the x86_64 slice, taken out by an independent tool
    mkdir -p target/kext-slices
    image=target/kext-slices/tunnel.x86_64
    "$lipo" "$exe" -thin x86_64 -output "$image"
fi

echo "== CI checks (docs/kext-build.md 2.1)"
objs=target/kext-objs
rm -rf "$objs" && mkdir -p "$objs"
lib_abs=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
(cd "$objs" && "$ar_tool" x "$lib_abs")
members=("$objs"/*.o)
problems=0
fail() { echo "  FAIL: $*" >&2; problems=$((problems + 1)); }
ok() { echo "  ok: $*"; }

# (1) no SSE/AVX register in any input object or in the image
vec_regs=""
for o in "${members[@]}" "$image"; do
    disasm=$("$objdump" -d --no-show-raw-insn "$o")
    hits=$(grep -E '%[xyz]mm[0-9]' <<<"$disasm" | head -n 3 || true)
    [ -n "$hits" ] && vec_regs+="$(basename "$o"):"$'\n'"$hits"$'\n'
done
if [ -n "$vec_regs" ]; then fail "vector registers in kernel code:"$'\n'"$vec_regs"; else ok "no %xmm/%ymm/%zmm in ${#members[@]} input objects and the image"; fi

# (2) no TLS sections or TLV relocations; (3) no static constructors/destructors
before=$problems
for o in "${members[@]}" "$image"; do
    headers=$("$objdump" --macho --private-headers "$o")
    grep -qE 'S_THREAD_LOCAL_' <<<"$headers" && fail "$(basename "$o"): thread-local section"
    grep -qE 'S_MOD_(INIT|TERM)_FUNC_POINTERS' <<<"$headers" && fail "$(basename "$o"): static constructor/destructor section"
    # (output captured first: with pipefail, `grep -q` closing the pipe early would fail it)
    relocs=$("$objdump" --macho -r "$o")
    grep -qE '\bTLV\b' <<<"$relocs" && fail "$(basename "$o"): TLV relocation"
done
[ "$problems" -eq "$before" ] && ok "no TLS, no TLV relocations, no mod_init/mod_term sections"

# (4) no unwind, bitcode or debug section in the image
bad_sects=$("$objdump" --macho --private-headers "$image" | awk '/sectname|segname/ {print $2}' |
    grep -E '^(__eh_frame|__compact_unwind|__unwind_info|__LLVM|__bitcode|__cmdline|__DWARF|__debug_.*)$' || true)
if [ -n "$bad_sects" ]; then fail "unwind/bitcode/debug sections in the image: $bad_sects"; else ok "no unwind, bitcode or debug section in the image"; fi

# (5) the crate object (and the image) record minimum macOS 10.13
crate_obj=$(find "$objs" -name 'tunnel-*.o' | sort | head -n 1 || true)
minver() {
    local h
    h=$("$objdump" --macho --private-headers "$1")
    awk '/cmd LC_VERSION_MIN_MACOSX/ {v=1} v && /^ *version/ {print $2; exit} /cmd LC_BUILD_VERSION/ {b=1} b && /^ *minos/ {print $2; exit}' <<<"$h"
}
if [ -z "$crate_obj" ]; then
    fail "no crate object tunnel-*.o in $lib"
else
    v=$(minver "$crate_obj")
    if [ "$v" = 10.13 ]; then ok "crate object $(basename "$crate_obj") records minimum macOS $v"; else fail "crate object records minimum macOS '$v', not 10.13"; fi
fi
v=$(minver "$image")
if [ "$v" = 10.13 ]; then ok "image records minimum macOS $v"; else fail "image records minimum macOS '$v', not 10.13"; fi

if [ "$problems" -gt 0 ]; then
    echo "build.sh: $problems CI check(s) failed" >&2
    exit 1
fi
echo "built $bundle ($archs, $(wc -c <"$exe" | tr -d ' ') bytes)"
