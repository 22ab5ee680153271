"""The shape of the code: every import, lazy or not, read from the source; no circle; imports run one way."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("kerasreg", "export", "serve", "shared")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of PACKAGES it imports anywhere in its source (in functions and TYPE_CHECKING too)."""
    modules = {_module_name(p): p for p in (REPO / package).rglob("*.py")}
    known = {_module_name(p) for name in PACKAGES for p in (REPO / name).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from a import b` imports the module a.b when there is one, else a.
                named = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t if t in known else node.module for t in named]
            else:
                continue
            edges.update(t for t in targets if t.split(".")[0] in PACKAGES and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph seen a level up: `a.b.c` -> `x.y.z` becomes `a.b` -> `x.y` (a subpackage, or a module of
    the top package); edges within one node dropped."""
    folded: dict[str, set[str]] = {}
    for module, targets in graph.items():
        node = ".".join(module.split(".")[:2])
        edges = folded.setdefault(node, set())
        edges.update(".".join(t.split(".")[:2]) for t in targets)
        edges.discard(node)
    return folded


def test_the_package_graph_folds_modules_into_their_subpackages():
    graph = {"k.a.x": {"k.b.y"}, "k.b.y": {"k.a.z"}, "k.a.z": set(), "k.c": {"k.a.x"}}
    assert package_graph(graph) == {"k.a": {"k.b"}, "k.b": {"k.a"}, "k.c": {"k.a"}}
    assert cycles(package_graph(graph)) == [["k.a", "k.b"]]


def test_no_package_has_an_import_circle_between_modules_or_between_its_subpackages():
    # Before issue 34, kerasreg's config, training, l2_search, reports and run_directory imported each other in a
    # circle of packages (config.py read the grid and the schedule's patience; the run's pipeline sat in training/).
    for package in PACKAGES:
        graph = import_graph(package)
        assert cycles(graph) == [], package
        assert cycles(package_graph(graph)) == [], package


def test_imports_run_one_way():
    kerasreg = {target for edges in import_graph("kerasreg").values() for target in edges}
    assert not {t for t in kerasreg if t.split(".")[0] in ("export", "serve")}
    serve = {target for edges in import_graph("serve").values() for target in edges}
    assert not {t for t in serve if t.split(".")[0] in ("export", "kerasreg")}
    shared = {target for edges in import_graph("shared").values() for target in edges}
    assert not {t for t in shared if t.split(".")[0] in ("export", "kerasreg", "serve")}  # all three may import it
