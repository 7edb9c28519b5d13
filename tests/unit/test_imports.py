"""The package's modules import each other without a cycle, function-level imports included.

A cycle makes two modules one unit in disguise: every new kind is meant to be one more room of the
same shape, reached through `controllers.work.request`, never by importing a sibling controller.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modelcatalog

PACKAGE = Path(modelcatalog.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The package modules `path` imports anywhere in its body (a package import means its __init__)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            # `from pkg import module` is about the module; the package counts only for names it defines
            names = [*submodules, *([node.module] if not all(m in known for m in submodules) else [])]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    return {name: imports(path, known) - {name} for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    assert "modelcatalog.controllers.work" in graph["modelcatalog.controllers.deployment"]
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_kind_controller_imports_another() -> None:
    """Each kind's controller reaches another kind only through work.request and the ClusterView."""
    graph = import_graph()
    kinds = {
        f"modelcatalog.controllers.{name}" for name in ("catalog", "deployment", "network", "router", "serverless")
    }
    assert kinds <= set(graph)
    assert {kind: graph[kind] & kinds for kind in kinds if graph[kind] & kinds} == {}
