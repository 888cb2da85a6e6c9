"""/api/v1/audit-events: the audit log, newest first, filtered (oauth/audit.py)."""

from __future__ import annotations

import datetime as dt

from oauth import audit
from oauth.api.base import listing, page, registry
from oauth.api.problems import Problem
from oauth.api.schemas import AuditEventOut, AuditList, AuditQuery
from oauth.storage.models import AuditEvent

READ, TAG = "audit:read", "audit"


def represent(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        created_at=event.created_at,
        event_type=event.event_type,
        user_id=event.user_id,
        client_id=event.client_id,
        ip=event.ip,
        details=dict(event.details or {}),
    )


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


@registry.operation(
    "GET", "/audit-events", scope=READ, tag=TAG,
    summary="List audit events, newest first (filters combine)",
    description="actor: the admin (details.actor) or machine client (details.actor_client_id) "
    "who acted; target: the user_id or client_id of the event.",
    query=AuditQuery, response=AuditList,
)  # fmt: skip
def list_audit_events(query: AuditQuery) -> AuditList:
    audit.flush_spool()  # this worker's spooled events too (others' within a flush interval)
    rows = AuditEvent.select()
    if query.event_type:
        rows = rows.where(AuditEvent.event_type == query.event_type)
    if query.actor:
        rows = rows.where(audit.acted_by(query.actor))
    if query.target:
        rows = rows.where(
            (AuditEvent.user_id == query.target) | (AuditEvent.client_id == query.target)
        )
    since = _utc(query.since) if query.since else None
    until = _utc(query.until) if query.until else None
    if since and until and since >= until:
        raise Problem(400, "since must be before until.")
    if since:
        rows = rows.where(AuditEvent.created_at >= since)
    if until:
        rows = rows.where(AuditEvent.created_at < until)
    return listing(AuditList, page(rows, AuditEvent.id, query, descending=True), represent)
