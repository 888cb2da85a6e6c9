"""Rotating a confidential client's secret, with a grace period for the old one.

A rotation stores the new secret's SHA-256 as ``client_secret_hash``. With a grace period the
hash it replaces moves to ``previous_secret_hash`` until ``previous_secret_expires_at``:
meanwhile both secrets authenticate (``Client.check_client_secret`` compares against both,
always, in constant time), after it only the new one. A rotation always replaces the previous
secret: with grace 0 none is kept, so the old secret stops at once. ``clients.rotate_secret``
is the public entry point (its signature is a contract of the management API).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from oauth import audit
from oauth.registry.cache import invalidates
from oauth.registry.client_rules import metadata_error
from oauth.security import random_token, sha256_hex
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import Client, utcnow

SECRET_BYTES = 32  # 256 bits
MAX_GRACE_SECONDS = 30 * 24 * 3600  # 30 days


def clean_grace_seconds(value: Any) -> int:
    """A grace period: a whole number of seconds from 0 to 30 days, else ClientError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GRACE_SECONDS:
        raise metadata_error(
            f"grace_seconds must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS} "
            "(30 days)"
        )
    return value


def iso(moment: dt.datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with ``Z``."""
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


def grace_ends_at(client: Client) -> dt.datetime | None:
    """When the previous secret stops working (naive UTC), or None when none works now."""
    expires = client.previous_secret_expires_at
    if client.previous_secret_hash is None or expires is None or expires <= utcnow():
        return None
    return expires


def previous_secret_expires_at(client: Client) -> str | None:
    """``grace_ends_at`` as ISO 8601 (client_info, the CLI's --json)."""
    return iso(grace_ends_at(client))


def _locked_row(client: Client) -> Client:
    row = for_update(Client.select().where(Client.client_id == client.client_id)).first()
    if row is None:
        raise metadata_error(f"client {client.client_id} no longer exists")
    return row


def _write(client: Client, changes: dict[str, Any]) -> None:
    changes = {**changes, "updated_at": utcnow()}
    Client.update({getattr(Client, k): v for k, v in changes.items()}).where(
        Client.client_id == client.client_id
    ).execute()
    for key, value in changes.items():
        setattr(client, key, value)


@invalidates
def rotate(client: Client, *, grace_seconds: int = 0, actor_id: str | None = None) -> str:
    """A new secret for a confidential client (returned, shown once); the old one keeps
    working for ``grace_seconds`` (0: it stops at once). Audited as ``client.secret_rotated``."""
    if client.is_public:
        raise metadata_error("public clients have no secret")
    grace = clean_grace_seconds(grace_seconds)
    secret = random_token(SECRET_BYTES)
    with write_transaction():
        row = _locked_row(client)  # the hash being replaced, as stored now (not a stale copy)
        expires = utcnow() + dt.timedelta(seconds=grace) if grace else None
        _write(
            client,
            {
                "client_secret_hash": sha256_hex(secret),
                "previous_secret_hash": row.client_secret_hash if grace else None,
                "previous_secret_expires_at": expires,
            },
        )
        audit.record(
            "client.secret_rotated",
            user_id=actor_id,
            client_id=client.client_id,
            grace_seconds=grace,
            previous_secret_expires_at=iso(expires),
        )
    return secret


@invalidates
def end_grace(
    client: Client, *, at: dt.datetime | None = None, actor_id: str | None = None
) -> None:
    """The previous secret stops working at ``at`` (naive UTC; default now), or when its grace
    period ends if that is earlier. Audited as ``client.secret_grace_ended``."""
    at = utcnow() if at is None else at
    with write_transaction():
        row = _locked_row(client)
        expires = row.previous_secret_expires_at
        if row.previous_secret_hash is None or expires is None or expires <= at:
            return
        _write(client, {"previous_secret_expires_at": at})
        audit.record(
            "client.secret_grace_ended",
            user_id=actor_id,
            client_id=client.client_id,
            previous_secret_expires_at=iso(at),
        )
