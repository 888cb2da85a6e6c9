"""Single-use links mailed to users: email verification, email change, password reset.

A token has 256 bits of randomness; only its SHA-256 is stored. Issuing one kills the
user's other unused tokens of the same purpose ("another link was issued"); using one
marks it used in the transaction of the change it makes, by a conditional update, so two
browsers racing with the same link cannot both succeed.
"""

from __future__ import annotations

import datetime as dt

from oauth.security import lookup_key, random_token, sha256_hex
from oauth.storage.db import write_transaction
from oauth.storage.models import AccountToken, User, utcnow

VERIFY_EMAIL = "verify_email"
CHANGE_EMAIL = "change_email"
PASSWORD_RESET = "password_reset"
PURPOSES = (VERIFY_EMAIL, CHANGE_EMAIL, PASSWORD_RESET)

PASSWORD_RESET_TTL = 3600  # one hour (DESIGN.md)


def password_fingerprint(user: User) -> str:
    """Changes whenever the password does: a reset link dies with the password it replaces."""
    return sha256_hex("password:" + (user.password_hash or ""))


def issue(
    user: User,
    purpose: str,
    email: str,
    ttl: int,
    *,
    fingerprint: str = "",
    context: dict | None = None,
) -> str:
    """A new link token for ``user`` (the raw value, to mail; only its hash is kept)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    raw = random_token(32)
    now = utcnow()
    with write_transaction():
        AccountToken.delete().where(
            (AccountToken.user == user.id)
            & (AccountToken.purpose == purpose)
            & AccountToken.used_at.is_null()
        ).execute()
        AccountToken.create(
            user=user.id,
            purpose=purpose,
            token_hash=sha256_hex(raw),
            email=email,
            fingerprint=fingerprint,
            context=context or {},
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
        )
    return raw


def find(raw, purposes: tuple[str, ...]) -> AccountToken | None:
    """The unused, unexpired token of one of ``purposes`` whose value is ``raw``, else None."""
    raw = lookup_key(raw, max_length=128)
    if raw is None:
        return None
    token = AccountToken.get_or_none(AccountToken.token_hash == sha256_hex(raw))
    if token is None or token.purpose not in purposes or token.used_at is not None:
        return None
    if token.expires_at <= utcnow():
        return None
    return token


def claim(token: AccountToken) -> bool:
    """Mark ``token`` used; False when someone else used it first (or it expired meanwhile)."""
    now = utcnow()
    updated = (
        AccountToken.update(used_at=now)
        .where(
            (AccountToken.id == token.id)
            & AccountToken.used_at.is_null()
            & (AccountToken.expires_at > now)
        )
        .execute()
    )
    return updated == 1


def discard(user_id: str, *purposes: str) -> None:
    """Kill the user's unused tokens of ``purposes`` (inside the caller's transaction)."""
    AccountToken.delete().where(
        (AccountToken.user == user_id)
        & AccountToken.purpose.in_(list(purposes))
        & AccountToken.used_at.is_null()
    ).execute()


def purge_expired() -> int:
    """Delete used and expired tokens older than a day."""
    cutoff = utcnow() - dt.timedelta(days=1)
    with write_transaction():
        return (
            AccountToken.delete()
            .where((AccountToken.expires_at < cutoff) | (AccountToken.used_at < cutoff))
            .execute()
        )
