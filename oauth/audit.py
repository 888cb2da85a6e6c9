"""The audit log: one row per security-relevant event, written in the caller's transaction.

Never pass a token, code, secret or password in ``details``.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request

from oauth.storage.db import database
from oauth.storage.models import AuditEvent, utcnow


def record(
    event_type: str, *, user_id: str | None = None, client_id: str | None = None, **details
) -> None:
    ip = request.remote_addr if has_request_context() else None
    created_at = utcnow()
    _insert(created_at, event_type, user_id, client_id, ip, details)
    host = current_app.extensions.get("portcullis.plugins")
    if host is not None and host.chain("on_event"):
        payload = {
            "type": event_type,
            "created_at": created_at.isoformat() + "Z",
            "user_id": user_id,
            "client_id": client_id,
            "ip": ip,
            "details": details,
        }
        # observers hear only of what was committed
        database.after_commit(lambda: host.emit(payload))


_FIELDS = (
    AuditEvent.created_at,
    AuditEvent.event_type,
    AuditEvent.user_id,
    AuditEvent.client_id,
    AuditEvent.ip,
    AuditEvent.details,
)


def _insert(*values) -> None:
    # Prepared once per database, not compiled by peewee on every event: one of these is
    # written for every token issued, on the hot path.
    sql = _SQL.get(database.param)
    if sql is None:
        columns = ", ".join(f'"{f.column_name}"' for f in _FIELDS)
        marks = ", ".join([database.param] * len(_FIELDS))
        sql = _SQL[database.param] = f'INSERT INTO "audit_event" ({columns}) VALUES ({marks})'  # noqa: S608 - fixed column names
    database.execute_sql(sql, [f.db_value(v) for f, v in zip(_FIELDS, values, strict=True)])


_SQL: dict[str, str] = {}
