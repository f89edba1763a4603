#!/usr/bin/env bash
# Suite kext-build (issues 4, 13): builds the universal target/tunnel.kext with scripts/build.sh,
# then checks each slice with the LLVM tools (independently of kext-bundle) and the whole bundle
# with `kext-bundle verify` (x86_64: structure, kmod_info, Info.plist, imports, relocation
# simulator; arm64e: the kernel-collection builder's checks and collections).
# Prints one PASS/FAIL/SKIP line per check and closes with "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
# shellcheck source=tests/suites/lib/report.sh
. tests/suites/lib/report.sh

if [ "$(uname -s)" = Darwin ]; then
    objdump=${OBJDUMP:-objdump}
    objdump_arm64e=${OBJDUMP:-objdump}
    nm=${NM:-nm}
    lipo=${LIPO:-lipo}
else
    export PATH="/usr/lib/llvm-19/bin:$PATH"
    objdump=${OBJDUMP:-llvm-objdump-19}
    objdump_arm64e=${OBJDUMP_ARM64E:-llvm-objdump-22}
    nm=${NM:-llvm-nm-19}
    lipo=${LIPO:-llvm-lipo-19}
fi
bundle=target/tunnel.kext
exe=$bundle/Contents/MacOS/tunnel
image=target/test-logs/tunnel.x86_64
arm64e_image=target/test-logs/tunnel.arm64e
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
if [ ! -f "$exe" ] || [ ! -f "$plist" ]; then
    fail "$bundle/Contents/{Info.plist,MacOS/tunnel} exist"
    finish
fi
pass "$bundle/Contents/{Info.plist,MacOS/tunnel} exist"

archs=$("$lipo" -info "$exe" 2>&1)
if grep -qE 'are: x86_64 arm64e *$' <<<"$archs" &&
    "$lipo" "$exe" -thin x86_64 -output "$image" && "$lipo" "$exe" -thin arm64e -output "$arm64e_image"; then
    pass "llvm-lipo: a universal executable with x86_64 and arm64e slices"
else
    fail "llvm-lipo -info: $archs"
    finish
fi

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

# ---- the arm64e slice, read by LLVM 22's objdump (docs/kext-build.md 9.1) ----
aheaders=$("$objdump_arm64e" --macho --private-headers "$arm64e_image")
if grep -qE '^MH_MAGIC_64 +ARM64 +E +PAK00 +KEXTBUNDLE +10 .*NOUNDEFS DYLDLINK TWOLEVEL' <<<"$aheaders"; then
    pass "arm64e header: ARM64 E with the kernel ABI caps (subtype 0xc0000002), KEXTBUNDLE, 10 load commands, flags 0x85"
else
    fail "arm64e header:"
    head -n 3 <<<"$aheaders" | sed 's/^/    /'
fi
acmds=$(awk '$1 == "cmd" {print $2}' <<<"$aheaders" | tr '\n' ' ')
want="LC_SEGMENT_64 LC_SEGMENT_64 LC_SEGMENT_64 LC_SEGMENT_64 LC_SEGMENT_64 LC_DYLD_CHAINED_FIXUPS LC_SYMTAB LC_DYSYMTAB LC_UUID LC_SEGMENT_SPLIT_INFO "
if [ "$acmds" = "$want" ]; then pass "arm64e load commands: $acmds"; else fail "arm64e load commands: $acmds"; fi
asegs=$(awk '$1 == "segname" && prev ~ /cmdsize/ {s = $2} $1 == "vmaddr" && s != "" {printf "%s@%s ", s, $2; s = ""} {prev = $0}' <<<"$aheaders")
bad_align=$(awk '$1 == "vmaddr" || $1 == "fileoff" {print $1, $2}' <<<"$aheaders" |
    while read -r field v; do [ $((v % 16384)) -eq 0 ] || echo "$field $v"; done)
if [ "$(awk '{for (i = 1; i <= NF; i++) {split($i, a, "@"); printf "%s ", a[1]}}' <<<"$asegs")" = "__TEXT __TEXT_EXEC __DATA __DATA_CONST __LINKEDIT " ] && [ -z "$bad_align" ]; then
    pass "arm64e segments on 16 KiB boundaries: $asegs"
else
    fail "arm64e segments: $asegs ${bad_align:+(not 16 KiB aligned: $bad_align)}"
fi
chains=$("$objdump_arm64e" --macho --chained-fixups "$arm64e_image" 2>&1)
formats=$(awk '/pointer_format =/ {print $3}' <<<"$chains" | sort -u | tr '\n' ' ')
pages=$(awk '/page_size =/ {print $3}' <<<"$chains" | sort -u | tr '\n' ' ')
ords=$(awk '/lib_ordinal =/ {print $3}' <<<"$chains" | sort -u | tr '\n' ' ')
nimports=$(awk '/imports_count/ {print $3}' <<<"$chains")
if [ "$formats" = "7 " ] && [ "$pages" = "0x1000 " ] && [ "$ords" = "-2 " ] && [ "${nimports:-0}" -gt 0 ]; then
    pass "arm64e chained fixups: pointer format 7 (ARM64E_KERNEL), 4 KiB chain pages, $nimports flat-namespace imports"
else
    fail "arm64e chained fixups: formats '$formats', page sizes '$pages', library ordinals '$ords'"
fi
aimports=$(awk '/name_offset/ {gsub(/[()]/, "", $4); print $4}' <<<"$chains" | sort -u)
if [ ! -d "$exports_dir" ]; then
    skip "arm64e imports vs Apple's arm64 export lists: $exports_dir not found"
else
    allowed64=$(for b in $declared; do
        case $b in
            com.apple.kpi.bsd) c=BSDKernel ;;
            com.apple.kpi.libkern) c=Libkern ;;
            com.apple.kpi.mach) c=Mach ;;
            com.apple.kpi.unsupported) c=Unsupported ;;
            com.apple.kpi.iokit) c=IOKit ;;
            *) continue ;;
        esac
        cat "$exports_dir/$c.exports" "$exports_dir/$c.arm64.exports" "$exports_dir/$c.arm64.MacOSX.exports" 2>/dev/null
    done | sed -e 's/#.*//' -e 's/:.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u)
    missing=$(comm -23 <(cat <<<"$aimports") <(cat <<<"$allowed64"))
    if [ -n "$aimports" ] && [ -z "$missing" ]; then
        pass "every arm64e import ($(wc -l <<<"$aimports" | tr -d ' ')) is in the arm64 export lists of a declared bundle"
    else
        fail "arm64e imports no declared bundle exports on arm64: $(tr '\n' ' ' <<<"$missing")"
    fi
fi
asects=$(awk '$1 == "sectname" {print $2}' <<<"$aheaders" | tr '\n' ' ')
if grep -qE '__bitcode|__cmdline|__eh_frame|__compact_unwind' <<<"$asects"; then
    fail "arm64e sections include bitcode or unwind data: $asects"
else
    pass "arm64e sections have no __bitcode/__cmdline/unwind data: $asects"
fi
# a branch left at 0 (b/bl to itself) is what a dropped relocation leaves on arm64
azero=$("$objdump_arm64e" -d "$arm64e_image" | grep -E '^ *[0-9a-f]+: (94000000|14000000) ' || true)
if [ -z "$azero" ]; then pass "arm64e: no branch to itself (no dropped relocation)"; else fail "arm64e branches with offset 0:"$'\n'"$azero"; fi

verify_log=target/test-logs/kext-build-verify.log
# (verify prints SKIP for the export-list checks when the directory is absent)
if "${CARGO_TARGET_DIR:-target}/debug/kext-bundle" verify "$bundle" --kpi shim/kpi-symbols.txt \
    --exports "$exports_dir" --signed _tun_ip_cdevsw --signed _tun_ether_cdevsw >"$verify_log" 2>&1; then
    if [ -d "$exports_dir" ] && ! grep -q '^PASS collection with per-segment 16 KiB slides' "$verify_log"; then
        fail "kext-bundle verify built no arm64e collection:"
    else
        pass "kext-bundle verify (x86_64: structure, kmod_info, Info.plist, imports, relocation simulator; arm64e: structure, auth, binds, collections)"
    fi
else
    fail "kext-bundle verify:"
fi
sed 's/^/    /' "$verify_log"
finish
