"""The floors of docs/architecture.md and the arrows between them, read from every import (ast).

A new arrow between floors must be added here on purpose (and to the map); a forbidden one
or a new circle fails. KNOWN_BACK_EDGES would list a circle being removed, with what removes
it; it is empty, and a circle is not accepted.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ("harness.items", "harness.cloud", "harness.faults", "harness.device", "harness.certify",
          "harness.bdd", "harness.benchmarks", "harness.chaos")
CORE = "harness.core"  # harness.errors, harness.protocols, harness.timeline: the shared ground floor

ALLOWED: dict[str, set[str]] = {
    "reference_device": set(),  # ships on its own (tests/reference_device/test_package_boundary.py)
    CORE: set(),
    "harness.items": {CORE},  # the checklist, applicability, verdict words: read by device and up
    "harness.cloud": {CORE},
    "harness.faults": {CORE, "harness.cloud"},
    "harness.device": {CORE, "harness.faults", "harness.items"},
    "harness.certify": {CORE, "harness.items", "harness.cloud", "harness.device"},
    "harness.bdd": {CORE, "harness.items", "harness.cloud", "harness.faults", "harness.device",
                    "harness.certify"},
    "harness.benchmarks": {CORE, "harness.cloud", "harness.faults", "reference_device"},
    "harness.chaos": {CORE, "harness.cloud", "harness.faults", "harness.device", "harness.certify"},
}
FORBIDDEN = {
    ("reference_device", "*"),
    ("harness.cloud", "harness.faults"), ("harness.cloud", "harness.bdd"),
    ("harness.cloud", "harness.certify"), ("harness.cloud", "harness.device"),
    ("harness.faults", "harness.bdd"), ("harness.faults", "harness.certify"),
    ("harness.faults", "harness.device"), ("*", "harness.benchmarks"),
    ("harness.items", "harness.device"), ("harness.items", "harness.certify"),
    ("harness.items", "harness.bdd"), ("harness.certify", "harness.bdd"),
}
KNOWN_BACK_EDGES: set[tuple[str, str]] = set()
# (removed: device -> certify, gone once the checklist model moved down to harness.items;
# certify -> bdd, gone once `c2c-certify steps` ran harness.bdd.catalog as a child process)


def floor(module: str) -> str | None:
    if module == "reference_device" or module.startswith("reference_device."):
        return "reference_device"
    for name in FLOORS:
        if module == name or module.startswith(name + "."):
            return name
    return CORE if module == "harness" or module.startswith("harness.") else None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def arrows(roots: tuple[str, ...] = ("harness", "reference_device")) -> dict[tuple[str, str], list[str]]:
    """(from floor, to floor) -> 'module -> imported' for every import, lazy ones included."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            name = module_name(path)
            package = name if path.name == "__init__.py" else name.rpartition(".")[0]
            src = floor(name)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                    targets = [".".join([*base, node.module] if node.module else base)]
                else:
                    continue
                for target in targets:
                    dst = floor(target)
                    if src and dst and dst != src:
                        found[(src, dst)].append(f"{name} -> {target}")
    return found


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one floor."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    nodes = sorted({n for e in edges for n in e})

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {n: reach(n) for n in nodes}
    groups = {frozenset(m for m in nodes if m in reached[n] and n in reached[m]) | {n} for n in nodes}
    return sorted(sorted(g) for g in groups if len(g) > 1)


def test_no_forbidden_arrow() -> None:
    bad = [f"{src} -> {dst}: {found[0]}" for (src, dst), found in sorted(arrows().items())
           if (src, dst) in FORBIDDEN or (src, "*") in FORBIDDEN or ("*", dst) in FORBIDDEN]
    assert not bad, "forbidden imports between floors (docs/architecture.md):\n" + "\n".join(bad)


def test_every_arrow_is_on_the_map() -> None:
    new = [f"{src} -> {dst}: {found[0]}" for (src, dst), found in sorted(arrows().items())
           if dst not in ALLOWED.get(src, set())]
    assert not new, "imports between floors not on the map (add to ALLOWED and docs/architecture.md, " \
                    "or remove):\n" + "\n".join(new)


def test_no_new_circle_between_floors() -> None:
    edges = set(arrows()) - KNOWN_BACK_EDGES
    assert not cycles(edges), f"import circle between floors: {cycles(edges)}"


def test_known_back_edges_still_exist() -> None:
    """A circle that was removed must leave KNOWN_BACK_EDGES, so it cannot come back unseen."""
    gone = KNOWN_BACK_EDGES - set(arrows())
    assert not gone, f"these back edges are gone, delete them from KNOWN_BACK_EDGES: {sorted(gone)}"


def test_the_checks_see_a_forbidden_import(tmp_path: Path) -> None:
    """The walker itself: a made-up edge is caught as forbidden and as a circle."""
    assert floor("harness.cloud.app") == "harness.cloud" and floor("harness.errors") == CORE
    assert ("harness.cloud", "harness.bdd") in FORBIDDEN
    assert cycles({("harness.cloud", "harness.bdd"), ("harness.bdd", "harness.cloud")})
