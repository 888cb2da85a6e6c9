"""The pool of PostgreSQL connections (storage/db.py): an idle connection is handed out
without a round trip, and one the server ended is never handed out."""

from __future__ import annotations

import time

import psycopg
import pytest

from oauth.storage.db import database
from tests.conftest import PG_ADMIN_URL

postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _backend_pid() -> int:
    return database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]


def _last_query(pid: int) -> str:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row[0] if row else ""


@postgres_only
def test_an_idle_pooled_connection_is_handed_out_without_a_round_trip(make_app):
    app = make_app()
    with app.app_context():
        pid = _backend_pid()
    with app.app_context():
        database.connect(reuse_if_open=True)  # the check-out, nothing else
        assert _last_query(pid) == "SELECT pg_backend_pid()"  # no "SELECT 1" was sent
        assert _backend_pid() == pid  # the same connection, from the pool


@postgres_only
def test_a_connection_the_server_ended_is_not_handed_out(make_app):
    app = make_app()
    client = app.test_client()
    with app.app_context():
        pid = _backend_pid()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    deadline = time.monotonic() + 5
    while _last_query(pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # the backend is gone: its FATAL message is on the socket
    assert client.get("/healthz").status_code == 200  # a fresh connection served it
    with app.app_context():
        assert _backend_pid() != pid
