"""Password reset by mail.

``request`` does the same work whatever the address: it queues one mail row and nothing
else; whether an account exists is decided by the sender (``mail.prepare``), which mints
the link only for a real, enabled account. So the page answers the same, in the same time.

A link is single use, stored hashed, valid one hour, and dies when the password changes
(its fingerprint no longer matches) or when another link is issued. Using it replaces the
password through ``users.set_password`` (which signs out every browser session and audits
``password.changed`` with ``via=reset``) and mails the owner that it happened.
"""

from __future__ import annotations

from oauth import audit
from oauth.accounts import account_tokens, mail, passwords
from oauth.accounts import users as accounts
from oauth.security import matches_hash
from oauth.storage.db import write_transaction
from oauth.storage.models import AccountToken, User, utcnow


class LinkInvalid(Exception):
    """The link was used, expired, replaced, or the password changed since it was sent."""


def request(email: str, *, ip: str | None = None) -> None:
    """Queue a reset mail for ``email`` (sent only if it has an account)."""
    with write_transaction():
        mail.queue("password_reset", accounts.normalise_email(email)[:320], ip=ip)


def _still_valid(token: AccountToken, user: User | None) -> bool:
    return (
        user is not None
        and not user.disabled
        and user.email == token.email
        and matches_hash("password:" + (user.password_hash or ""), token.fingerprint)
    )


def pending_link(raw) -> AccountToken | None:
    """The reset token behind ``raw`` while it can still be used, else None."""
    token = account_tokens.find(raw, (account_tokens.PASSWORD_RESET,))
    if token is None:
        return None
    if not _still_valid(token, User.get_or_none(User.id == token.user_id)):
        return None
    return token


def reset(raw, password: str, *, ip: str | None = None) -> User:
    """Set a new password with the link; raises AccountError (the password) or LinkInvalid."""
    problem = passwords.password_problem(password)
    if problem:
        raise accounts.AccountError(problem)
    token = pending_link(raw)
    if token is None:
        raise LinkInvalid
    with write_transaction():
        # Claimed first, in its own short transaction: two browsers racing with one link
        # cannot both set a password, and the hashing below holds no lock.
        user = User.get_or_none(User.id == token.user_id)
        if not _still_valid(token, user) or not account_tokens.claim(token):
            raise LinkInvalid
    accounts.set_password(user, password, via="reset")
    with write_transaction():
        account_tokens.discard(user.id, account_tokens.PASSWORD_RESET)
        if not user.email_verified:
            # The link reached this address: that proves it as well as a verification link.
            User.update(email_verified=True, updated_at=utcnow()).where(
                User.id == user.id
            ).execute()
            audit.record("email.verified", user_id=user.id, email=user.email, via="password_reset")
        mail.queue("password_changed", user.email, user_id=user.id, ip=ip)
    return User.get_by_id(user.id)
