"""The database side of the audit spool (``audit_spool.py``): how far each spool file is
ingested, and a batch of its events with the progress that covers them, in one transaction."""

from __future__ import annotations

import datetime as dt
import json
import logging

import peewee

from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import AuditEvent, BaseModel, utcnow

log = logging.getLogger("oauth.storage.audit_spool")

INSERT_ROWS = 100  # rows per INSERT statement (SQLite's limit on bound parameters)


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
    try:
        with write_transaction():
            row = for_update(
                AuditSpoolProgress.select().where(AuditSpoolProgress.spool == name)
            ).first()
            if (row.ingested if row else 0) != expected:
                return row.ingested if row else 0
            fields = [AuditEvent.created_at, AuditEvent.event_type, AuditEvent.user_id]
            fields += [AuditEvent.client_id, AuditEvent.ip, AuditEvent.details]
            for chunk in peewee.chunked(rows, INSERT_ROWS):
                AuditEvent.insert_many([_values(r) for r in chunk], fields=fields).execute()
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


def _values(row: dict) -> tuple:
    created_at = dt.datetime.fromisoformat(row["created_at"])
    text = [row[key] for key in _TEXT]
    return (created_at, *text, row["details"])


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
