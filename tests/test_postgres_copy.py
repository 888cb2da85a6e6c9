"""The audit spool's batches on PostgreSQL go in through one COPY (storage/postgres_copy.py),
and the rows are what the row-by-row INSERT of SQLite stores: NULLs, escapes, Unicode, the
longest values, a time with an offset as naive UTC; an error is peewee's and undoes the
batch."""

from __future__ import annotations

import datetime as dt
import json

import peewee
import pytest

from oauth.storage import audit_ingest
from oauth.storage.db import is_sqlite, write_transaction
from oauth.storage.models import AuditEvent
from oauth.storage.postgres_copy import copy_rows

AWKWARD = [
    "tab\there", "new\nline", "back\\slash", r"\N", "quote ' and \"", "ünïcødé ✓ 🔑", "",
]  # fmt: skip


def event(n: int, text: str, **changes) -> dict:
    row = {
        "created_at": "2026-01-02T03:04:05.123456", "event_type": f"odd.{n}",
        "user_id": None, "client_id": text or None, "ip": None,
        "details": {"text": text, "n": n, "nested": {"list": [text, None, 1.5]}},
    }  # fmt: skip
    row.update(changes)
    return row


def stored(app) -> list[AuditEvent]:
    with app.app_context():
        return list(AuditEvent.select().order_by(AuditEvent.id))


def test_a_batch_of_awkward_values_is_stored_as_sent(app):
    batch = [event(n, text) for n, text in enumerate(AWKWARD)]
    batch.append(event(99, "x", client_id="c" * 255, user_id="u" * 36, ip="2001:db8::1"))
    batch.append(event(100, "offset", created_at="2026-01-02T05:04:05.5+02:00"))
    with app.app_context():
        assert audit_ingest.commit("odd-1", 0, 10, batch) is None
    rows = stored(app)
    assert [r.event_type for r in rows] == [e["event_type"] for e in batch]
    for row, sent in zip(rows, batch, strict=True):
        assert (row.client_id, row.user_id, row.ip) == (
            sent["client_id"], sent["user_id"], sent["ip"],
        )  # fmt: skip
        assert row.details == sent["details"]
    assert rows[0].created_at == dt.datetime(2026, 1, 2, 3, 4, 5, 123456)
    assert rows[-1].created_at == dt.datetime(2026, 1, 2, 3, 4, 5, 500000)  # naive UTC


def test_postgresql_copies_and_sqlite_inserts(app):
    values = [audit_ingest._values(event(1, "one")), audit_ingest._values(event(2, "two"))]
    with app.app_context(), write_transaction():
        copied = copy_rows(AuditEvent, audit_ingest._FIELDS, values)
    assert copied is not is_sqlite_app(app)
    assert [r.details["text"] for r in stored(app)] == (["one", "two"] if copied else [])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite never copies
def test_an_error_in_the_copy_is_peewees_and_undoes_the_batch(app):
    good = audit_ingest._values(event(1, "kept?"))
    bad = audit_ingest._values(event(2, "too long", client_id="c" * 256))  # over 255
    with pytest.raises(peewee.DataError), app.app_context(), write_transaction():
        copy_rows(AuditEvent, audit_ingest._FIELDS, [good, bad])
    assert stored(app) == []
    with app.app_context():  # the pooled connection is usable again
        assert audit_ingest.commit("after", 0, 1, [json.loads(json.dumps(event(3, "ok")))]) is None
    assert [r.details["text"] for r in stored(app)] == ["ok"]


def is_sqlite_app(app) -> bool:
    with app.app_context():
        return is_sqlite()
