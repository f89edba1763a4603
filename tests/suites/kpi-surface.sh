#!/usr/bin/env bash
# Suite kpi-surface (docs/xnu-sim.md section 1, "Same surface as the kext"; docs/kext-build.md section 5).
# Builds the host flavour of the driver (`tunnel`) and the simulator (`xnu-sim`) with cargo,
# takes the artifact paths from cargo's JSON messages (so CARGO_TARGET_DIR and hashes do not
# matter), and checks with llvm-nm:
#   (a) every undefined symbol of the host-built shim archive (libtunnelshim.a) and every
#       non-Rust, non-intrinsic undefined symbol of the core (libtunnel.rlib) is in
#       shim/kpi-symbols.txt (or is the core's own tun_* entry point); the names the host build
#       renamed to xnusim_printf/xnusim_panic/xnusim_strlcpy count as printf/panic/strlcpy;
#   (b) every KPI C function the simulator exports (its non-mangled global functions, minus its
#       own xnusim_* helpers) is in the table, and none is missing from Apple's public x86_64
#       export lists or present only in Private*.exports (../shared/xnu-exports; SKIP when absent).
# Prints one PASS/FAIL/SKIP line per check and closes with "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
# shellcheck source=tests/suites/lib/report.sh
. tests/suites/lib/report.sh

export PATH="/usr/lib/llvm-19/bin:$PATH"
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
nm=${NM:-$(command -v llvm-nm-19 || command -v llvm-nm || command -v nm)}
table=${KPI_TABLE:-shim/kpi-symbols.txt}
exports_dir=${XNU_EXPORTS:-$root/../shared/xnu-exports}
# The KPI names the host build renames (build.rs SIM_OWNED) because libc defines them too.
sim_owned="printf panic strlcpy"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Table names without the Mach-O leading underscore.
grep -vE '^[[:space:]]*(#|$)' "$table" | awk '{print $1}' | sed 's/^_//' | sort -u >"$tmp/table"
if [ -s "$tmp/table" ]; then
    pass "$table lists $(wc -l <"$tmp/table") KPI symbols"
else
    fail "$table is empty or missing"
    finish
fi

echo "== cargo build -p tunnel -p xnu-sim"
if ! cargo build -p tunnel -p xnu-sim --message-format=json >"$tmp/build.json" 2>"$tmp/build.err"; then
    fail "cargo build -p tunnel -p xnu-sim failed:"
    tail -n 25 "$tmp/build.err" | sed 's/^/    /'
    finish
fi
artifact() { # artifact TARGET SUFFIX
    jq -r --arg t "$1" 'select(.reason=="compiler-artifact" and .target.name==$t) | .filenames[]' \
        "$tmp/build.json" | grep -E "$2\$" | head -n 1
}
core_rlib=$(artifact tunnel '\.rlib')
sim_rlib=$(artifact xnu_sim '\.rlib')
tunnel_out=$(jq -r 'select(.reason=="build-script-executed" and (.package_id|test("#tunnel@"))) | .out_dir' \
    "$tmp/build.json" | head -n 1)
shim_a=$tunnel_out/libtunnelshim.a
for f in "$core_rlib" "$sim_rlib" "$shim_a"; do
    if [ -z "$f" ] || [ ! -f "$f" ]; then
        fail "artifact not found (core '$core_rlib', sim '$sim_rlib', shim '$shim_a')"
        finish
    fi
done
echo "  core: $core_rlib"
echo "  shim: $shim_a"
echo "  sim:  $sim_rlib"

# undefined ARCHIVE: symbols referenced and not defined by any member (one name a line).
undefined() {
    "$nm" -u "$1" 2>/dev/null | awk 'NF==2 && $1=="U" {print $2}' | sort -u >"$tmp/u"
    "$nm" -g --defined-only "$1" 2>/dev/null | awk 'NF==3 {print $3}' | sort -u >"$tmp/d"
    comm -23 "$tmp/u" "$tmp/d"
}
# unrename: xnusim_printf → printf, for the names the host build renamed.
unrename() {
    local expr=""
    for s in $sim_owned; do expr="$expr -e s/^xnusim_$s\$/$s/"; done
    # shellcheck disable=SC2086
    sed $expr
}
# Compiler and runtime intrinsics: whatever the toolchain's compiler_builtins defines with a
# leading "__" (__udivti3, __rust_probestack, …), plus the Rust runtime's own symbols.
sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
cb=$(find "$sysroot/lib/rustlib/$host/lib" -name 'libcompiler_builtins-*.rlib' 2>/dev/null | head -n 1)
{
    [ -n "$cb" ] && "$nm" -g --defined-only "$cb" 2>/dev/null | awk 'NF==3 {print $3}' | grep -E '^__'
    printf '%s\n' rust_eh_personality rust_begin_unwind
} | sort -u >"$tmp/intrinsics"

# (a) the shim's imports.
undefined "$shim_a" | unrename | grep -vE '^tun_' | sort -u >"$tmp/shim_imports"
missing=$(comm -23 "$tmp/shim_imports" "$tmp/table" | tr '\n' ' ')
n=$(wc -l <"$tmp/shim_imports")
if [ "$n" -eq 0 ]; then
    fail "the shim archive imports no KPI symbol at all (wrong artifact?)"
elif [ -z "$missing" ]; then
    pass "all $n KPI imports of the host-built shim (libtunnelshim.a) are in $table"
else
    fail "shim imports not in $table: $missing"
fi

# (a) the core's imports (the rlib bundles the shim; tun_* are the core's own entry points).
undefined "$core_rlib" | grep -vE '^(_ZN|_R)' | unrename | grep -vE '^tun_' | sort -u \
    | comm -23 - "$tmp/intrinsics" >"$tmp/core_imports"
missing=$(comm -23 "$tmp/core_imports" "$tmp/table" | tr '\n' ' ')
n=$(wc -l <"$tmp/core_imports")
if [ "$n" -eq 0 ]; then
    fail "the core imports no KPI symbol at all (wrong artifact?)"
elif [ -z "$missing" ]; then
    pass "all $n non-Rust, non-intrinsic imports of the core (libtunnel.rlib) are in $table"
else
    fail "core imports not in $table: $missing"
fi

# (b) what the simulator exports.
"$nm" -g --defined-only "$sim_rlib" 2>/dev/null | awk 'NF==3 && $2=="T" {print $3}' \
    | grep -vE '^(_ZN|_R)' | unrename | grep -v '^xnusim_' | sort -u >"$tmp/sim_exports"
missing=$(comm -23 "$tmp/sim_exports" "$tmp/table" | tr '\n' ' ')
n=$(wc -l <"$tmp/sim_exports")
if [ "$n" -lt 10 ]; then
    fail "the simulator exports only $n KPI functions (wrong artifact?)"
elif [ -z "$missing" ]; then
    pass "all $n KPI functions the simulator exports are in $table"
else
    fail "the simulator exports KPI functions missing from $table: $missing"
fi

if [ ! -d "$exports_dir" ]; then
    skip "simulator exports vs Apple's export lists: $exports_dir not found"
    finish
fi
# x86_64 sets (docs/kext-build.md section 5): C.exports + C.x86_64.exports + C.x86_64.MacOSX.exports.
exports_of() { # exports_of COMPONENT...
    for c in "$@"; do
        for f in "$exports_dir/$c.exports" "$exports_dir/$c.x86_64.exports" \
            "$exports_dir/$c.x86_64.MacOSX.exports"; do
            [ -f "$f" ] && cat "$f"
        done
    done | grep -vE '^[[:space:]]*(#|$)' | sed -E 's/[[:space:]]//g; s/:.*//; s/^_//' | sort -u
}
exports_of BSDKernel Libkern Mach Unsupported IOKit >"$tmp/public"
exports_of Private >"$tmp/private"
private_only=$(comm -23 "$tmp/sim_exports" "$tmp/public" | comm -12 - "$tmp/private" | tr '\n' ' ')
unexported=$(comm -23 "$tmp/sim_exports" "$tmp/public" | comm -23 - "$tmp/private" | tr '\n' ' ')
if [ -z "$private_only$unexported" ]; then
    pass "all $n simulator KPI functions are in Apple's public x86_64 export lists (none private-only)"
else
    [ -n "$private_only" ] && fail "simulator exports only in Private*.exports: $private_only"
    [ -n "$unexported" ] && fail "simulator exports in no x86_64 export list: $unexported"
fi
finish
