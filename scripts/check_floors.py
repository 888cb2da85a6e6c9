"""Check that the dependency floors in pyproject.toml work (``make floors`` runs this).

Creates a throw-away virtualenv in a temporary folder, installs every runtime dependency
pinned at exactly its floor (``name[extras]==floor`` for each ``name[extras]>=floor``), with
the dev extra as pip resolves it beside those pins, installs a snapshot of the working tree
with ``--no-deps`` and runs the test suite on SQLite only (PostgreSQL is pointed at a closed
loopback port, so those tests skip). Dependencies of the pinned packages resolve as pip
chooses (newest allowed). A dev tool that itself needs more of a runtime dependency than its
floor (``NEEDS_MORE_THAN_FLOORS``) is left out, with the tests that use it.

    python3 scripts/check_floors.py            # runtime floors, the dev tools beside them
    python3 scripts/check_floors.py --dev      # dev extra at its floors too, and every test
    python3 scripts/check_floors.py -- tests/test_token.py -q -x   # your own pytest arguments

Exits with pytest's status (non-zero when a test fails), or 2 when the floors cannot be
installed. Needs Python >= 3.11 (tomllib) and the package index; nothing in the working tree
is written (the tests run on a copy).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    sys.exit("check_floors.py needs Python >= 3.11 (tomllib)")

ROOT = Path(__file__).resolve().parent.parent
# Dev tools whose own requirements exceed a runtime floor (mcp 2.3 needs pydantic >= 2.12,
# the runtime floor is 2.7), and the tests that import them: left out of the runtime check.
NEEDS_MORE_THAN_FLOORS = {
    "mcp": ["tests/test_mcp_live.py"],
}
PYTEST_DEFAULT = ["tests", "-q", "-x", "-rfE", "-p", "no:cacheprovider"]
# Connection refused at once: the PostgreSQL half of every parametrised test skips.
CLOSED_POSTGRES = "postgresql://floors@127.0.0.1:1/postgres"
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "__pycache__", "*.pyc", "*.egg-info", "build", "dist",
    ".pytest_cache", ".ruff_cache", ".grimp_cache", ".import_linter_cache", "instance",
    "test-artifacts", "node_modules", "*.db", "*.db-shm", "*.db-wal", "*.sqlite*",
)  # fmt: skip
REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*"
    r"(?P<specs>[^;]*?)\s*(?:;\s*(?P<marker>.+))?$"
)


def floor_pin(requirement: str) -> str | None:
    """``name[extras]==floor`` for ``name[extras]>=floor,...``; None when a marker excludes it."""
    match = REQUIREMENT.match(requirement)
    if not match:
        raise SystemExit(f"cannot parse requirement {requirement!r}")
    marker = match["marker"]
    if marker and not _marker_applies(marker):
        return None
    floors = re.findall(r">=\s*([^,\s]+)", match["specs"])
    if len(floors) != 1:
        raise SystemExit(f"requirement {requirement!r} needs exactly one '>=' floor")
    return f"{match['name']}{match['extras'] or ''}=={floors[0]}"


def _marker_applies(marker: str) -> bool:
    try:
        from packaging.markers import Marker
    except ImportError:
        print(f"note: 'packaging' is not installed; assuming marker {marker!r} applies")
        return True
    return Marker(marker).evaluate()


def floors(dev: bool) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = project.get("dependencies", [])
    dev_requirements = project.get("optional-dependencies", {}).get("dev", [])
    pins = [floor_pin(r) for r in runtime]
    if dev:
        pins += [floor_pin(r) for r in dev_requirements]
    else:
        pins += [r for r in dev_requirements if _name(r) not in NEEDS_MORE_THAN_FLOORS]
    return [pin for pin in pins if pin is not None]


def _name(requirement: str) -> str:
    return REQUIREMENT.match(requirement)["name"].lower()


def run(command: list[str], **kwargs) -> int:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, **kwargs).returncode  # noqa: S603 - our own argument lists


def test_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    env["PORTCULLIS_TEST_POSTGRES_URL"] = CLOSED_POSTGRES
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dev", action="store_true", help="pin the dev extra at its floors too")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the virtualenv")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("pytest_args", nargs="*", help="pytest arguments (after --)")
    args = parser.parse_args()

    pins = floors(args.dev)
    pytest_args = args.pytest_args or PYTEST_DEFAULT + (
        []
        if args.dev
        else [f"--ignore={path}" for paths in NEEDS_MORE_THAN_FLOORS.values() for path in paths]
    )
    workdir = Path(tempfile.mkdtemp(prefix="portcullis-floors-"))
    try:
        source, venv = workdir / "src", workdir / "venv"
        shutil.copytree(ROOT, source, ignore=COPY_IGNORE)
        if run([args.python, "-m", "venv", str(venv)]):
            return 2
        python = str(venv / "bin" / "python")
        pip = [python, "-m", "pip", "--disable-pip-version-check", "--no-input"]
        print("floors:", *pins, sep="\n  ", flush=True)
        if run([*pip, "install", "--quiet", *pins]):
            print("the floors cannot be installed together", file=sys.stderr)
            return 2
        if run([*pip, "install", "--quiet", "--no-deps", str(source)]):
            return 2
        run([*pip, "check"])
        run([*pip, "list", "--format=freeze"])
        status = run([python, "-m", "pytest", *pytest_args], cwd=source, env=test_environment())
        print(f"floors {'passed' if status == 0 else 'FAILED'} (pytest exit status {status})")
        return status
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
