"""The database side of the audit spool (``audit_spool.py``): how far each spool file is
ingested, and a batch of its events with the progress that covers them, in one transaction."""

from __future__ import annotations

import datetime as dt
import json
import logging

import peewee

from oauth.storage.bulk_insert import insert_rows
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import AuditEvent, BaseModel, utcnow
from oauth.storage.postgres_copy import copy_rows

log = logging.getLogger("oauth.storage.audit_spool")


class AuditSpoolProgress(BaseModel):
    """How many bytes of a spool file are in ``audit_event`` (advanced in the same transaction
    as the rows; deleted after the file)."""

    spool = peewee.CharField(primary_key=True, max_length=255)
    ingested = peewee.BigIntegerField(default=0)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "audit_spool_progress"


def commit(name: str, expected: int, reached: int, rows: list[dict]) -> int | None:
    """In one transaction: the rows, and the progress row moved from ``expected`` to
    ``reached``. None when done; else what the progress row said (and nothing is written)."""
    values = [_values(row) for row in rows]  # before the lock
    try:
        with write_transaction():
            row = for_update(
                AuditSpoolProgress.select().where(AuditSpoolProgress.spool == name)
            ).first()
            if (row.ingested if row else 0) != expected:
                return row.ingested if row else 0
            if not copy_rows(AuditEvent, _FIELDS, values):  # PostgreSQL: one COPY
                insert_rows(AuditEvent, _FIELDS, values)  # SQLite: one multi-row INSERT
            if row is None:  # a rival's insert of the same key fails: its transaction is undone
                AuditSpoolProgress.insert(spool=name, ingested=reached).execute()
            else:
                AuditSpoolProgress.update(ingested=reached, updated_at=utcnow()).where(
                    AuditSpoolProgress.spool == name
                ).execute()
    except peewee.IntegrityError:
        return progress(name)
    return None


_TEXT = {"event_type": 64, "user_id": 36, "client_id": 255, "ip": 64}  # AuditEvent's columns


_FIELDS = [AuditEvent.created_at, AuditEvent.event_type, AuditEvent.user_id]
_FIELDS += [AuditEvent.client_id, AuditEvent.ip, AuditEvent.details]


def _values(row: dict) -> tuple:
    """The row's values as peewee would bind them (each field's ``db_value``)."""
    created_at = dt.datetime.fromisoformat(row["created_at"])
    if created_at.tzinfo is not None:  # stored as naive UTC, whichever way it is inserted
        created_at = created_at.astimezone(dt.UTC).replace(tzinfo=None)
    values = (created_at, *(row[key] for key in _TEXT), row["details"])
    return tuple(field.db_value(value) for field, value in zip(_FIELDS, values, strict=True))


def _is_event(row) -> bool:
    """A line a row can be made of (one that is not would fail its batch again and again)."""
    if not isinstance(row, dict) or not isinstance(row.get("details"), dict):
        return False
    if not isinstance(row.get("event_type"), str):
        return False
    for key, limit in _TEXT.items():
        value = row.get(key)
        if not (value is None or (isinstance(value, str) and len(value) <= limit)):
            return False
    try:
        dt.datetime.fromisoformat(row.get("created_at"))
    except (TypeError, ValueError):
        return False
    return True


def parse(name: str, data: bytes) -> list[dict]:
    """The events of complete lines; a line that is no event is skipped with a warning."""
    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            row = None
        if not _is_event(row):
            log.warning("audit spool %s: line %d of a batch is no event; skipped", name, number)
            continue
        rows.append(row)
    return rows


def progress(name: str) -> int:
    row = AuditSpoolProgress.get_or_none(AuditSpoolProgress.spool == name)
    return row.ingested if row else 0
