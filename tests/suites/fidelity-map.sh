#!/usr/bin/env bash
# Suite fidelity-map: checks docs/xnu-fidelity.md, the fidelity map of the simulated XNU
# (docs/xnu-sim.md section 1: the simulator imitates XNU's source, may be stricter, never kinder).
#   (a) every symbol of shim/kpi-symbols.txt has exactly one row, and every row names a symbol
#       of that table;
#   (b) every row's "XNU source" cell names an XNU path (bsd/, osfmk/, libkern/, iokit/, libsa/);
#   (c) every row's "pinned by" cell lists tests as tests/xnu-sim/tests/FILE.rs::function, each
#       file existing and defining `fn function(`; only the libc-like symbols below may have "—";
#   (d) every #[no_mangle] function of tests/xnu-sim/src/**/*.rs whose name has a row carries a
#       doc comment (/// lines directly above its attributes) naming an XNU path: one PASS/FAIL
#       line per function.
# Builds nothing. Prints one PASS/FAIL line per check and closes with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
# shellcheck source=tests/suites/lib/report.sh
. tests/suites/lib/report.sh

map=${FIDELITY_MAP:-docs/xnu-fidelity.md}
table=${KPI_TABLE:-shim/kpi-symbols.txt}
sim_src=${XNUSIM_SRC:-tests/xnu-sim/src}
# Symbols the simulator takes from the host libc (or owns as a plain C copy or log capture),
# and the stack protector, which only the kernel build references: "—" is allowed for them.
libc_like="___bzero ___stack_chk_fail ___stack_chk_guard _bcmp _bzero _memcmp _memcpy _memmove
_memset _printf _snprintf _strlcpy"
# An XNU source path: a top-level XNU directory followed by a file or directory name.
xnu_path='(^|[^A-Za-z0-9_])(bsd|osfmk|libkern|iokit|libsa)/[A-Za-z0-9_]'
# The "—" that marks an empty "pinned by" cell (U+2014).
dash=$'\xe2\x80\x94'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f "$map" ]; then
    fail "$map is missing"
    finish
fi
grep -vE '^[[:space:]]*(#|$)' "$table" | awk '{print $1}' | sort -u >"$tmp/table"
if [ ! -s "$tmp/table" ]; then
    fail "$table is empty or missing"
    finish
fi

# The header of every table in the map: symbol, XNU source, simulator models, stricter than XNU,
# not modelled, pinned by.
header='^\| *symbol *\| *XNU source *\| *simulator models *\| *stricter than XNU *\| *not modelled *\| *pinned by *\|[[:space:]]*$'
headers=$(grep -cE '^\| *symbol *\|' "$map")
good_headers=$(grep -cE "$header" "$map")
if [ "$headers" -gt 0 ] && [ "$headers" -eq "$good_headers" ]; then
    pass "$map: all $headers tables have the columns symbol, XNU source, simulator models, stricter than XNU, not modelled, pinned by"
else
    fail "$map: $good_headers of $headers tables have the expected columns" \
        "expected: | symbol | XNU source | simulator models | stricter than XNU | not modelled | pinned by |"
fi

# Rows: table lines whose first cell is a backticked symbol. Cells are split on "|", so a cell
# must not contain one. rows.tsv: line, symbol, XNU source cell, cell count, pinned-by cell.
awk -F'|' -v OFS='\t' '
    /^\|/ {
        first = $2
        gsub(/^[ \t]+|[ \t]+$/, "", first)
        if (first !~ /^`[^`]+`$/) next
        sym = substr(first, 2, length(first) - 2)
        cells = NF - 2
        pinned = $(NF - 1)
        gsub(/^[ \t]+|[ \t]+$/, "", pinned)
        print NR, sym, $3, cells, pinned
    }' "$map" >"$tmp/rows.tsv"

cut -f2 "$tmp/rows.tsv" | sort >"$tmp/rows_all"
sort -u "$tmp/rows_all" >"$tmp/rows"
n_rows=$(wc -l <"$tmp/rows_all")

missing=$(comm -23 "$tmp/table" "$tmp/rows" | tr '\n' ' ')
if [ -z "$missing" ]; then
    pass "every one of the $(wc -l <"$tmp/table") symbols of $table has a row ($n_rows rows)"
else
    fail "symbols of $table without a row in $map:" "$missing"
fi

unknown=$(comm -13 "$tmp/table" "$tmp/rows" | tr '\n' ' ')
if [ -z "$unknown" ]; then
    pass "every row of $map names a symbol of $table"
else
    fail "rows of $map naming symbols not in $table:" "$unknown"
fi

dups=$(uniq -d "$tmp/rows_all" | tr '\n' ' ')
if [ -z "$dups" ]; then
    pass "no symbol has two rows"
else
    fail "symbols with more than one row:" "$dups"
fi

bad_cells=$(awk -F'\t' '$4 != 6 {printf "line %s %s: %s cells\n", $1, $2, $4}' "$tmp/rows.tsv")
if [ -z "$bad_cells" ]; then
    pass "every row has six cells"
else
    fail "rows without exactly six cells (a stray \"|\" inside a cell?):" "$bad_cells"
fi

no_xnu=$(awk -F'\t' -v re="$xnu_path" '$3 !~ re {printf "line %s %s\n", $1, $2}' "$tmp/rows.tsv")
if [ -z "$no_xnu" ]; then
    pass "every row's XNU source names an XNU path (bsd/, osfmk/, libkern/, iokit/, libsa/)"
else
    fail "rows whose XNU source names no XNU path:" "$no_xnu"
fi

is_libc_like() { # is_libc_like SYMBOL
    local s
    for s in $libc_like; do
        [ "$s" = "$1" ] && return 0
    done
    return 1
}

# (c) the "pinned by" cells.
unpinned=()
bad_pins=()
n_pins=0
while IFS=$'\t' read -r line sym _ _ pinned; do
    if [ -z "$pinned" ] || [ "${pinned#"$dash"}" != "$pinned" ] || [ "$pinned" = "-" ]; then
        is_libc_like "$sym" || unpinned+=("line $line $sym: \"${pinned:-}\"")
        continue
    fi
    IFS=',' read -r -a entries <<<"$pinned"
    for entry in "${entries[@]}"; do
        entry=${entry//\`/}
        entry=$(printf '%s' "$entry" | sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//')
        [ -z "$entry" ] && continue
        n_pins=$((n_pins + 1))
        if [[ ! "$entry" =~ ^(tests/xnu-sim/tests/[A-Za-z0-9_/]+\.rs)::([A-Za-z_][A-Za-z0-9_]*)$ ]]; then
            bad_pins+=("line $line $sym: \"$entry\" is not tests/xnu-sim/tests/FILE.rs::function")
            continue
        fi
        file=${BASH_REMATCH[1]}
        fn=${BASH_REMATCH[2]}
        if [ ! -f "$file" ]; then
            bad_pins+=("line $line $sym: $file does not exist ($fn)")
        elif ! grep -qE "^[[:space:]]*(pub(\([a-z]+\))?[[:space:]]+)?(async[[:space:]]+)?(unsafe[[:space:]]+)?fn[[:space:]]+${fn}[[:space:]]*(<[^>]*>)?\(" "$file"; then
            bad_pins+=("line $line $sym: $file has no fn $fn(")
        fi
    done
done <"$tmp/rows.tsv"

if [ ${#unpinned[@]} -eq 0 ]; then
    pass "every row outside the libc-like set is pinned by at least one test"
else
    fail "${#unpinned[@]} rows outside the libc-like set have no test in \"pinned by\":" "${unpinned[@]}"
fi
if [ ${#bad_pins[@]} -eq 0 ]; then
    pass "all $n_pins \"pinned by\" entries name an existing test function"
else
    fail "${#bad_pins[@]} of $n_pins \"pinned by\" entries do not name an existing test function:" \
        "${bad_pins[@]}"
fi

# (d) doc comments of the simulator's KPI functions. For each #[no_mangle] function, awk prints
# file, line, name and 1 when the /// block directly above its attributes names an XNU path.
sed 's/^_//' "$tmp/rows" | sort -u >"$tmp/row_names"
mapfile -d '' sources < <(find "$sim_src" -name '*.rs' -print0 | sort -z)
if [ ${#sources[@]} -eq 0 ]; then
    fail "no Rust sources under $sim_src"
    finish
fi
awk -v re="$xnu_path" -v OFS='\t' '
    FNR == 1 { doc = ""; in_attrs = 0; nm = 0 }
    /^[[:space:]]*\/\/\// {
        if (in_attrs) { doc = ""; in_attrs = 0; nm = 0 }
        line = $0
        sub(/^[[:space:]]*\/\/\/[[:space:]]?/, "", line)
        doc = doc " " line
        next
    }
    /^[[:space:]]*#\[/ {
        in_attrs = 1
        if ($0 ~ /no_mangle/) nm = 1
        next
    }
    nm && match($0, /fn[[:space:]]+[A-Za-z_][A-Za-z0-9_]*[[:space:]]*\(/) {
        name = substr($0, RSTART, RLENGTH)
        sub(/^fn[[:space:]]+/, "", name)
        sub(/[[:space:]]*\($/, "", name)
        print FILENAME, FNR, name, (doc ~ re) ? 1 : 0
    }
    { doc = ""; in_attrs = 0; nm = 0 }
' "${sources[@]}" >"$tmp/kpi_fns.tsv"

n_fns=0
while IFS=$'\t' read -r file line name cites; do
    grep -qxF "$name" "$tmp/row_names" || continue
    n_fns=$((n_fns + 1))
    if [ "$cites" = 1 ]; then
        pass "doc comment of $name ($file:$line) names an XNU path"
    else
        fail "doc comment of $name ($file:$line) does not name an XNU path (///-lines directly above #[no_mangle])"
    fi
done <"$tmp/kpi_fns.tsv"
if [ "$n_fns" -lt 10 ]; then
    fail "found only $n_fns #[no_mangle] KPI functions with a row under $sim_src (parser broken?)"
fi

finish
