"""The one-way import graph of the developers' guide, checked by reading every module with ``ast``.

Layers: ``theory`` at the bottom; ``sandbox`` and ``llm`` (the trainer, rewards, integrations) each
on theory only; ``llm.compare`` (the experiment) on theory, sandbox and llm; the explorer
(``app_lib``, ``app.py``) on top. Imports inside functions count as edges too (a lazy import is
still a dependency). Also fails on an import of another package's private (``_x``) module and on a
cycle of imports: none at module level (that would fail at import time) and none through lazy
imports either (a circle hidden inside a function is still two modules that need each other).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "sandbox", "llm", "app_lib")

#: layer -> the layers it may import (itself included).
ALLOWED = {
    "theory": {"theory"},
    "sandbox": {"theory", "sandbox"},
    "llm": {"theory", "llm"},
    "llm.compare": {"theory", "sandbox", "llm", "llm.compare"},
    "app_lib": {"theory", "sandbox", "llm", "llm.compare", "app_lib"},
    "app": {"theory", "sandbox", "llm", "llm.compare", "app_lib", "app"},
}


def layer(module: str) -> str:
    if module == "llm.compare" or module.startswith("llm.compare."):
        return "llm.compare"
    return module.split(".")[0]


def discover(root: Path = ROOT) -> dict[str, Path]:
    """module name -> file, for every first-party module (packages by their __init__)."""
    modules = {"app": root / "app.py"}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _module_level(tree: ast.Module) -> set[int]:
    """ids of the import nodes that run at import time (not inside a def or lambda)."""
    found: set[int] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.add(id(child))
            visit(child)

    visit(tree)
    return found


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, bool, int]]:
    """(imported first-party module, at module level?, line) for each import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = _module_level(tree)
    package = module if _is_package(path) else module.rpartition(".")[0]
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            # `from pkg import sub` names the submodule when it is one, else the package.
            targets = [f"{base_name}.{a.name}" if f"{base_name}.{a.name}" in modules else base_name for a in node.names]
        else:
            continue
        for target in targets:
            # the longest first-party prefix: `import sandbox.claims.registry` is that module
            parts = target.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts:
                edges.append((".".join(parts), id(node) in top, node.lineno))
    return edges


def graph(root: Path = ROOT):
    modules = discover(root)
    return modules, {m: imports_of(m, p, modules) for m, p in modules.items()}


def backwards_edges(edges) -> list[str]:
    bad = []
    for source, targets in edges.items():
        for target, _, line in targets:
            if layer(target) not in ALLOWED[layer(source)]:
                bad.append(f"{source}:{line} imports {target} ({layer(source)} may not import {layer(target)})")
    return bad


def private_imports(edges) -> list[str]:
    bad = []
    for source, targets in edges.items():
        for target, _, line in targets:
            parts = target.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])  # the package the private module belongs to
                    if not (source == owner or source.startswith(owner + ".")):
                        bad.append(f"{source}:{line} imports the private module {target}")
    return bad


def cycles(edges, module_level_only: bool = True) -> list[list[str]]:
    """Strongly connected components (more than one module) of the import graph: of the
    module-level imports, or with ``module_level_only=False`` of every import."""
    succ = {m: sorted({t for t, top, _ in ts if (top or not module_level_only) and t != m}) for m, ts in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(succ):
        if v not in index:
            connect(v)
    return found


def test_every_module_is_read():
    modules, edges = graph()
    assert {"theory", "sandbox.plots", "llm.train", "llm.compare.heldout", "app_lib.views", "app"} <= set(modules)
    # the walk sees lazy imports: llm.compare.experiment imports the trainer inside functions only
    assert any(t == "llm.train" and not top for t, top, _ in edges["llm.compare.experiment"])


def test_no_backwards_import():
    _, edges = graph()
    assert backwards_edges(edges) == []


def test_no_import_of_another_packages_private_module():
    _, edges = graph()
    assert private_imports(edges) == []


def test_no_import_cycle():
    _, edges = graph()
    assert cycles(edges) == []
    assert cycles(edges, module_level_only=False) == []


@pytest.fixture
def toy_tree(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "app.py").write_text("import app_lib\n")
    (tmp_path / "theory" / "a.py").write_text("import math\n")
    (tmp_path / "sandbox" / "_common.py").write_text("")
    (tmp_path / "llm" / "compare").mkdir()
    (tmp_path / "llm" / "compare" / "__init__.py").write_text("from sandbox import _common\n")
    return tmp_path


def test_checks_fail_on_a_bad_tree(toy_tree):
    """Each check goes red on the thing it is about (a backwards edge, a private module, a circle)."""
    (toy_tree / "theory" / "b.py").write_text("def f():\n    from sandbox import plots\n")  # lazy, still an edge
    (toy_tree / "sandbox" / "plots.py").write_text("from . import claims\n")
    (toy_tree / "sandbox" / "claims.py").write_text("from .plots import x\n")
    (toy_tree / "llm" / "x.py").write_text("import sandbox.claims\n")
    modules, edges = graph(toy_tree)
    assert sorted(backwards_edges(edges)) == [
        "llm.x:1 imports sandbox.claims (llm may not import sandbox)",
        "theory.b:2 imports sandbox.plots (theory may not import sandbox)",
    ]
    assert private_imports(edges) == ["llm.compare:1 imports the private module sandbox._common"]
    assert cycles(edges) == [["sandbox.claims", "sandbox.plots"]]
    # a lazy import hides the circle from import time, not from the full graph
    (toy_tree / "sandbox" / "claims.py").write_text("def f():\n    from .plots import x\n")
    edges = graph(toy_tree)[1]
    assert cycles(edges) == []
    assert cycles(edges, module_level_only=False) == [["sandbox.claims", "sandbox.plots"]]
