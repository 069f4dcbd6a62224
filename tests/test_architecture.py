"""The layout's rules, checked on the source (README "Layout"; DESIGN.md B).

Cycles are looked for in module-level imports: an import inside a function is how
heavy modules load lazily, and it cannot make an import cycle at start-up. Imports
under ``if TYPE_CHECKING:`` are for the type checker and are left out too. The layers
that must know nothing of the rest (config, connectors, scoring, sandbox) are held to
that in every import, lazy ones included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from support.paths import REPO

PACKAGE = REPO / "src" / "okr_sync"
MAX_LINES = 500

#: Layer -> the okr_sync layers it may import at module level (besides itself).
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "connectors": set(),
    "scoring": {"config"},
    "sandbox": set(),
    "exit_codes": set(),
    "sync": {"config", "connectors", "scoring", "sandbox", "exit_codes"},
    "cli": {"config", "connectors", "scoring", "sandbox", "sync", "exit_codes"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(body: list[ast.stmt], module: str, is_package: bool) -> Iterator[str]:
    for node in body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from okr_sync.x import y` may name a submodule y.
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            yield from _top_level_imports(node.body + node.orelse, module, is_package)
        elif isinstance(node, ast.Try):
            yield from _top_level_imports(
                node.body + [s for h in node.handlers for s in h.body] + node.orelse,
                module, is_package)


#: Layers whose every import, at any depth of the code, must stay inside ALLOWED.
SELF_CONTAINED = ("config", "connectors", "scoring", "sandbox", "exit_codes")


def _all_imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield from _top_level_imports([node], module, is_package)


@cache
def _deep_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = {
            imported for imported in _all_imports(tree, name, path.name == "__init__.py")
            if imported in files and imported != name
        }
    return graph


@cache
def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[name] = {
            imported for imported in _top_level_imports(tree.body, name, is_package)
            if imported in files and imported != name
        }
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_layout_given_source_tree_has_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layout_given_layer_imports_only_what_it_may(layer: str) -> None:
    wrong = sorted(
        f"{module} -> {imported}"
        for module, imports in _graph().items() if _layer(module) == layer
        for imported in imports
        if _layer(imported) not in {layer, "", *ALLOWED[layer]}
    )
    assert wrong == []


@pytest.mark.parametrize("layer", SELF_CONTAINED)
def test_layout_given_self_contained_layer_imports_nothing_else_even_lazily(layer: str) -> None:
    wrong = sorted(
        f"{module} -> {imported}"
        for module, imports in _deep_graph().items() if _layer(module) == layer
        for imported in imports
        if _layer(imported) not in {layer, "", *ALLOWED[layer]}
    )
    assert wrong == []


def test_layout_given_source_files_each_stays_small() -> None:
    long_files = sorted(
        f"{path.relative_to(REPO)}: {lines} lines"
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )
    assert long_files == []


def test_layout_given_checker_sees_a_planted_cycle_and_a_wrong_layer(monkeypatch) -> None:
    planted = {"okr_sync.scoring.a": {"okr_sync.sync.b"}, "okr_sync.sync.b": {"okr_sync.scoring.a"}}
    monkeypatch.setattr(__import__(__name__, fromlist=["_graph"]), "_graph", lambda: planted)
    with pytest.raises(AssertionError):
        test_layout_given_source_tree_has_no_import_cycle()
    with pytest.raises(AssertionError):
        test_layout_given_layer_imports_only_what_it_may("scoring")
    lazy = {"okr_sync.connectors.a": {"okr_sync.sync.b"}, "okr_sync.sync.b": set()}
    monkeypatch.setattr(__import__(__name__, fromlist=["_deep_graph"]), "_deep_graph",
                        lambda: lazy)
    with pytest.raises(AssertionError):
        test_layout_given_self_contained_layer_imports_nothing_else_even_lazily("connectors")
