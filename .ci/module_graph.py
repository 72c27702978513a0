#!/usr/bin/env python3
"""Fails when a crate's modules depend on each other in a loop.

Reads the module graph that `cargo modules dependencies --no-fns --no-types --no-traits` prints (DOT, where
every "uses" edge of an item has been moved up to the module that owns it) and looks for cycles among the
"uses" edges between modules. Edges between a module and its own ancestors or descendants are left out: a
parent that re-exports its children's items while they use its shared helpers is one unit, not a loop.

cargo-modules sees `use` declarations and signatures but not a path written out inside a function body
(`crate::api::domains::webhook_data(state)`), so with `--sources DIR` the crate's source files are read too
and every `crate::…` path in them adds an edge from the file's module to the deepest module the path names.

cargo-modules' own `--acyclic` is not used because it checks the graph of items before filtering, where
every method taking `&self` is a cycle with its type, so it fails on any crate.

Usage: module_graph.py GRAPH.dot [--sources CRATE/src] [--report]
       (exit 1 on a loop; --report prints the counts and never fails)
"""

import re
import sys

EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" \[label="uses"')


def nested(a, b):
    return a == b or a.startswith(b + "::") or b.startswith(a + "::")


def module_edges(path):
    edges = set()
    with open(path, encoding="utf-8") as dot:
        for line in dot:
            match = EDGE.match(line)
            if match and not nested(match.group(1), match.group(2)):
                edges.add((match.group(1), match.group(2)))
    return edges


def source_modules(src):
    """Module path (`crate::a::b`) of every source file under `src`."""
    import os

    modules = {}
    for directory, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.relpath(os.path.join(directory, name), src)[:-3].split(os.sep)
            if path[-1] in ("mod", "lib", "main"):
                path = path[:-1]
            modules["::".join(path)] = os.path.join(directory, name)
    return modules


USE = re.compile(r"\buse\s+crate::([^;]+);", re.S)
PATH = re.compile(r"\bcrate((?:::[a-z_][a-z0-9_]*)+)")


def expand_use_tree(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"] (aliases and globs cut off)."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, text):
        depth, start, parts = 0, 0, []
        for i, ch in enumerate(text):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(text[start:i])
                start = i + 1
        parts.append(text[start:])
        for part in parts:
            if not part:
                continue
            if "{" in part:
                head, _, rest = part.partition("{")
                walk(prefix + head, rest[: rest.rfind("}")])
            else:
                out.append((prefix + part).split("as")[0].rstrip(":*"))

    walk("", tree)
    return out


def source_edges(src, crate_name):
    """Edges from each file's module to every module its `crate::` paths name."""
    modules = source_modules(src)
    known = set(modules)
    edges = set()
    for module, file in modules.items():
        with open(file, encoding="utf-8") as f:
            # Comments name modules without depending on them.
            text = "\n".join(line for line in f if not line.lstrip().startswith("//"))
        # Test modules are children of the file's module; their paths count as the file's (they are nested
        # in it, so a test using its parent never makes a loop).
        targets = []
        for tree in USE.findall(text):
            targets.extend(expand_use_tree(tree))
        targets.extend(m.lstrip(":") for m in PATH.findall(text))
        for target in targets:
            parts = [p for p in target.split("::") if p]
            while parts and "::".join(parts) not in known:
                parts.pop()
            name = "::".join(parts)
            a = crate_name + ("::" + module if module else "")
            b = crate_name + ("::" + name if name else "")
            if not nested(a, b):
                edges.add((a, b))
    return edges


def strongly_connected(nodes, edges):
    """Tarjan's algorithm, iterative: the components with more than one module."""
    successors = {n: [] for n in nodes}
    for a, b in edges:
        successors[a].append(b)
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(successors[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(successors[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    edges = module_edges(sys.argv[1])
    if "--sources" in sys.argv:
        src = sys.argv[sys.argv.index("--sources") + 1]
        crate_name = next((a.split("::")[0] for a, _ in edges), None)
        if crate_name:
            edges |= source_edges(src, crate_name)
    nodes = {n for edge in edges for n in edge}
    if not nodes and "--report" not in sys.argv:
        # A crate with modules always has some dependency between them; an empty graph means cargo-modules
        # printed nothing (it failed), which must not pass as "no loops".
        with open(sys.argv[1], encoding="utf-8") as dot:
            if "digraph" not in dot.read():
                print("no module graph in " + sys.argv[1])
                return 1
    components = strongly_connected(nodes, edges)
    mutual = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    inside = sum(1 for a, b in edges if any(a in c and b in c for c in components))
    print(
        f"{len(nodes)} modules, {len(edges)} dependencies between them; "
        f"{len(components)} loop(s), {len(mutual)} pair(s) depending on each other, "
        f"{inside} dependencies inside loops"
    )
    for a, b in mutual:
        print(f"  {a} <-> {b}")
    for component in components:
        print("  loop: " + " -> ".join(component))
    if "--report" in sys.argv:
        return 0
    return 1 if components else 0


if __name__ == "__main__":
    sys.exit(main())
