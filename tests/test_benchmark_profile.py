"""``benchmarks/run.py --profile`` still runs as the package moves: its timers and cProfile
rows look their targets up by name, and one that moved is a warning, not a crash. The profile
runs here briefly in-process (``--profile-only``: no wrk, no gunicorn, no RESULTS.md) on a
temporary SQLite instance. Nothing here asserts a timing."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "run.py"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


@pytest.fixture
def bench(monkeypatch):
    """benchmarks/run.py as a module; the PORTCULLIS_* variables it sets are undone after."""
    for name in ("PORTCULLIS_INSTANCE_PATH", "PORTCULLIS_DATABASE_URL", "PORTCULLIS_ISSUER"):
        monkeypatch.setenv(name, "set by the test")  # so monkeypatch restores them
    spec = importlib.util.spec_from_file_location("portcullis_bench_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look the module up
    spec.loader.exec_module(module)
    clocks = []
    instrument = module.instrument
    monkeypatch.setattr(
        module, "instrument", lambda app: clocks.append(instrument(app)) or clocks[-1]
    )
    module.clocks = clocks
    return module


def profile(bench, *extra: str) -> int:
    return bench.profile_only(
        bench.parse_args(["--profile-only", "--profile-requests", "3", *extra])
    )


def test_profile_times_the_stable_seams(bench, capsys):
    assert profile(bench) == 0
    out, _ = capsys.readouterr()
    assert "Where the time goes" in out and "cProfile" in out
    (clock,) = bench.clocks
    labels = sorted(clock.calls)  # the stable seams are timed (others may be skipped)
    for seam in (
        r"JWT signing \(keys\.sign_jwt",
        "lean lane: ",  # a client-credentials token takes the lean lane and runs no statement
        "grant: ",
        "audit",
    ):
        assert any(re.match(seam, label) for label in labels), (seam, labels)
    # Every timer is taken off again.
    from peewee import ModelCursorWrapper

    from oauth.storage.models import Client
    from oauth.tokens import keys

    assert keys.sign_jwt.__qualname__ == "sign_jwt"
    assert Client.check_client_secret.__qualname__ == "Client.check_client_secret"
    assert "timed" not in ModelCursorWrapper.process_row.__qualname__


def test_a_function_imported_by_name_elsewhere_is_timed_there_too(bench, monkeypatch):
    owner, user = types.ModuleType("oauth.bench_owner"), types.ModuleType("oauth.bench_user")
    owner.work = lambda x: x + 1
    user.alias = owner.work  # from oauth.bench_owner import work as alias
    monkeypatch.setitem(sys.modules, owner.__name__, owner)
    monkeypatch.setitem(sys.modules, user.__name__, user)
    original = owner.work
    clock = bench.WallClock()
    clock.wrap(owner, "work", "work")
    assert user.alias(1) == 2 and owner.work(2) == 3
    assert clock.calls == {"work": 2}
    clock.unwrap()
    assert owner.work is original and user.alias is original


def test_a_target_that_moved_is_a_warning_naming_it(bench, capsys, monkeypatch):
    timers = bench.timers
    monkeypatch.setattr(
        bench,
        "timers",
        lambda app: [
            *timers(app),
            bench.Timer("oauth.tokens.keys", "sign_jwt_moved", "JWT signing (moved)"),
            bench.Timer("oauth.no_such_module", "record", "audit (moved)"),
            bench.Timer("extension:portcullis.nothing", "close", "nothing"),
        ],
    )
    monkeypatch.setattr(
        bench, "INCLUSIVE", [*bench.INCLUSIVE, ("gone", [("oauth.audit", "no_such_function")])]
    )
    assert profile(bench) == 0
    out, err = capsys.readouterr()
    assert "oauth.tokens.keys has no attribute 'sign_jwt_moved'" in err
    assert "cannot import oauth.no_such_module" in err
    assert "app.extensions has no 'portcullis.nothing'" in err
    assert "oauth.audit has no attribute 'no_such_function'" in err
    (clock,) = bench.clocks
    assert [title for title, _ in clock.skipped] == [
        "'JWT signing (moved)'",
        "'audit (moved)'",
        "'nothing'",
    ]
    assert "Not timed" in out and "sign_jwt_moved" in out
    # The timers that were found still ran.
    assert any(label.startswith("JWT signing (keys.sign_jwt") for label in clock.calls)


def test_profile_only_needs_neither_wrk_nor_gunicorn_and_records_nothing(tmp_path):
    before = RESULTS.read_bytes() if RESULTS.exists() else None
    (tmp_path / "bin").mkdir()
    env = {"PATH": str(tmp_path / "bin"), "HOME": str(tmp_path)}  # no wrk, no gunicorn on it
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--profile-only", "--profile-requests", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Where the time goes" in done.stdout
    assert "bench: starting" not in done.stdout and "bench: measuring" not in done.stdout
    assert (RESULTS.read_bytes() if RESULTS.exists() else None) == before
