"""The audit log: one row per security-relevant event, written in the caller's transaction.

Never pass a token, code, secret or password in ``details``.
"""

from __future__ import annotations

from flask import has_request_context, request

from .models import AuditEvent


def record(
    event_type: str, *, user_id: str | None = None, client_id: str | None = None, **details
) -> AuditEvent:
    ip = request.remote_addr if has_request_context() else None
    return AuditEvent.create(
        event_type=event_type, user_id=user_id, client_id=client_id, ip=ip, details=details
    )
