"""Refresh tokens: the one owner of their rotation and its reuse policy, and of ending a
token family (an OAuth session).

Every use rotates the token under a row lock. A rotated token that comes back within
``REFRESH_TOKEN_REUSE_INTERVAL`` seconds (a client retrying a request whose answer it lost)
gets the current token: the successor is stored encrypted under the old token, so nothing
usable sits at rest. Later, the replay is treated as theft and ends the whole session.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field

import peewee
from authlib.oauth2.rfc6749.errors import InvalidGrantError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from oauth import audit, metrics
from oauth.security import random_token, sha256_hex
from oauth.storage import models
from oauth.storage.compiled import execute, joined, row_by
from oauth.storage.db import database
from oauth.storage.models import Client, OAuthSession, RefreshToken, User, utcnow

MAX_SUCCESSORS = 64


def new_refresh_token(session: OAuthSession, parent: RefreshToken | None = None) -> str:
    """A fresh token of ``session``, stored as its hash: the plain value (shown once)."""
    plain = random_token(32)
    _store_token(session.id, plain, parent.id if parent is not None else None, _at(utcnow()))
    return plain


def _store_token(session_id: str, plain: str, parent_id, created_at) -> None:
    execute("refresh.token.new", new_token, session_id, sha256_hex(plain), parent_id, created_at)


def new_token(session_id, token_hash, parent_id, created_at):
    """The INSERT of a refresh token (``protocol/grant_statements.py`` runs it in a batch)."""
    return RefreshToken.insert(
        session=session_id, token_hash=token_hash, parent=parent_id, created_at=created_at
    )


def _successor_key(token: str) -> bytes:
    return hashlib.sha256(b"portcullis/refresh-successor\x00" + token.encode()).digest()


def seal_successor(token: str, successor: str) -> str:
    """Encrypt ``successor`` so that only a holder of ``token`` can read it back."""
    nonce = os.urandom(12)
    sealed = AESGCM(_successor_key(token)).encrypt(nonce, successor.encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def open_successor(token: str, ciphertext: str) -> str:
    raw = base64.urlsafe_b64decode(ciphertext.encode())
    return AESGCM(_successor_key(token)).decrypt(raw[:12], raw[12:], None).decode()


def find(plain: str, client: Client) -> tuple[RefreshToken, OAuthSession, User]:
    """The token row, its session and the session's user (one read, no lock), or
    ``invalid_grant``."""
    rows = joined((RefreshToken, OAuthSession, User), "refresh.find", _found, sha256_hex(plain))
    if not rows:
        raise InvalidGrantError("The refresh token is invalid.")
    row, session, user = rows[0]
    _check_session(session, client)
    return row, session, user


def _found(token_hash):
    query = RefreshToken.select(RefreshToken, OAuthSession, User)
    query = query.join(OAuthSession).join(User, on=(OAuthSession.user == User.id))
    return query.where(RefreshToken.token_hash == token_hash)


def _find(plain: str, client: Client, *, locked: bool) -> tuple[RefreshToken, OAuthSession]:
    # Compiled once (storage/compiled.py).
    row = row_by(RefreshToken.token_hash, sha256_hex(plain), locked=locked)
    if row is None:
        raise InvalidGrantError("The refresh token is invalid.")
    session = row_by(OAuthSession.id, row.session_id, locked=locked)
    if session is None:
        raise InvalidGrantError("The refresh token is invalid.")
    _check_session(session, client)
    return row, session


def _check_session(session: OAuthSession, client: Client) -> None:
    if session.client_id != client.client_id:
        raise InvalidGrantError("The refresh token is invalid.")
    if session.revoked_at is not None:
        raise InvalidGrantError("The refresh token was revoked.")


def may_be_spent(row: RefreshToken) -> bool:
    """Live, or rotated within the reuse interval: using it may give a token (``spend``)."""
    return row.rotated_at is None or _within_interval(row)


def _within_interval(row: RefreshToken) -> bool:
    interval = int(current_app.config["REFRESH_TOKEN_REUSE_INTERVAL"])
    return interval > 0 and utcnow() - row.rotated_at <= dt.timedelta(seconds=interval)


@dataclass
class Rotation:
    """A rotation of a token ``find`` saw live, worked out before the write lock: its
    successor, sealed under it, and the moment (``protocol/grant_statements.rotated`` writes
    it in one step)."""

    plain: str
    row: RefreshToken
    session: OAuthSession
    child: str = field(default_factory=lambda: random_token(32))
    at: dt.datetime = field(default_factory=utcnow)
    sealed: str = ""

    def __post_init__(self) -> None:
        self.sealed = seal_successor(self.plain, self.child)


def prepare(plain: str, row: RefreshToken, session: OAuthSession) -> Rotation | None:
    """Outside the lock: the rotation of a token ``find`` saw live (None for a rotated one)."""
    return Rotation(plain, row, session) if row.rotated_at is None else None


def spend(plain: str, client: Client) -> str:
    """In the caller's write transaction: spend ``plain``: the refresh token the client gets next.

    The careful path, for when the one-step rotation (``protocol/grant_statements.py``) was
    not taken or changed nothing: the row and its session are locked and read again (they
    may have changed since ``find``): a live token rotates, a rotated one within the reuse
    interval gives the current one, and any other replay revokes the session and answers
    ``invalid_grant`` (the caller commits the revocation before answering).
    """
    row, session = _find(plain, client, locked=True)
    if row.rotated_at is None:
        next_plain = _rotate(row, plain, session)
    else:
        next_plain = _replay(row, plain, session)
    _touch(session, utcnow())
    return next_plain


def live_rotated(rotated_at, successor, token_id):
    """Rotate the token if it is still live and its session is not revoked (a revocation
    deletes the session's tokens, a disabled user's too, so the row alone would do; the
    session's column says it without relying on that)."""
    live_session = OAuthSession.select(OAuthSession.id).where(
        (OAuthSession.id == RefreshToken.session) & OAuthSession.revoked_at.is_null()
    )
    return _token_rotated(rotated_at, successor, token_id).where(
        RefreshToken.rotated_at.is_null() & peewee.fn.EXISTS(live_session)
    )


def touch_due(session: OAuthSession, now: dt.datetime) -> bool:
    """Whether a use of ``session`` at ``now`` writes its "last used" (``LAST_USED_EVERY``)."""
    every = dt.timedelta(seconds=models.LAST_USED_EVERY)
    return session.last_used_at is None or now - session.last_used_at > every


def _touch(session: OAuthSession, now: dt.datetime) -> None:
    if touch_due(session, now):
        session.last_used_at = now  # LAST_USED_EVERY: a row write less on most rotations
        execute("refresh.session.used", session_used, _at(now), session.id)


def _at(moment: dt.datetime):
    return RefreshToken.rotated_at.db_value(moment)  # what peewee binds for a datetime


def session_used(last_used_at, session_id):
    """The session's "last used" (``_touch``; ``protocol/grant_statements.py``)."""
    return OAuthSession.update(last_used_at=last_used_at).where(OAuthSession.id == session_id)


def _token_rotated(rotated_at, successor, token_id):
    changes = {RefreshToken.rotated_at: rotated_at, RefreshToken.successor_ciphertext: successor}
    return RefreshToken.update(changes).where(RefreshToken.id == token_id)


def _rotate(row: RefreshToken, plain: str, session: OAuthSession) -> str:
    child_plain = new_refresh_token(session, parent=row)
    row.rotated_at = utcnow()
    row.successor_ciphertext = seal_successor(plain, child_plain)
    execute(
        "refresh.token.rotated", _token_rotated,
        _at(row.rotated_at), row.successor_ciphertext, row.id,
    )  # fmt: skip
    return child_plain


def _replay(row: RefreshToken, plain: str, session: OAuthSession) -> str:
    if _within_interval(row):
        live = live_successor(row, plain)
        if live is not None:
            return live
    revoke_session(session, "refresh_token_reuse")
    audit.record(
        "refresh_token.reuse_detected", user_id=session.user_id, client_id=session.client_id
    )
    database.after_commit(metrics.REFRESH_REUSE.inc)
    raise InvalidGrantError("The refresh token was already used; the session has been revoked.")


def live_successor(row: RefreshToken, plain: str) -> str | None:
    """Follow a rotated token's successors to the live one (for replays within the interval)."""
    current_row, current_plain = row, plain
    for _ in range(MAX_SUCCESSORS):
        if current_row.rotated_at is None:
            return current_plain
        if not current_row.successor_ciphertext:
            return None
        current_plain = open_successor(current_plain, current_row.successor_ciphertext)
        current_row = row_by(RefreshToken.token_hash, sha256_hex(current_plain))
        if current_row is None:
            return None
    return None


def revoke_session(session: OAuthSession, reason: str) -> None:
    """End a token family: its refresh tokens are deleted, its access tokens stop being accepted."""
    if session.revoked_at is None:
        session.revoked_at = utcnow()
        session.revoked_reason = reason
        session.save()
    RefreshToken.delete().where(RefreshToken.session == session).execute()
