"""Fixtures: every ``app`` runs once on a real SQLite file and once on a real PostgreSQL database.

PostgreSQL: ``PORTCULLIS_TEST_POSTGRES_URL`` (default postgres@127.0.0.1:5432) is the admin
connection; the session creates its own database and drops it at the end. When PostgreSQL is
unreachable those tests skip, unless ``PORTCULLIS_REQUIRE_POSTGRES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from pathlib import Path

import psycopg
import pytest
from werkzeug.serving import make_server

from app import create_app
from tests.mail_helpers import smtp  # noqa: F401  # the real SMTP server fixture, for every module

PG_ADMIN_URL = os.environ.get(
    "PORTCULLIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("PORTCULLIS_REQUIRE_POSTGRES") == "1"

# Cheap but real argon2id parameters: the tests create many users.
FAST_HASHING = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024, "ARGON2_PARALLELISM": 1}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    """No developer setting leaks in: PORTCULLIS_* are cleared, the instance folder is per test."""
    for name in list(os.environ):
        if name.startswith("PORTCULLIS_") and not name.startswith(
            ("PORTCULLIS_TEST_", "PORTCULLIS_REQUIRE_")
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PORTCULLIS_INSTANCE_PATH", str(tmp_path / "instance"))


def _pg_connect(url: str):
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def postgres_url():
    try:
        admin = _pg_connect(PG_ADMIN_URL)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error}"
        if REQUIRE_PG:
            pytest.fail(message)
        pytest.skip(message)
    name = f"portcullis_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN_URL)
    yield url
    with _pg_connect(PG_ADMIN_URL) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_postgres(url: str) -> None:
    """Delete every row (the schema stays, so migrations run once per session).

    DELETE, with foreign-key triggers off for this one transaction, rather than TRUNCATE:
    TRUNCATE gives every table and index new files, and the next checkpoint must fsync
    each of them (some 78,000 in a suite run, 73 s of sync in one checkpoint, which a test
    dropping its own database then waits for). TRUNCATE remains where this role may not
    switch triggers off (not a superuser)."""
    with _pg_connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_migration'"
            )
        ]
        if not tables:
            return
        try:
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")
                for table in tables:
                    conn.execute(f'DELETE FROM "{table}"')
        except psycopg.errors.InsufficientPrivilege:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'portcullis-test.db'}"
    url = request.getfixturevalue("postgres_url")
    _empty_postgres(url)
    return url


@pytest.fixture
def make_app(database_url, tmp_path):
    """Build apps on this test's database; every pooled connection is closed afterwards.

    The apps of one test share one secret key, as the workers of one deployment do (the
    private signing keys are encrypted under a key derived from it)."""
    built = []
    secret_key = "test-" + secrets.token_hex(16)

    def factory(**overrides):
        config = {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": secret_key,
            "PLUGINS_DIR": str(tmp_path / "plugins"),
            # No built-in management API row in every test's database (tests that count
            # APIs or audit events); tests/test_management_api*.py turn it on.
            "MANAGEMENT_API": False,
            **FAST_HASHING,
        }
        config.update(overrides)
        app = create_app(config)
        built.append(app)
        return app

    yield factory
    for app in built:
        sender = app.extensions.get("portcullis.mail")
        if sender is not None:  # its background thread must not outlive the test's database
            sender.join(timeout=10)
        spool = app.extensions.get("portcullis.audit_spool")
        if spool is not None:  # nor its audit spool's flusher
            spool.close()
        db = app.extensions["portcullis.database"]
        if hasattr(db, "close_all"):
            db.close_all()
        elif not db.is_closed():
            db.close()


@pytest.fixture
def plugin_dir(tmp_path):
    """The drop-in plugin folder of this test's apps (make_app's PLUGINS_DIR)."""
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def app_context(app):
    with app.app_context():
        from oauth.storage.db import database

        database.connect(reuse_if_open=True)
        yield app
        if not database.is_closed():
            database.close()


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no csrf_token field in the page"
    return match.group(1)


class AuthActions:
    """Drive the login/sign-up forms like a browser would (CSRF included)."""

    def __init__(self, client, app):
        self.client = client
        self.app = app

    def create_user(self, email="alice@example.com", password="correct horse", **kwargs):
        from oauth.accounts import users as accounts

        with self.app.app_context():
            return accounts.create_user(email, password, **kwargs)

    def csrf(self, path="/login?reauth=1") -> str:
        return csrf_token_from(self.client.get(path).get_data(as_text=True))

    def login(self, email="alice@example.com", password="correct horse", next=None):
        data = {"email": email, "password": password, "csrf_token": self.csrf()}
        if next is not None:
            data["next"] = next
        return self.client.post("/login", data=data)

    def logout(self):
        token = self.csrf("/settings/profile")
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client, app):
    return AuthActions(client, app)


@pytest.fixture
def flow(app, client):
    """An app (confidential client) and a signed-in user, ready for /oauth/authorize."""
    from tests.oauth_helpers import Flow, make_client

    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    return flow


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        app.config["ISSUER"] = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free loopback port; ISSUER points at it."""
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
