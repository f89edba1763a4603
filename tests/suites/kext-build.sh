#!/usr/bin/env bash
# Suite kext-build (issue 4): builds target/tunnel.kext with scripts/build.sh, then checks the
# real output with the LLVM tools (independently of kext-bundle) and with `kext-bundle verify`
# (structure, kmod_info, Info.plist, imports, relocation simulator).
# Prints one PASS/FAIL/SKIP line per check and closes with "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
# shellcheck source=tests/suites/lib/report.sh
. tests/suites/lib/report.sh

if [ "$(uname -s)" = Darwin ]; then
    objdump=${OBJDUMP:-objdump}
    nm=${NM:-nm}
else
    export PATH="/usr/lib/llvm-19/bin:$PATH"
    objdump=${OBJDUMP:-llvm-objdump-19}
    nm=${NM:-llvm-nm-19}
fi
bundle=target/tunnel.kext
image=$bundle/Contents/MacOS/tunnel
plist=$bundle/Contents/Info.plist
exports_dir=$root/../shared/xnu-exports
mkdir -p target/test-logs
log=target/test-logs/kext-build-build.log

echo "== scripts/build.sh (log: $log)"
rm -rf "$bundle"
if bash scripts/build.sh >"$log" 2>&1; then
    pass "scripts/build.sh exits 0"
else
    fail "scripts/build.sh failed; last lines:"
    tail -n 25 "$log" | sed 's/^/    /'
fi
if [ ! -f "$image" ] || [ ! -f "$plist" ]; then
    fail "$bundle/Contents/{Info.plist,MacOS/tunnel} exist"
    finish
fi
pass "$bundle/Contents/{Info.plist,MacOS/tunnel} exist"

headers=$("$objdump" --macho --private-headers "$image")
if grep -qE '^MH_MAGIC_64 +X86_64 +ALL +0x00 +KEXTBUNDLE .*NOUNDEFS DYLDLINK TWOLEVEL' <<<"$headers"; then
    pass "llvm-objdump --private-headers: MH_MAGIC_64 X86_64 ALL KEXTBUNDLE, NOUNDEFS DYLDLINK TWOLEVEL"
else
    fail "mach header is not an x86_64 KEXTBUNDLE with NOUNDEFS DYLDLINK TWOLEVEL:"
    head -n 3 <<<"$headers" | sed 's/^/    /'
fi

cmds=$(awk '$1 == "cmd" {print $2}' <<<"$headers" | sort | tr '\n' ' ')
want="LC_DYSYMTAB LC_SEGMENT_64 LC_SEGMENT_64 LC_SEGMENT_64 LC_SOURCE_VERSION LC_SYMTAB LC_UUID LC_VERSION_MIN_MACOSX "
if [ "$cmds" = "$want" ]; then pass "exactly the 8 load commands a kext needs"; else fail "load commands: $cmds"; fi

segs=$(awk '$1 == "segname" && prev ~ /cmdsize/ {print $2} {prev=$0}' <<<"$headers" | tr '\n' ' ')
text_addr=$(awk '$1 == "segname" && $2 == "__TEXT" {s=1} s && $1 == "vmaddr" {print $2; exit}' <<<"$headers")
if [ "$segs" = "__TEXT __DATA __LINKEDIT " ] && [ "$((text_addr))" -eq 0 ]; then
    pass "segments __TEXT (at 0), __DATA, __LINKEDIT"
else
    fail "segments '$segs', __TEXT at $text_addr"
fi

# relocations: only extern BRANCH (pcrel long) / extern UNSIGNED quad / local UNSIGNED quad
relocs=$("$objdump" --macho -r "$image")
bad_relocs=$(awk '
    /^External relocation/ {mode = "ext"; next}
    /^Local relocation/ {mode = "loc"; next}
    /^address/ {next}
    NF >= 6 && mode == "ext" && !(($2 == "True" && $3 == "long" && $4 == "True" && $5 == "BRANCH") || ($2 == "False" && $3 == "quad" && $4 == "True" && $5 == "UNSIGND")) {print}
    NF >= 6 && mode == "loc" && !($2 == "False" && $3 == "quad" && $4 == "False" && $5 == "UNSIGND") {print}
' <<<"$relocs")
n_ext=$(awk '/^External relocation/ {print $4}' <<<"$relocs")
n_loc=$(awk '/^Local relocation/ {print $4}' <<<"$relocs")
if [ -z "$bad_relocs" ]; then
    pass "relocations: ${n_ext:-0} external (BRANCH/UNSIGNED) + ${n_loc:-0} local (UNSIGNED quad), no other form"
else
    fail "relocation forms a kext loader refuses:"
    head -n 10 <<<"$bad_relocs" | sed 's/^/    /'
fi

# A relocation the linker dropped leaves a zero displacement behind: a call/jmp/jcc rel32 of 0
# (a jump to the next instruction) or a RIP-relative operand with no displacement, at an
# instruction no relocation covers.
hex_awk='function hex(h,  i, v) { v = 0; h = tolower(h); for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }'
reloc_sites=$(awk "$hex_awk"'/^(External|Local) relocation/ {on = 1; next} /^address/ {next}
    on && NF >= 6 && $1 ~ /^[0-9a-f]+$/ {print hex($1)}' <<<"$relocs" | sort -n)
zero_disp=$("$objdump" -d "$image" | awk -v sites="$reloc_sites" "$hex_awk"'
    BEGIN { n = split(sites, s, "\n"); for (i = 1; i <= n; i++) covered[s[i]] = 1 }
    /^ *[0-9a-f]+: / {
        # "   685: e8 00 00 00 00   <TAB>callq<TAB>0x68a <...>"
        split($0, parts, "\t"); asm = parts[2] " " parts[3]
        colon = index(parts[1], ":"); a = substr(parts[1], 1, colon - 1); sub(/^ */, "", a)
        addr = hex(a); bytes = substr(parts[1], colon + 1)
        nb = split(bytes, b, " ")
        zero = 0
        if (nb >= 5 && (b[1] == "e8" || b[1] == "e9") && b[2] b[3] b[4] b[5] == "00000000") zero = 1
        if (nb >= 6 && b[1] == "0f" && b[2] ~ /^8/ && b[3] b[4] b[5] b[6] == "00000000") zero = 1
        if (asm ~ /[ ,]\(%rip\)/) zero = 1
        if (!zero) next
        for (a = addr; a < addr + nb; a++) if (a in covered) next
        print
    }')
if [ -z "$zero_disp" ]; then
    pass "no relocation-free zero displacement in the code (a dropped relocation leaves one)"
else
    fail "zero displacements no relocation covers:"
    head -n 10 <<<"$zero_disp" | sed 's/^/    /'
fi

# (tool output is captured before grep -q: with pipefail, an early exit of grep would make
# the pipeline fail even when it matched)
disasm=$("$objdump" -d --no-show-raw-insn "$image")
if grep -qE '%[xyz]mm[0-9]' <<<"$disasm"; then
    fail "vector registers in the image's code"
else
    pass "no %xmm/%ymm/%zmm in the image's code"
fi

defined_ext=$("$nm" -g --defined-only "$image" | awk '{print $NF}' | tr '\n' ' ')
nm_m=$("$nm" -m "$image")
if [ "$defined_ext" = "_kmod_info " ] && grep -qE '\(__DATA,[^)]*\) external _kmod_info$' <<<"$nm_m"; then
    pass "_kmod_info is defined in __DATA and is the only export"
else
    fail "exports: '$defined_ext' (expected _kmod_info only, in __DATA)"
fi

undefs=$("$nm" -u "$image" | awk '{print $NF}')
if [ -z "$undefs" ]; then
    fail "the image imports nothing from the kernel (expected KPI imports)"
else
    missing=$(while read -r sym; do
        grep -qE "^${sym}[[:space:]]" shim/kpi-symbols.txt || echo "$sym"
    done <<<"$undefs")
    if [ -z "$missing" ]; then
        pass "all $(wc -l <<<"$undefs" | tr -d ' ') undefined symbols are in shim/kpi-symbols.txt"
    else
        fail "undefined symbols not in shim/kpi-symbols.txt: $(tr '\n' ' ' <<<"$missing")"
    fi
fi

declared=$(awk '/<key>OSBundleLibraries<\/key>/ {d=1; next} d && /<\/dict>/ {exit} d && /<key>/ {gsub(/.*<key>|<\/key>.*/, ""); print}' "$plist")
if [ ! -d "$exports_dir" ]; then
    skip "undefined symbols vs Apple's export lists: $exports_dir not found"
elif [ -z "$undefs" ]; then
    fail "undefined symbols vs Apple's export lists: nothing imported"
else
    allowed=$(for b in $declared; do
        case $b in
            com.apple.kpi.bsd) c=BSDKernel ;;
            com.apple.kpi.libkern) c=Libkern ;;
            com.apple.kpi.mach) c=Mach ;;
            com.apple.kpi.unsupported) c=Unsupported ;;
            com.apple.kpi.iokit) c=IOKit ;;
            *) continue ;;
        esac
        cat "$exports_dir/$c.exports" "$exports_dir/$c.x86_64.exports" "$exports_dir/$c.x86_64.MacOSX.exports" 2>/dev/null
    done | sed -e 's/#.*//' -e 's/:.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u)
    missing=$(comm -23 <(sort -u <<<"$undefs") <(cat <<<"$allowed"))
    if [ -z "$missing" ]; then
        pass "every undefined symbol is exported by a declared bundle ($(tr '\n' ' ' <<<"$declared"))"
    else
        fail "undefined symbols no declared bundle exports: $(tr '\n' ' ' <<<"$missing")"
    fi
fi

verify_log=target/test-logs/kext-build-verify.log
# (verify prints SKIP for the export-list checks when the directory is absent)
if "${CARGO_TARGET_DIR:-target}/debug/kext-bundle" verify "$bundle" --kpi shim/kpi-symbols.txt \
    --exports "$exports_dir" >"$verify_log" 2>&1; then
    pass "kext-bundle verify (structure, kmod_info, Info.plist, imports, relocation simulator)"
else
    fail "kext-bundle verify:"
fi
sed 's/^/    /' "$verify_log"
finish
