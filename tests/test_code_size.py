"""Size limits a maintainer can hold in their head, checked with ``ast``: no function in llm/ longer
than 80 lines, no first-party file longer than 450 lines."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 450


def first_party_files(root: Path = ROOT) -> list[Path]:
    files = [root / "app.py"]
    for package in ("theory", "sandbox", "llm", "app_lib"):
        files += sorted((root / package).rglob("*.py"))
    return files


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES, root: Path = ROOT) -> list[str]:
    """'file:line name (N lines)' for each def (methods and nested defs included) longer than ``limit``;
    a function's lines run from its ``def`` (decorators excluded) to its last statement."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return out


def test_no_function_in_llm_over_80_lines():
    found = [entry for path in sorted((ROOT / "llm").rglob("*.py")) for entry in long_functions(path)]
    assert found == []


def test_no_file_over_450_lines():
    found = []
    for path in first_party_files():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_FILE_LINES:
            found.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert found == []


def test_the_function_check_counts_lines(tmp_path):
    """The check goes red on a long function (a method too) and stays green at the limit."""
    statements = [f"x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1)]
    at_limit = "def at_limit():\n" + "".join(f"    {s}\n" for s in statements)
    too_long = "class A:\n    def too_long(self):\n" + "".join(f"        {s}\n" for s in statements + ["y = 0"])
    path = tmp_path / "probe.py"
    path.write_text(at_limit + "\n\n" + too_long)
    assert long_functions(path, root=tmp_path) == [f"probe.py:{MAX_FUNCTION_LINES + 4} too_long (81 lines)"]
