"""Live servers for the tests that go over real HTTP: gunicorn in a subprocess on a free port.

``serve(database_url, folder, workers=..., **settings)`` is the one way a test starts
gunicorn: a context manager that yields the base URL once ``/healthz`` answers and stops the
server afterwards. ``settings`` become ``PORTCULLIS_*`` variables (``SECRET_KEY="..."`` ->
``PORTCULLIS_SECRET_KEY``); nothing else of the developer's ``PORTCULLIS_*`` leaks in.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests

from app import create_app
from tests.conftest import FAST_HASHING, PG_ADMIN_URL

ROOT = Path(__file__).resolve().parent.parent
# Real argon2id, cheap parameters: the tests sign in many times.
FAST_HASHING_ENV = {"PORTCULLIS_ARGON2_MEMORY_COST": "1024", "PORTCULLIS_ARGON2_TIME_COST": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(base: str, process, log_path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(base + "/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("gunicorn did not start:\n" + Path(log_path).read_text())
        time.sleep(0.2)


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def environment(database_url: str, folder: Path, **settings) -> dict:
    """The environment of a server or ``flask`` command on ``database_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    env.update(
        PORTCULLIS_DATABASE_URL=database_url,
        PORTCULLIS_INSTANCE_PATH=str(Path(folder) / "instance"),
        **FAST_HASHING_ENV,
        **{f"PORTCULLIS_{k}": str(v) for k, v in settings.items() if v is not None},
    )
    return env


@contextlib.contextmanager
def serve(
    database_url: str,
    folder,
    *,
    workers: int = 4,
    host: str = "127.0.0.1",
    binds: tuple[str, ...] = (),
    gunicorn_args: tuple[str, ...] = (),
    server: str = "gunicorn",
    **settings,
):
    """gunicorn with ``workers`` on a free port of 127.0.0.1 (plus ``binds``, e.g. ``[::1]``),
    or ``server="portcullis-serve"`` (granian, the README's production command; no binds);
    yields ``http://{host}:{port}``. ISSUER defaults to that URL; LOGIN_RATE_LIMIT to 5 per
    minute (what the live rate-limit tests count against); both may be overridden, and a
    setting given as None is left to the app's default."""
    port = free_port()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = f"http://{host}:{port}"
    settings = {"ISSUER": base, "LOGIN_RATE_LIMIT": "5 per minute", **settings}
    env = environment(database_url, folder, **settings)
    log_path = folder / f"{server}.log"
    with open(log_path, "w") as log:
        # In the test's folder: a server killed with SIGKILL cannot remove a private one.
        env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(folder / "metrics"))
        if server == "portcullis-serve":
            command = [sys.executable, "-m", "oauth.serve", "--workers", str(workers)]
            command += ["--port", str(port)]
        else:
            command = [sys.executable, "-m", "gunicorn", "-w", str(workers)]
            command += ["-b", f"127.0.0.1:{port}"]
            for address in binds:
                command += ["-b", f"{address}:{port}"]
            command += [*gunicorn_args, "app:create_app()"]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", process, log_path)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


def flask_command(database_url: str, folder, *args: str, **settings) -> subprocess.CompletedProcess:
    """``flask ARGS`` in a subprocess on ``database_url`` (checked; output captured)."""
    env = environment(database_url, Path(folder), **settings)
    return subprocess.run(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


# -- databases and apps for module-scoped servers ----------------------------------------------


@contextlib.contextmanager
def fresh_database(kind: str, folder: Path, request=None):
    """A new, empty database of ``kind`` ("sqlite" or "postgresql") for a module-scoped
    server (the session's shared PostgreSQL database is emptied before every test, so a
    server that outlives one test needs its own). ``request`` resolves ``postgres_url``,
    which skips (or fails under PORTCULLIS_REQUIRE_POSTGRES=1) when PostgreSQL is away."""
    if kind == "sqlite":
        yield f"sqlite:///{Path(folder) / 'portcullis-live.db'}"
        return
    base = request.getfixturevalue("postgres_url") if request is not None else PG_ADMIN_URL
    name = f"portcullis_live_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def built_app(database_url: str, secret_key: str, folder: Path | None = None, **config):
    """An app in this process on ``database_url`` (to set up rows before a server starts),
    with no developer ``PORTCULLIS_*`` setting; its connections are closed afterwards."""
    settings = {"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": secret_key}
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("PORTCULLIS_") and not name.startswith(
                ("PORTCULLIS_TEST_", "PORTCULLIS_REQUIRE_")
            ):
                patch.delenv(name)
        if folder is not None:
            patch.setenv("PORTCULLIS_INSTANCE_PATH", str(Path(folder) / "instance"))
        app = create_app({**settings, **FAST_HASHING, **config})
        try:
            yield app
        finally:
            app.extensions["portcullis.database"].close_all()
