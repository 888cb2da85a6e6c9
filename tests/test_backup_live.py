"""``flask backup`` while gunicorn keeps writing, and the restore of docs/operations.md
("Restore (SQLite)"): stop the server, put the copy in place of the database (its old -wal and
-shm files removed), start the server, sign in."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from tests.conftest import AuthActions
from tests.live import built_app, csrf, flask_command, fresh_database, serve

PASSWORD = "a long enough password"
BUSY = {"SIGNUP_RATE_LIMIT": "100000 per hour", "MAIL_IP_RATE_LIMIT": "100000 per hour"}


def sign_up(base: str, email: str) -> int:
    with requests.Session() as browser:
        page = browser.get(base + "/signup", timeout=30).text
        form = {"email": email, "password": PASSWORD, "csrf_token": csrf(page)}
        return browser.post(
            base + "/signup", data=form, allow_redirects=False, timeout=30
        ).status_code


def sign_in(base: str, email: str) -> int:
    with requests.Session() as browser:
        page = browser.get(base + "/login", timeout=30).text
        form = {"email": email, "password": PASSWORD, "csrf_token": csrf(page)}
        return browser.post(
            base + "/login", data=form, allow_redirects=False, timeout=30
        ).status_code


class Writer(threading.Thread):
    """Signs up new users (a user row, its audit event, a browser session, a mail) until told
    to stop; remembers every answer."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.statuses, self.stop = base, [], threading.Event()
        self.started_writing = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.statuses.append(sign_up(self.base, f"writer-{len(self.statuses)}@example.com"))
            if len(self.statuses) >= 3:
                self.started_writing.set()


def restore(copy: Path, database: Path) -> None:
    """docs/operations.md, "Restore (SQLite)", with the server stopped."""
    for leftover in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy2(copy, database)
    database.chmod(0o600)


def test_a_backup_taken_during_writes_restores_and_serves(tmp_path):
    database = tmp_path / "portcullis.db"
    url, copy = f"sqlite:///{database}", tmp_path / "backups" / "portcullis-copy.db"
    copy.parent.mkdir()
    secret_key = secrets.token_hex(16)
    with serve(url, tmp_path / "live", workers=2, SECRET_KEY=secret_key, **BUSY) as base:
        writer = Writer(base)
        writer.start()
        try:
            assert writer.started_writing.wait(timeout=60)
            done = flask_command(url, tmp_path / "cli", "backup", str(copy), SECRET_KEY=secret_key)
            written_by_then = len(writer.statuses)
            # keep writing after the copy: the copy must not see these
            while writer.is_alive() and len(writer.statuses) < written_by_then + 3:
                writer.join(timeout=0.05)
        finally:
            writer.stop.set()
            writer.join(timeout=60)
        assert "Backed up" in done.stdout
        assert set(writer.statuses) == {302}  # the server never failed a write meanwhile

    with sqlite3.connect(copy) as snapshot:
        assert snapshot.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        users = [row[0] for row in snapshot.execute("SELECT email FROM user")]
        created = snapshot.execute(
            "SELECT COUNT(*) FROM audit_event WHERE event_type = 'signup'"
        ).fetchone()[0]
    snapshot.close()
    # A consistent snapshot: whole sign-ups only (each user with its audit event), the ones
    # before the copy; not those written after it.
    assert 3 <= len(users) == created < len(writer.statuses)
    assert set(users) == {f"writer-{n}@example.com" for n in range(len(users))}

    restore(copy, database)
    with serve(url, tmp_path / "restored", workers=1, SECRET_KEY=secret_key) as base:
        assert sign_in(base, users[0]) == 302
        assert sign_in(base, users[-1]) == 302
        assert sign_up(base, "after-restore@example.com") == 302


def test_pg_dump_and_pg_restore_as_documented(postgres_url, tmp_path):
    """docs/operations.md, "Backups (PostgreSQL)" and "Restore (PostgreSQL)": ``pg_dump -Fc``,
    then ``pg_restore --no-owner --exit-on-error`` into an empty database; it serves sign-ins."""
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump/pg_restore are not installed")
    secret_key = secrets.token_hex(16)
    with (
        fresh_database("postgresql", tmp_path) as source,
        fresh_database("postgresql", tmp_path) as restored,
    ):
        with built_app(source, secret_key, tmp_path) as app:
            AuthActions(app.test_client(), app).create_user("dana@example.com", PASSWORD)
        dump = tmp_path / "portcullis.dump"
        subprocess.run(["pg_dump", "-Fc", "-f", str(dump), source], check=True, timeout=120)
        command = ["pg_restore", "--no-owner", "--exit-on-error", "-d", restored, str(dump)]
        subprocess.run(command, check=True, timeout=120)
        with built_app(restored, secret_key, tmp_path) as app:
            auth = AuthActions(app.test_client(), app)
            assert auth.login("dana@example.com", PASSWORD).status_code == 302
            assert auth.login("dana@example.com", "not it").status_code == 200
