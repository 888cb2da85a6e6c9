"""The audit log: one row per security-relevant event, written in the caller's transaction
by the service that made the change, and read back (filters, pages) by the admin pages.

An event that changes no row (a client-credentials token) goes to the spool instead
(``record_soon``): durable in a local file at once, in the table a moment later
(``oauth/storage/audit_spool.py``); readers that must see it call ``flush_spool`` first.

Never pass a token, code, secret or password in ``details``.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peewee
from flask import Flask, current_app, g, has_app_context, has_request_context, request

from oauth.pagination import Page, paginate
from oauth.storage import audit_spool
from oauth.storage.compiled import execute
from oauth.storage.db import database, write_transaction
from oauth.storage.models import AuditEvent, Client, User, utcnow

log = logging.getLogger(__name__)
SPOOL = "portcullis.audit_spool"

FROM_REQUEST: Any = object()

# Who acts, when it is not a person: the management API (oauth/api) names the machine client
# whose token called it, and every event recorded while it serves the call says so.
ACTOR_CLIENT = "portcullis_actor_client"
CLIENT_IP = "portcullis_client_ip"


def act_as_client(client_id: str) -> None:
    """Until this app context ends, every event recorded names ``client_id`` as its actor
    (``details``: ``actor_type: "client"``, ``actor_client_id``)."""
    setattr(g, ACTOR_CLIENT, client_id)


def from_address(ip: str | None) -> None:
    """Outside a Flask request (the lean lane of the token endpoint): until this app context
    ends, the IP that the events recorded name, as ``request.remote_addr`` would."""
    setattr(g, CLIENT_IP, ip)


def acting_client() -> str | None:
    """The client acting in this app context (``act_as_client``), if any."""
    return g.get(ACTOR_CLIENT) if has_app_context() else None


def record(
    event_type: str,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = FROM_REQUEST,
    **details,
) -> None:
    """Write one event in the caller's transaction; ``ip`` defaults to the request's."""
    ip, details = _context(ip, details)
    _store(utcnow(), event_type, user_id, client_id, ip, details)


def record_soon(
    event_type: str,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    ip: str | None = FROM_REQUEST,
    **details,
) -> None:
    """Record one event durably without the database (``record``'s arguments and meaning):
    once this returns, the event is in this process's spool file and survives a ``kill -9``;
    it reaches ``audit_event`` (and ``on_event`` observers) within AUDIT_SPOOL_FLUSH_SECONDS.

    For events that change no row (a client-credentials token): an event that comes with a
    change belongs in the change's transaction (``record``). Should the spool fail (disk
    full), the event is written to the database here instead, never lost."""
    ip, details = _context(ip, details)
    created_at = utcnow()
    event = {
        "created_at": created_at.isoformat(),
        "event_type": event_type,
        "user_id": user_id,
        "client_id": client_id,
        "ip": ip,
        "details": details,
    }
    try:
        current_app.extensions[SPOOL].append(event)
    except (OSError, ValueError) as error:
        log.warning("audit spool: %s; writing the event to the database now", error)
        with write_transaction():
            _store(created_at, event_type, user_id, client_id, ip, details)


def flush_spool() -> int:
    """Move this process's spooled events (and those of dead processes) into ``audit_event``
    now, for a reader that must see them; returns how many. Cheap with nothing spooled."""
    spool = current_app.extensions.get(SPOOL)
    return spool.flush() if spool is not None else 0


def spool_files() -> list[Path]:
    """The spool files there are (this app's folder), each still to be ingested or being
    written; none when every process has stopped and flushed."""
    return current_app.extensions[SPOOL].files()


def init_app(app: Flask) -> None:
    """This app's spool (``instance/audit-spool/``); what dead processes left is ingested now,
    after the plugins are loaded (their ``on_event`` hears of it)."""
    spool = app.extensions[SPOOL] = audit_spool.Spool(
        app,
        Path(app.instance_path) / audit_spool.FOLDER,
        fsync=app.config["AUDIT_SPOOL_FSYNC"],
        interval=float(app.config["AUDIT_SPOOL_FLUSH_SECONDS"]),
        on_committed=lambda rows: _emit(rows, app),
    )
    if spool.folder.is_dir():
        try:
            spool.flush()
        except peewee.DatabaseError as error:  # e.g. AUTO_MIGRATE off, migrations pending
            log.warning("audit spool: cannot ingest left-over events yet: %s", error)


def _context(ip, details: dict) -> tuple[str | None, dict]:
    """The request's IP (unless given) and the acting client (``act_as_client``)."""
    if ip is FROM_REQUEST:
        if has_request_context():
            ip = request.remote_addr
        else:
            ip = g.get(CLIENT_IP) if has_app_context() else None
    actor_client = acting_client()
    if actor_client is not None:
        details = {**details, "actor_type": "client", "actor_client_id": actor_client}
    return ip, details


def _store(created_at, event_type, user_id, client_id, ip, details) -> None:
    _insert(created_at, event_type, user_id, client_id, ip, details)
    host = current_app.extensions.get("portcullis.plugins")
    if host is not None and host.chain("on_event"):
        payload = _payload(created_at.isoformat(), event_type, user_id, client_id, ip, details)
        # observers hear only of what was committed
        database.after_commit(lambda: host.emit(payload))


def _payload(created_at: str, event_type, user_id, client_id, ip, details) -> dict:
    return {
        "type": event_type,
        "created_at": created_at + "Z",
        "user_id": user_id,
        "client_id": client_id,
        "ip": ip,
        "details": details,
    }


def _emit(rows: list[dict], app: Flask) -> None:
    """``on_event`` for spooled events, once their batch has committed (the flusher's)."""
    host = app.extensions.get("portcullis.plugins")
    if host is None or not host.chain("on_event"):
        return
    for row in rows:
        host.emit(
            _payload(
                row["created_at"],
                row["event_type"],
                row["user_id"],
                row["client_id"],
                row["ip"],
                row["details"],
            )  # fmt: skip
        )


_FIELDS = (
    AuditEvent.created_at,
    AuditEvent.event_type,
    AuditEvent.user_id,
    AuditEvent.client_id,
    AuditEvent.ip,
    AuditEvent.details,
)


def _insert(*values) -> None:
    # Compiled once per database (storage/compiled.py), not by peewee on every event.
    converted = [f.db_value(v) for f, v in zip(_FIELDS, values, strict=True)]
    execute("audit.insert", _insert_query, *converted)


def _insert_query(*marks):
    # The values come converted already: peewee must not convert the markers a second time.
    row = {f: peewee.Value(m, converter=False) for f, m in zip(_FIELDS, marks, strict=True)}
    return AuditEvent.insert(row)


# --- forgetting a deleted user ----------------------------------------------------------

PERSONAL_DETAILS = ("email", "old_email", "new_email", "to", "name", "phone", "picture")
FORGOTTEN = "(deleted)"


def forget_user(user_id: str, email: str) -> str:
    """Scrub a deleted user from the log (in the caller's transaction); returns the pseudonym.

    The user's events keep their type, time and client but get a random pseudonym instead of
    the user id (so they still read as one person's, linked to no account or ``sub``), lose
    their IP address and the personal fields of ``details``; in every other event, values that
    are or contain the user's id or email (an admin's ``actor``, a failed sign-in's ``email``,
    a mail error) are replaced.
    """
    pseudonym = "deleted-" + secrets.token_hex(14)
    AuditEvent.update(user_id=pseudonym, ip=None).where(AuditEvent.user_id == user_id).execute()
    mentions = (AuditEvent.user_id == pseudonym) & _any_text(
        [f'"{key}":' for key in PERSONAL_DETAILS]
    )
    mentions |= _any_text([user_id, json.dumps(email)[1:-1]])
    for event in AuditEvent.select().where(mentions):
        own = event.user_id == pseudonym
        details = {
            key: _forget_value(key, value, own, user_id, email, pseudonym)
            for key, value in (event.details or {}).items()
        }
        if details != event.details:
            AuditEvent.update(details=details).where(AuditEvent.id == event.id).execute()
    return pseudonym


def _any_text(needles: list[str]):
    """Events whose details text contains one of ``needles`` (a superset: LIKE wildcards in a
    needle only widen it; ``_forget_value`` changes exact values only)."""
    conditions = [
        AuditEvent.details ** peewee.Value(f"%{needle}%", converter=False) for needle in needles
    ]
    return functools.reduce(operator.or_, conditions)


def _forget_value(key: str, value, own: bool, user_id: str, email: str, pseudonym: str):
    if own and key in PERSONAL_DETAILS:
        return FORGOTTEN
    if isinstance(value, list):
        return [_forget_value("", item, own, user_id, email, pseudonym) for item in value]
    if not isinstance(value, str):
        return value
    # the id or the address inside a longer text too (an SMTP error quoting the address)
    value = value.replace(user_id, pseudonym)
    return re.sub(re.escape(email), FORGOTTEN, value, flags=re.IGNORECASE) if email else value


# --- reading ---------------------------------------------------------------------------

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
    flush_spool()  # this worker's spooled events too (others' within a flush interval)
    query = AuditEvent.select().order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    if filters.user:
        # emails are stored normalised (accounts.users.normalise_email: trimmed, lower case)
        user = User.get_or_none(User.email == filters.user.lower()) if "@" in filters.user else None
        query = query.where(AuditEvent.user_id == (user.id if user else filters.user))
    if filters.client_id:
        query = query.where(AuditEvent.client_id == filters.client_id)
    if filters.event_type:
        query = query.where(AuditEvent.event_type == filters.event_type)
    return paginate(query, page, per_page)


def acted_by(actor: str):
    """Events whose actor is ``actor``: an admin's user id (``details.actor``) or a machine
    client's id (``details.actor_client_id``, the management API). A condition for a query."""
    quoted = json.dumps(actor)
    return _any_text([f'"actor":{quoted}', f'"actor_client_id":{quoted}'])


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
