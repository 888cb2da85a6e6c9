"""The audit log: one row per security-relevant event, written in the caller's transaction.

Never pass a token, code, secret or password in ``details``.
"""

from __future__ import annotations

from flask import current_app, has_request_context, request

from .db import database
from .models import AuditEvent


def record(
    event_type: str, *, user_id: str | None = None, client_id: str | None = None, **details
) -> AuditEvent:
    ip = request.remote_addr if has_request_context() else None
    event = AuditEvent.create(
        event_type=event_type, user_id=user_id, client_id=client_id, ip=ip, details=details
    )
    host = current_app.extensions.get("portcullis.plugins")
    if host is not None and host.chain("on_event"):
        payload = {
            "type": event_type,
            "created_at": event.created_at.isoformat() + "Z",
            "user_id": user_id,
            "client_id": client_id,
            "ip": ip,
            "details": details,
        }
        # observers hear only of what was committed
        database.after_commit(lambda: host.emit(payload))
    return event
