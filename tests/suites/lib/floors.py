#!/usr/bin/env python3
"""The module graph of the driver crate (src/), from its `crate::` paths, checked against the
floors of docs/style.md: entry points -> core -> KPI wrappers -> shim.

  python3 floors.py SRC_DIR

Prints one line per check, "PASS ..." or "FAIL ..." (with the offending edges or cycle), and
exits 1 if any failed. Checks:
  - no `kpi` module names a module outside `kpi` (the wrappers know nothing of tun);
  - no core module names `entry` (the entry points are the top floor);
  - the core modules have no cycle, nor have the `kpi` modules among themselves;
  - the `unsafe` keyword appears only under src/kpi/ (comments aside).
"""
import os
import re
import sys


def module_of(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "mod"):
        rel = rel[:-1]
    return "::".join(rel)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    # String literals can hold anything (log text); drop their contents.
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def expand_braces(path):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (enough for `use` trees)."""
    m = re.search(r"\{", path)
    if not m:
        return [path]
    depth, end = 0, None
    for i in range(m.start(), len(path)):
        if path[i] == "{":
            depth += 1
        elif path[i] == "}":
            depth -= 1
            if depth == 0:
                end = i
                break
    prefix, inner, rest = path[: m.start()], path[m.start() + 1 : end], path[end + 1 :]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    out = []
    for part in parts:
        part = part.strip()
        if part:
            out += expand_braces(prefix + part + rest)
    return out


def referenced_paths(text):
    """Every `crate::...` path, with `use crate::{...}` trees expanded."""
    paths = []
    for m in re.finditer(r"\$?crate::(\{(?:[^{}]|\{[^{}]*\})*\}|[A-Za-z_][A-Za-z0-9_:]*(?:::\{(?:[^{}]|\{[^{}]*\})*\})?)", text):
        for p in expand_braces(m.group(1)):
            paths.append(re.sub(r"\s+", "", p))
    return paths


def main(src):
    files = []
    for root, _, names in os.walk(src):
        files += [os.path.join(root, n) for n in names if n.endswith(".rs")]
    modules = {module_of(src, f): f for f in files}
    edges = {}
    unsafe_outside = []
    for mod, f in modules.items():
        text = strip_comments(open(f, encoding="utf-8").read())
        targets = set()
        for p in referenced_paths(text):
            segs = [s for s in p.split("::") if s]
            # The longest module prefix of the path is the module it names.
            target = None
            for n in range(len(segs), 0, -1):
                if "::".join(segs[:n]) in modules:
                    target = "::".join(segs[:n])
                    break
            if target is None and segs and segs[0] == "klog":
                target = "kpi::log"  # #[macro_export] puts the macro at the crate root
            if target and target != mod and target != "":
                targets.add(target)
        edges[mod] = targets
        rel = os.path.relpath(f, src)
        if not rel.startswith("kpi" + os.sep) and re.search(r"\bunsafe\b", text):
            unsafe_outside.append(rel)

    def floor(m):
        if m == "entry":
            return "entry"
        if m == "kpi" or m.startswith("kpi::"):
            return "kpi"
        return "core" if m else "root"

    failed = 0

    def report(ok, name, details=()):
        nonlocal failed
        print(("PASS " if ok else "FAIL ") + name)
        for d in details:
            print("    " + d)
        failed += not ok

    up = sorted(f"{m} -> {t}" for m, ts in edges.items() for t in ts
                if floor(m) == "kpi" and floor(t) in ("core", "entry"))
    report(not up, "src/kpi names no core or entry module (the wrappers know nothing of tun)", up)
    up = sorted(f"{m} -> {t}" for m, ts in edges.items() for t in ts
                if floor(m) == "core" and floor(t) == "entry")
    report(not up, "no core module names the entry points (entry is the top floor)", up)

    def find_cycle(nodes):
        graph = {n: sorted(t for t in edges.get(n, ()) if t in nodes) for n in nodes}
        state, stack = {}, []

        def visit(n):
            state[n] = 1
            stack.append(n)
            for t in graph[n]:
                if state.get(t) == 1:
                    return stack[stack.index(t):] + [t]
                if t not in state:
                    c = visit(t)
                    if c:
                        return c
            stack.pop()
            state[n] = 2
            return None

        for n in sorted(nodes):
            if n not in state:
                c = visit(n)
                if c:
                    return c
        return None

    for fl in ("core", "kpi"):
        nodes = {m for m in modules if floor(m) == fl}
        cycle = find_cycle(nodes)
        report(cycle is None, f"the {fl} modules have no cycle ({len(nodes)} modules)",
               [" -> ".join(cycle)] if cycle else [])
    report(not unsafe_outside, "`unsafe` appears only under src/kpi/", sorted(unsafe_outside))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
