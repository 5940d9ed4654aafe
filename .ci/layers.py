#!/usr/bin/env python3
"""The layer rule, checked from the imports (issue 13, DESIGN.md "Seams").

`src/lib.rs`'s section "# Layers" lists every top-level module in a table,
top layer first. A module may import only modules listed below it; so the
graph has no cycle, and a new edge upward fails CI with its file and line.

Imports are read precisely: every `use crate::...` tree (nested groups,
`self`, `as`, globs) and every `crate::name` path in code, with comments,
doc comments, string literals and `#[cfg(test)] mod ... { }` blocks left out
(unit tests may reach anywhere). A name the crate root re-exports
(`pub use module::Name`) counts as its module.

Usage: .ci/layers.py [SRC_DIR]    prints the graph; exit 1 on a violation.
"""
import os
import re
import sys


def strip(text):
    """Removes comments, string and char literals, and test modules."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == '"' or text.startswith('r"', i) or text.startswith('r#"', i):
            if c == "r":
                hashes = 0
                k = i + 1
                while text[k] == "#":
                    hashes += 1
                    k += 1
                end = '"' + "#" * hashes
                j = text.find(end, k + 1)
                i = n if j < 0 else j + len(end)
            else:
                k = i + 1
                while k < n and text[k] != '"':
                    k += 2 if text[k] == "\\" else 1
                i = k + 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i : i + 4])
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    # `#[cfg(test)] mod name { ... }` blocks.
    res, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        res.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    res.append(text[i:])
    return "".join(res)


def tokens(s):
    return re.findall(r"::|[{},*;]|\w+", s)


def use_heads(toks, i):
    """Parses one use tree at toks[i]; returns (top-level names, next i)."""
    if toks[i] == "{":
        heads, i = [], i + 1
        while toks[i] != "}":
            h, i = use_heads(toks, i)
            heads += h
            if toks[i] == ",":
                i += 1
        return heads, i + 1
    if toks[i] == "*":
        return [], i + 1
    head = toks[i]
    i += 1
    # Skip the rest of this path: `::seg`, `::{...}`, `as name`.
    while i < len(toks):
        if toks[i] == "::":
            i += 1
            if toks[i] == "{":
                depth = 0
                while True:
                    depth += {"{": 1, "}": -1}.get(toks[i], 0)
                    i += 1
                    if depth == 0:
                        break
            else:
                i += 1
        elif toks[i] == "as":
            i += 2
        else:
            break
    return [head], i


def crate_refs(text):
    """Top-level names referred to as `crate::...` (in `use` or in code)."""
    toks = tokens(text)
    names = []
    for k in range(len(toks) - 2):
        if toks[k] == "crate" and toks[k + 1] == "::" and (k == 0 or toks[k - 1] != "::"):
            heads, _ = use_heads(toks, k + 2)
            names += heads
    return names


def root_exports(lib_text, mods):
    """Names `pub use module::...` makes available at the crate root."""
    out = {}
    for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]+);", lib_text):
        toks = tokens(m.group(1))
        if not toks or toks[0] not in mods:
            continue
        # every leaf name of the tree
        for name in re.findall(r"\b\w+\b", m.group(1))[1:]:
            if name not in ("self", "as") and name not in mods:
                out.setdefault(name, toks[0])
    return out


def declared_order(lib_text, mods):
    """The modules of the "# Layers" table, top first."""
    sec = re.search(r"//! # Layers\n(.*?)(?=\n//! #|\n[^/])", lib_text, re.S)
    if not sec:
        sys.exit("error: src/lib.rs has no '# Layers' section")
    order = []
    for line in sec.group(1).splitlines():
        cells = [c.strip() for c in line.lstrip("/! ").split("|")]
        for c in cells:
            for name in re.findall(r"`(\w+)`", c):
                if name in mods and name not in order:
                    order.append(name)
                    break
            else:
                continue
            break
    return order


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    mods = {}
    for name in sorted(os.listdir(src)):
        p = os.path.join(src, name)
        if name in ("lib.rs", "main.rs"):
            continue
        if os.path.isdir(p):
            mods[name] = p
        elif name.endswith(".rs"):
            mods[name[:-3]] = p
    lib_text = open(os.path.join(src, "lib.rs"), encoding="utf-8").read()
    exports = root_exports(strip(lib_text), mods)
    order = declared_order(lib_text, mods)
    missing = sorted(set(mods) - set(order))
    rank = {m: i for i, m in enumerate(order)}

    edges, where = {m: set() for m in mods}, {}
    for m, p in mods.items():
        paths = [p] if os.path.isfile(p) else [
            os.path.join(r, f) for r, _, fs in os.walk(p) for f in fs if f.endswith(".rs")
        ]
        for f in sorted(paths):
            if os.path.basename(f) in ("tests.rs", "testing.rs"):
                continue
            text = strip(open(f, encoding="utf-8").read())
            for name in crate_refs(text):
                t = name if name in mods else exports.get(name)
                if t and t != m:
                    edges[m].add(t)
                    where.setdefault((m, t), f)

    for m in order:
        print(f"{m} -> {', '.join(sorted(edges[m], key=rank.get)) or '(nothing)'}")
    bad = [
        (m, t) for m in mods for t in edges[m] if m in rank and t in rank and rank[t] <= rank[m]
    ]
    ok = True
    if missing:
        print(f"error: modules missing from lib.rs's '# Layers' table: {', '.join(missing)}")
        ok = False
    for m, t in sorted(bad):
        print(f"error: {m} imports {t}, which is not below it ({where[(m, t)]})")
        ok = False
    print(f"layers: {len(mods)} modules, {sum(len(e) for e in edges.values())} edges, "
          f"{len(bad)} upward")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
