"""docs/conformance.md is checked against the tests (tests/test_docs.py style): every test it
names exists, and every module row names a test or says what it waits for."""

from __future__ import annotations

import ast
import re

from oauth.config import PROJECT_ROOT

CONFORMANCE = PROJECT_ROOT / "docs" / "conformance.md"
TEST_REF = re.compile(r"\b(tests/[\w/]+\.py)::(test_\w+)")
PLANS = ("Basic OP", "Config OP", "Dynamic OP", "RP-Initiated Logout OP", "Back-Channel Logout OP")


def _test_functions(path: str) -> set[str]:
    tree = ast.parse((PROJECT_ROOT / path).read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def _module_rows() -> list[tuple[str, str]]:
    rows = []
    for line in CONFORMANCE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| oidcc-") and len(cells) == 3:
            rows.append((cells[0], cells[1]))
    return rows


def test_every_test_named_in_conformance_md_exists():
    references = TEST_REF.findall(CONFORMANCE.read_text())
    assert len(references) > 50
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (PROJECT_ROOT / path).is_file() or name not in _test_functions(path)
    ]
    assert missing == [], f"docs/conformance.md names tests that do not exist: {missing}"


def test_every_module_row_names_a_test_or_what_it_waits_for():
    text = CONFORMANCE.read_text()
    for plan in PLANS:
        assert f"## {plan}" in text, plan
    rows = _module_rows()
    assert len(rows) >= 70
    for module, test in rows:
        assert TEST_REF.search(test) or test.startswith("pending: "), module
