#!/usr/bin/env python3
"""Lists the import cycles between the crate's modules (one module per file).

An edge A -> B means a file of module A names module B in a `use` or a path
(`crate::b::...`, `super::b::...`). Edges to a module's own ancestors are left out:
they go through the parent's re-exports (`crate::nn::Images`), which the parent
declares. Prints each cycle (strongly connected group) or "no module cycles".
Run from the repository root: python3 .ci/module-cycles.py
"""
import os
import re
import sys

SRC = "src"


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] in ("lib", "main"):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text):
    # Test modules may import what they test from anywhere.
    i = text.find("#[cfg(test)]\nmod tests")
    return text if i < 0 else text[:i]


modules = {}
for root, _, files in os.walk(SRC):
    for f in files:
        if f.endswith(".rs"):
            p = os.path.join(root, f)
            modules[module_of(p)] = strip_tests(open(p, encoding="utf-8").read())


def resolve(start, names):
    """The longest known module named by the path `names` from `start`."""
    best = None
    for k in range(1, len(names) + 1):
        cand = start + tuple(names[:k])
        if cand in modules:
            best = cand
    return best


edges = {m: set() for m in modules}
path_re = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
group_re = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\}", re.S)
for m, text in modules.items():
    targets = []
    for head, rest in path_re.findall(text):
        targets.append((head, [n for n in rest.split("::") if n]))
    for head, rest, inner in group_re.findall(text):
        prefix = [n for n in rest.split("::") if n]
        for item in re.split(r"[,\s{}]+", inner):
            name = item.split("::")[0]
            if name and name not in ("self", "*"):
                targets.append((head, prefix + [name]))
    for head, names in targets:
        base = () if head == "crate" else m[:-1]
        t = resolve(base, names)
        if t is None or t == m or m[: len(t)] == t:
            continue
        edges[m].add(t)

# Tarjan's strongly connected components.
index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(comp)


for v in sorted(modules):
    if v not in index:
        visit(v)
name = lambda m: "::".join(m) or "crate"
if not sccs:
    print("no module cycles")
for comp in sccs:
    print("cycle: " + ", ".join(sorted(name(m) for m in comp)))
sys.exit(1 if sccs else 0)
