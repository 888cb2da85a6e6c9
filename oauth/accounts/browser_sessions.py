"""Browser sessions as server-side rows (``BrowserSession``): the cookie carries only a random
id (256 bits), the database only its SHA-256. A session is valid while its row exists, is
neither idle too long (``BROWSER_SESSION_IDLE_TTL``) nor past its absolute lifetime
(``BROWSER_SESSION_TTL``), its user is enabled and the user's session epoch has not moved.
Ending a session deletes the row, so a copied cookie stops working at once, on every worker."""

from __future__ import annotations

import datetime as dt

from flask import current_app

from oauth.accounts import backchannel
from oauth.security import random_token, sha256_hex
from oauth.storage.db import write_transaction
from oauth.storage.models import BrowserSession, User, utcnow

# last_seen_at is written at most this often, so most requests only read.
TOUCH_EVERY = dt.timedelta(seconds=60)
MAX_ID_LENGTH = 128


def _hash(session_id: str) -> str | None:
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_ID_LENGTH:
        return None
    return sha256_hex(session_id)


def _idle_limit() -> dt.timedelta | None:
    seconds = current_app.config["BROWSER_SESSION_IDLE_TTL"]
    return dt.timedelta(seconds=seconds) if seconds else None  # 0: no idle timeout


def _is_over(row: BrowserSession, now: dt.datetime) -> bool:
    idle = _idle_limit()
    return row.expires_at <= now or (idle is not None and row.last_seen_at + idle <= now)


def start(user: User, *, auth_time: int, amr: list[str], user_agent: str, ip: str) -> str:
    """Record a new signed-in browser for ``user``; returns the random id for the cookie."""
    session_id = random_token(32)
    now = utcnow()
    lifetime = dt.timedelta(seconds=current_app.config["BROWSER_SESSION_TTL"])
    with write_transaction():
        purge(now)
        epoch = User.select(User.session_epoch).where(User.id == user.id).scalar()
        BrowserSession.create(
            id_hash=sha256_hex(session_id),
            user=user.id,
            epoch=epoch if epoch is not None else user.session_epoch,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            user_agent=(user_agent or "")[:200],
            ip=(ip or "")[:64],
            auth_time=auth_time,
            amr=list(amr),
            sid=random_token(16),  # OIDC sid: public, so unrelated to the secret id
        )
    return session_id


def find(session_id: str) -> BrowserSession | None:
    """The live session with this id (its ``user`` loaded), or None. A session found over its
    limits is deleted; a live one has its ``last_seen_at`` moved at most once a minute."""
    id_hash = _hash(session_id)
    if id_hash is None:
        return None
    row = (
        BrowserSession.select(BrowserSession, User)
        .join(User)
        .where(BrowserSession.id_hash == id_hash)
        .first()
    )
    if row is None:
        return None
    now = utcnow()
    if row.user.disabled or row.epoch != row.user.session_epoch or _is_over(row, now):
        with write_transaction():
            BrowserSession.delete().where(BrowserSession.id_hash == id_hash).execute()
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        with write_transaction():
            BrowserSession.update(last_seen_at=now).where(
                BrowserSession.id_hash == id_hash
            ).execute()
        row.last_seen_at = now
    return row


def end(session_id: str | None, *, logout_reason: str | None = None) -> bool:
    """End one session (sign-out, or the old id when a browser signs in again). With a
    ``logout_reason`` the clients signed in through it are sent back-channel logout tokens."""
    id_hash = _hash(session_id) if session_id else None
    if id_hash is None:
        return False
    with write_transaction():
        row = BrowserSession.get_or_none(BrowserSession.id_hash == id_hash)
        if row is None:
            return False
        BrowserSession.delete().where(BrowserSession.id_hash == id_hash).execute()
        if logout_reason is not None:
            backchannel.browser_sessions_ended(row.user_id, [row.sid], logout_reason)
        return True


def end_all(user_id: str, *, keep: str | None = None, reason: str = "signed_out") -> int:
    """End every session of the user except ``keep`` (which moves to the user's current epoch,
    so call this after bumping it), notifying their clients (back-channel logout). Returns how
    many ended."""
    keep_hash = _hash(keep) if keep else None
    with write_transaction():
        ending = BrowserSession.select(BrowserSession.sid).where(BrowserSession.user == user_id)
        query = BrowserSession.delete().where(BrowserSession.user == user_id)
        if keep_hash is not None:
            ending = ending.where(BrowserSession.id_hash != keep_hash)
            query = query.where(BrowserSession.id_hash != keep_hash)
        sids = [sid for (sid,) in ending.tuples()]
        ended = query.execute()
        if keep_hash is not None:
            epoch = User.select(User.session_epoch).where(User.id == user_id)
            BrowserSession.update(epoch=epoch).where(
                (BrowserSession.id_hash == keep_hash) & (BrowserSession.user == user_id)
            ).execute()
        backchannel.browser_sessions_ended(user_id, sids, reason)
    return ended


def sid_of(session_id: str | None) -> str | None:
    """The OIDC sid of the live session with this (secret) id."""
    id_hash = _hash(session_id) if session_id else None
    if id_hash is None:
        return None
    return (
        BrowserSession.select(BrowserSession.sid).where(BrowserSession.id_hash == id_hash).scalar()
    )


def purge(now: dt.datetime | None = None) -> int:
    """Delete every session past its lifetime or idle limit (run at each sign-in)."""
    now = now or utcnow()
    over = BrowserSession.expires_at <= now
    idle = _idle_limit()
    if idle is not None:
        over |= BrowserSession.last_seen_at <= now - idle
    with write_transaction():
        return BrowserSession.delete().where(over).execute()
