"""Every test a document cites as proof (``tests/FILE.py::TEST``) exists, so docs/security.md
and its kin cannot go on naming tests that were renamed or deleted."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CITATION = re.compile(r"tests/([\w/]+\.py)::(\w+)")
DOCUMENTS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


def citations() -> list[tuple[str, str, str]]:
    found = []
    for document in DOCUMENTS:
        for file, name in CITATION.findall(document.read_text()):
            found.append((document.name, file, name))
    return found


def test_the_security_document_cites_tests():
    assert sum(1 for doc, _, _ in citations() if doc == "security.md") >= 50


@pytest.mark.parametrize(("document", "file", "name"), citations())
def test_every_cited_test_exists(document, file, name):
    path = ROOT / "tests" / file
    assert path.is_file(), f"{document} cites tests/{file}, which does not exist"
    assert name in functions_in(path), f"{document} cites tests/{file}::{name}, not found"
