"""Issue 12, "the first hour": what a new user meets with `make run` and the `flask` command.

The Makefile is read with `make -n` (what it would run, for real, from the project's own
Makefile); the CLI runs as real `flask` processes in a temporary instance folder.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from app import create_app
from oauth.storage.migrations import MIGRATIONS_DIR as MIGRATIONS
from oauth.storage.models import User
from tests.conftest import FAST_HASHING, PG_ADMIN_URL, AuthActions

ROOT = Path(__file__).resolve().parent.parent
FLASK = Path(sys.executable).parent / "flask"
PASSWORD = "correct horse battery staple"
CHEAP = {f"PORTCULLIS_{name}": str(value) for name, value in FAST_HASHING.items()}


def make_n(*args: str, **env: str) -> list[str]:
    """The recipe lines `make` would run (nothing is run)."""
    result = subprocess.run(
        ["make", "-n", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def flask(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(FLASK), *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_lines(lines: list[str]) -> dict[str, str]:
    """`make run`'s three commands -> the line that runs each."""
    found = {}
    for line in lines:
        for command in ("flask init-db", "flask demo", "flask run"):
            if command in line:
                found[command] = line
    assert sorted(found) == ["flask demo", "flask init-db", "flask run"], lines
    return found


# --- make run: the issuer is the address it serves on ----------------------------------------


def test_make_run_port_becomes_the_issuer_of_every_command(tmp_path):
    lines = run_lines(make_n("run", "PORT=5800", f"VENV={tmp_path / 'venv'}"))
    for command, line in lines.items():
        assert line.startswith("PORTCULLIS_ISSUER=http://127.0.0.1:5800 "), (command, line)
    assert "--host 127.0.0.1 --port 5800" in lines["flask run"]
    host = run_lines(make_n("run", "HOST=192.168.7.9", "PORT=8080", f"VENV={tmp_path / 'v'}"))
    assert host["flask demo"].startswith("PORTCULLIS_ISSUER=http://192.168.7.9:8080 ")


def test_make_run_leaves_an_issuer_the_user_chose(tmp_path):
    venv = f"VENV={tmp_path / 'venv'}"
    chosen = run_lines(make_n("run", "PORT=5800", venv, PORTCULLIS_ISSUER="https://id.example"))
    assert not any("PORTCULLIS_ISSUER=" in line for line in chosen.values())
    instance = Path(os.environ["PORTCULLIS_INSTANCE_PATH"])
    instance.mkdir(parents=True)
    (instance / "config.py").write_text('ISSUER = "https://from-config.example"\n')
    configured = run_lines(make_n("run", "PORT=5800", venv))
    assert not any("PORTCULLIS_ISSUER=" in line for line in configured.values())


def make_run_issuer(tmp_path) -> tuple[str, str]:
    """The environment variable `make run PORT=5800` gives `flask demo` (and the others)."""
    line = run_lines(make_n("run", "PORT=5800", f"VENV={tmp_path / 'venv'}"))["flask demo"]
    name, _, value = shlex.split(line)[0].partition("=")
    assert name == "PORTCULLIS_ISSUER"
    return name, value


def test_discovery_and_the_demo_banner_follow_make_run_port(tmp_path, make_app, monkeypatch):
    name, value = make_run_issuer(tmp_path)
    monkeypatch.setenv(name, value)
    app = make_app()  # the environment `make run` gives `flask demo` and `flask run`
    metadata = app.test_client().get("/.well-known/openid-configuration").get_json()
    assert metadata["issuer"] == "http://127.0.0.1:5800"
    assert metadata["token_endpoint"] == "http://127.0.0.1:5800/oauth/token"
    demo = app.test_cli_runner().invoke(args=["demo"]).output
    assert "sign in at http://127.0.0.1:5800/login" in demo
    assert "127.0.0.1:5000" not in demo


# --- make run installs what running needs, and says so ---------------------------------------


def test_make_run_installs_the_runtime_only_and_says_so(tmp_path):
    venv = tmp_path / "venv"
    lines = make_n("run", f"VENV={venv}")
    pip = [line for line in lines if "pip install" in line]
    assert len(pip) == 1 and pip[0].endswith(" -e .") and "--quiet" not in pip[0]
    assert any("runtime dependencies" in line and "first run only" in line for line in lines)
    dev = [line for line in make_n("test", f"VENV={venv}") if "pip install" in line]
    assert len(dev) == 1 and "'.[dev]'" in dev[0]


def test_make_run_after_make_test_installs_nothing_and_test_after_run_installs_dev(tmp_path):
    venv = tmp_path / "venv"
    install = make_n("install", f"VENV={venv}")
    # The dev install also satisfies `make run`: its recipe touches both stamps.
    assert f"touch {venv}/.installed {venv}/.installed-run" in install
    venv.mkdir()
    (venv / ".installed").touch()
    (venv / ".installed-run").touch()
    assert not any("pip install" in line for line in make_n("run", f"VENV={venv}"))
    (venv / ".installed").unlink()  # as after `make run` alone
    assert not any("pip install" in line for line in make_n("run", f"VENV={venv}"))
    test = [line for line in make_n("test", f"VENV={venv}") if "pip install" in line]
    assert len(test) == 1 and "'.[dev]'" in test[0]


# --- flask --help touches nothing; commands still set a fresh instance up ---------------------


def test_flask_help_creates_no_database_and_no_secret():
    instance = Path(os.environ["PORTCULLIS_INSTANCE_PATH"])
    for command in (
        [str(FLASK), "--help"],
        [str(FLASK)],
        [sys.executable, "-m", "flask", "init-db", "--help"],
    ):
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode in (0, 2), (command, result.stderr)  # `flask` alone exits 2
        assert "init-db" in result.stdout + result.stderr, command
        assert not instance.exists(), (command, sorted(instance.rglob("*")))


def test_a_real_command_on_a_brand_new_instance_creates_and_migrates_it():
    instance = Path(os.environ["PORTCULLIS_INSTANCE_PATH"])
    # "--help" here is the value of --name: the command runs, so the set-up must happen first.
    created = flask(
        "users", "create", "ann@example.com", "--password", PASSWORD, "--name", "--help", **CHEAP
    )
    assert created.returncode == 0, created.stderr
    assert "Created user ann@example.com" in created.stdout
    assert (instance / "secret_key").is_file()
    with sqlite3.connect(instance / "portcullis.db") as db:
        assert db.execute('SELECT email, name FROM "user"').fetchall() == [
            ("ann@example.com", "--help")
        ]
        applied = {row[0] for row in db.execute("SELECT name FROM schema_migration")}
    assert applied == {path.stem for path in MIGRATIONS.glob("[0-9]*.py")}


# --- flask init-db says what it did ----------------------------------------------------------


def init_db_twice(database_url: str, tmp_path) -> tuple[str, str]:
    """`flask init-db` twice in a process that started on this (new) database."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "first-hour-test-key",
            **FAST_HASHING,
        }
    )
    try:
        runner = app.test_cli_runner()
        first = runner.invoke(args=["init-db"])
        second = runner.invoke(args=["init-db"])
        assert first.exit_code == second.exit_code == 0, first.output + second.output
        return first.output, second.output
    finally:
        app.extensions["portcullis.database"].close_all()


def test_init_db_on_a_new_sqlite_database_says_it_created_it(tmp_path):
    database = tmp_path / "new.db"
    first, second = init_db_twice(f"sqlite:///{database}", tmp_path)
    assert f"Created the SQLite database {database}." in first
    assert re.search(r"Applied \d+ migrations: 0001_users, 0002_oauth, ", first)
    assert "up to date" not in first
    assert f"Database {database} is up to date" in second and "Applied" not in second


@pytest.fixture
def fresh_postgres():
    """A PostgreSQL database nobody has migrated, behind a URL with a (trusted) password."""
    name = f"portcullis_first_hour_{os.getpid()}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("PORTCULLIS_REQUIRE_POSTGRES") == "1":
            pytest.fail(str(error))
        pytest.skip(str(error))
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN_URL)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_init_db_on_a_new_postgresql_database_names_it_without_the_password(
    fresh_postgres, tmp_path
):
    parts = urlsplit(fresh_postgres)
    user = parts.username or "postgres"
    host = parts.netloc.rpartition("@")[2]
    url = parts._replace(netloc=f"{user}:s3cr3t-pw@{host}").geturl()  # trust: password unused
    first, second = init_db_twice(url, tmp_path)
    assert f"Created the schema in postgresql://{user}:***@{host}" in first, first
    assert "Applied" in first and "0001_users" in first
    assert "up to date" in second and "Applied" not in second
    assert "s3cr3t-pw" not in first + second


def test_init_db_reports_an_up_to_date_database(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["init-db"])  # whatever start-up did is reported once
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0
    assert re.search(
        r"Database \S+ is up to date \(\d+ migrations, last \d{4}_\w+\)\.", result.output
    )


# --- flask demo says what it made ------------------------------------------------------------


def test_demo_says_the_user_is_an_administrator_and_how_to_change_its_password(app):
    out = app.test_cli_runner().invoke(args=["demo"]).output
    assert "ADMINISTRATOR" in out and "/admin" in out
    assert "The password is shown this once" in out
    assert "flask users set-password demo@example.com" in out
    assert f"{app.config['ISSUER']}/settings/security" in out
    assert "The client secret is shown this once" in out
    with app.app_context():
        assert User.get(User.email == "demo@example.com").is_admin  # what the banner says


# --- plugins: whose view is shown ------------------------------------------------------------


def test_plugins_list_says_it_is_this_cli_process_and_that_servers_need_a_restart(
    make_app, plugin_dir
):
    (plugin_dir / "stamp.py").write_text(
        "from oauth import hookimpl\n\n@hookimpl\ndef customize_access_token(claims):\n"
        "    return {'stamp': 1}\n"
    )
    out = make_app().test_cli_runner().invoke(args=["plugins", "list"]).output
    assert f"Plugins this CLI process loaded from {plugin_dir}" in out
    assert "restart it after adding or changing a plugin file" in out
    assert "/admin/plugins shows what the running server loaded" in out
    assert "stamp  [file" in out


def test_admin_plugins_page_says_it_is_this_worker_and_a_restart_is_needed(app):
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create_user("root@example.com", PASSWORD, is_admin=True)
    auth.login("root@example.com", PASSWORD)
    page = client.get("/admin/plugins").get_data(as_text=True)
    assert "this server worker loaded when it started" in page
    assert "used only after a restart of the server" in page


# --- a request for another host than the issuer's ----------------------------------------------


def host_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "oauth.web.issuer_host"]


def test_a_request_for_another_host_warns_once_naming_both_and_the_fix(app, caplog):
    client = app.test_client()
    issuer = app.config["ISSUER"]
    with caplog.at_level(logging.WARNING, logger="oauth.web.issuer_host"):
        client.get("/.well-known/openid-configuration", base_url=issuer)
        client.get("/healthz", base_url="http://10.1.2.3:5000")  # a probe: nothing to fix
        assert host_warnings(caplog) == []
        for _ in range(3):
            client.get("/.well-known/openid-configuration", base_url="http://localhost:5800")
        client.get("/login", base_url="http://localhost:5800")
    [message] = host_warnings(caplog)
    assert "'localhost:5800'" in message and issuer in message
    assert "PORTCULLIS_ISSUER" in message and "PORTCULLIS_PROXY_HOPS" in message


def test_behind_a_believed_proxy_the_forwarded_issuer_host_is_no_mismatch(make_app, caplog):
    app = make_app(ISSUER="https://auth.example.com", PROXY_HOPS=1)
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="oauth.web.issuer_host"):
        client.get(
            "/.well-known/openid-configuration",
            base_url="http://127.0.0.1:8000",
            headers={"X-Forwarded-Host": "auth.example.com", "X-Forwarded-Proto": "https"},
        )
        assert host_warnings(caplog) == []
        client.get("/.well-known/openid-configuration", base_url="http://127.0.0.1:8000")
    [message] = host_warnings(caplog)
    assert "'127.0.0.1:8000'" in message and "https://auth.example.com" in message


# --- booleans from a real environment variable -------------------------------------------------


def test_allow_signup_false_written_as_python_would_closes_sign_up(make_app, monkeypatch):
    monkeypatch.setenv("PORTCULLIS_ALLOW_SIGNUP", "False")
    assert make_app().test_client().get("/signup").status_code == 404
