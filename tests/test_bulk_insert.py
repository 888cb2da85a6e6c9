"""The audit spool's batches on SQLite go in as one multi-row INSERT (storage/bulk_insert.py):
one statement step for the batch, not one per row (each step lets the GIL go, and the flusher
holds SQLite's writers' lock while it waits to get it back); more statements only where the
database's parameter limit says so; on PostgreSQL the same function stores the same rows."""

from __future__ import annotations

import sqlite3

import pytest

from oauth.storage import audit_ingest
from oauth.storage.bulk_insert import insert_rows
from oauth.storage.db import database, write_transaction
from oauth.storage.models import AuditEvent

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def event(n: int) -> dict:
    return {
        "created_at": "2026-01-02T03:04:05.123456", "event_type": "bulk.test",
        "user_id": f"user-{n}", "client_id": None, "ip": "192.0.2.1",
        "details": {"n": n, "text": f"row {n}\twith a tab"},
    }  # fmt: skip


def stored_numbers(app) -> list[int]:
    with app.app_context():
        return [e.details["n"] for e in AuditEvent.select().order_by(AuditEvent.id)]


@SQLITE
def test_a_spool_batch_is_one_insert_statement_on_sqlite(app):
    statements: list[str] = []
    with app.app_context():
        connection = database.obj.connection()
        connection.set_trace_callback(statements.append)
        try:
            assert audit_ingest.commit("bulk-1", 0, 100, [event(n) for n in range(120)]) is None
        finally:
            connection.set_trace_callback(None)
    inserts = [s for s in statements if s.lstrip().upper().startswith('INSERT INTO "AUDIT_EVENT"')]
    assert len(inserts) == 1  # executemany traces one statement per row
    assert stored_numbers(app) == list(range(120))


@SQLITE
def test_the_parameter_limit_splits_a_batch_and_keeps_its_order(app):
    values = [audit_ingest._values(event(n)) for n in range(5)]
    with app.app_context():
        connection = database.obj.connection()
        limit = sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER
        before = connection.setlimit(limit, 2 * len(audit_ingest._FIELDS))  # two rows each
        try:
            with write_transaction():
                assert insert_rows(AuditEvent, audit_ingest._FIELDS, values) == 3
        finally:
            connection.setlimit(limit, before)
    assert stored_numbers(app) == [0, 1, 2, 3, 4]


def test_no_rows_run_no_statement_and_rows_arrive_on_either_database(app):
    values = [audit_ingest._values(event(n)) for n in range(3)]
    with app.app_context(), write_transaction():
        assert insert_rows(AuditEvent, audit_ingest._FIELDS, []) == 0
        assert insert_rows(AuditEvent, audit_ingest._FIELDS, values) == 1
    assert stored_numbers(app) == [0, 1, 2]
    with app.app_context():
        first = AuditEvent.select().order_by(AuditEvent.id).first()
    assert (first.user_id, first.ip, first.client_id) == ("user-0", "192.0.2.1", None)
    assert first.details == {"n": 0, "text": "row 0\twith a tab"}
