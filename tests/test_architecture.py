"""The room plan holds (docs/architecture.md): layers, no import cycle, small modules."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_import_layers_hold():
    """import-linter's contracts in pyproject.toml: each layer imports only from below."""
    result = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_cycle_no_local_import_and_small_modules():
    result = subprocess.run(
        [sys.executable, "scripts/check_structure.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def scratch_package(tmp_path, monkeypatch):
    package = tmp_path / "oauth"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    return package


def test_the_structure_check_sees_a_cycle_and_a_long_function(scratch_package, monkeypatch):
    """The check itself can fail: a cycle, a local import and a 61-line function are caught."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import check_structure
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    (scratch_package / "a.py").write_text("import oauth.b\n")
    (scratch_package / "b.py").write_text(
        "def f():\n    from oauth import a\n" + "    x = 1\n" * 59
    )
    monkeypatch.setattr(check_structure, "ROOT", scratch_package.parent)
    for name in [m for m in sys.modules if m == "oauth" or m.startswith("oauth.")]:
        monkeypatch.delitem(sys.modules, name)
    cycles = check_structure.import_cycles()
    assert cycles and "oauth.a" in cycles[0] and "oauth.b" in cycles[0]
    problems = check_structure.source_problems(scratch_package / "b.py")
    assert any("function-local import" in p for p in problems)
    assert any("f is 61 lines" in p for p in problems)
