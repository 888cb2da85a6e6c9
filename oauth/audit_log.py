"""Reading the audit log (the admin page): filters and pages, newest first."""

from __future__ import annotations

from dataclasses import dataclass

from oauth.accounts.users import find_by_email
from oauth.pagination import Page, paginate
from oauth.storage.models import AuditEvent, Client, User

PER_PAGE = 50


@dataclass(frozen=True)
class AuditFilters:
    user: str = ""  # an email or a user id
    client_id: str = ""
    event_type: str = ""

    @property
    def active(self) -> bool:
        return bool(self.user or self.client_id or self.event_type)


def _clean(value: str | None, limit: int) -> str:
    return (value or "").strip().replace("\x00", "")[:limit]


def filters_from(args) -> AuditFilters:
    """Filters from a query string (junk is trimmed, never an error)."""
    return AuditFilters(
        user=_clean(args.get("user"), 320),
        client_id=_clean(args.get("client_id"), 64),
        event_type=_clean(args.get("event_type"), 64),
    )


def event_types() -> list[str]:
    """Every event type present in the log, sorted."""
    query = AuditEvent.select(AuditEvent.event_type).distinct().order_by(AuditEvent.event_type)
    return [row.event_type for row in query]


def search(filters: AuditFilters, page: int = 1, per_page: int = PER_PAGE) -> Page:
    query = AuditEvent.select().order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    if filters.user:
        user = find_by_email(filters.user) if "@" in filters.user else None
        query = query.where(AuditEvent.user_id == (user.id if user else filters.user))
    if filters.client_id:
        query = query.where(AuditEvent.client_id == filters.client_id)
    if filters.event_type:
        query = query.where(AuditEvent.event_type == filters.event_type)
    return paginate(query, page, per_page)


def labels(events: list[AuditEvent]) -> tuple[dict[str, str], dict[str, str]]:
    """Emails by user id and client names by client id, for the events on one page."""
    user_ids = {e.user_id for e in events if e.user_id}
    client_ids = {e.client_id for e in events if e.client_id}
    emails = (
        {u.id: u.email for u in User.select(User.id, User.email).where(User.id.in_(user_ids))}
        if user_ids
        else {}
    )
    names = (
        {
            c.client_id: c.name
            for c in Client.select(Client.client_id, Client.name).where(
                Client.client_id.in_(client_ids)
            )
        }
        if client_ids
        else {}
    )
    return emails, names
