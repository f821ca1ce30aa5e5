"""The house rules of issue 17, checked on the source: the runtime never imports the tools, no import runs back up
the layers (the import graph of the package's modules has no cycle), no module over 400 lines, no class over 200."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "otel_openai_scopes"
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 200


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every package module this one imports, at any depth of the file (function-level imports count too; imports
    for the type checker only, under ``if TYPE_CHECKING:``, are not run and do not count)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _run_time_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _run_time_nodes(tree: ast.AST) -> list[ast.AST]:
    nodes: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if test is not None and "TYPE_CHECKING" in ast.unparse(test):
                todo.extend(child.orelse)
            else:
                todo.append(child)
    return nodes


@cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _is_runtime(name: str) -> bool:
    return not name.startswith(f"{PACKAGE}.tools")


def test_the_graph_is_read_at_all():
    graph = _graph()
    assert f"{PACKAGE}.recorder" in graph and f"{PACKAGE}.tools.report.fold" in graph
    assert f"{PACKAGE}.steps" in graph[f"{PACKAGE}.recorder"]  # a known edge: the reader of imports works


def test_the_runtime_never_imports_the_tools():
    graph = _graph()
    bad = sorted(f"{m} -> {t}" for m, targets in graph.items() if _is_runtime(m)
                 for t in targets if not _is_runtime(t))
    assert not bad, bad


def test_no_import_runs_back_up_the_layers():
    """A cycle is an import running back up: A needs B needs A. Package ``__init__`` files re-export their
    modules, so an edge from a module to its own package's ``__init__`` is the only exception (it runs down)."""
    graph = _graph()
    edges = {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, [" -> ".join(c) for c in cycles]


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_over_400_lines_and_no_class_over_200(name):
    path = _modules()[name]
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path.name}: {text.count(chr(10))} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_CLASS_LINES, f"{path.name}: class {node.name} is {length} lines"
