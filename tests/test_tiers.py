"""The tier tables name tests that exist: a renamed test must not drop out of its tier or into the quick tier."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.tiers import FILES_IN, SLOW, TESTS_IN

HERE = Path(__file__).resolve().parent


def _tests_of(stem: str) -> set[str]:
    tree = ast.parse((HERE / f"{stem}.py").read_text())
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name.startswith("test_")}


def test_every_test_file_has_a_tier_and_every_table_entry_exists():
    files = {p.stem for p in HERE.glob("test_*.py")}
    assert files - set(FILES_IN) == set(), "new test files: give them a tier in tests/support/tiers.py"
    assert set(FILES_IN) - files == set()
    for entry in [*TESTS_IN, *SLOW]:
        stem, _, name = entry.partition("::")
        assert stem in files, entry
        assert not name or name in _tests_of(stem), entry
