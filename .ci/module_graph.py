#!/usr/bin/env python3
"""Fails when a crate's modules depend on each other in a loop.

Reads the module graph that `cargo modules dependencies --no-fns --no-types --no-traits` prints (DOT, where
every "uses" edge of an item has been moved up to the module that owns it) and looks for cycles among the
"uses" edges between modules. Edges between a module and its own ancestors or descendants are left out: a
parent that re-exports its children's items while they use its shared helpers is one unit, not a loop.

cargo-modules' own `--acyclic` is not used because it checks the graph of items before filtering, where
every method taking `&self` is a cycle with its type, so it fails on any crate.

Usage: module_graph.py GRAPH.dot [--report]   (exit 1 on a loop; --report prints the counts only)
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
