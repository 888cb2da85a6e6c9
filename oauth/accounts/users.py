"""User accounts: creation, lookup, password sign-in, password change (deletion: deletion.py).
is audited here, in its transaction, whoever asks (sign-up page, settings, CLI, admin)."""

from __future__ import annotations

import re
from collections.abc import Callable

import peewee
from flask import current_app

from oauth import audit, metrics
from oauth.accounts import browser_sessions, passwords
from oauth.plugins.hookspecs import SignupDenied
from oauth.plugins.host import PluginError
from oauth.storage.db import write_transaction
from oauth.storage.models import User, utcnow

EMAIL_PATTERN = re.compile(
    r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]+$"
)


class AccountError(Exception):
    """A refused account operation; the message is safe to show to the user."""


class EmailNotVerified(Exception):
    """The password was right, but EMAIL_VERIFICATION=required and the address is unconfirmed."""

    def __init__(self, email: str):
        super().__init__(email)
        self.email = email


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def email_problem(email: str) -> str | None:
    if not email:
        return "Email is required."
    if len(email) > 320 or not EMAIL_PATTERN.match(email):
        return f"{email!r} is not a valid email address."
    return None


def clean_text(value: str | None, label: str, limit: int) -> str:
    """A trimmed one-line text field (name, phone, picture), or AccountError."""
    text = (value or "").strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise AccountError(f"{label} may not contain control characters.")
    if len(text) > limit:
        raise AccountError(f"{label} is longer than {limit} characters.")
    return text


def find_by_email(email: str) -> User | None:
    if "\x00" in email:  # no account has one (refused at creation); PostgreSQL would raise
        return None
    return User.get_or_none(User.email == normalise_email(email))


def create_user(
    email: str,
    password: str | None,
    *,
    name: str = "",
    phone: str = "",
    is_admin: bool = False,
    email_verified: bool = False,
    app_metadata: dict | None = None,
    user_metadata: dict | None = None,
    via: str = "cli",
    on_created: Callable[[User], None] | None = None,
) -> User:
    """Create an account (``via``: ``signup``, ``cli`` or ``admin``, for the audit log).

    ``on_created`` runs inside the creating transaction (the sign-up queues its mail there).
    """
    email = normalise_email(email)
    problem = email_problem(email)
    if problem:
        raise AccountError(problem)
    if password is not None:
        problem = passwords.password_problem(password)
        if problem:
            raise AccountError(problem)
    user = User(
        email=email,
        password_hash=passwords.hash_password(password) if password is not None else None,
        name=clean_text(name, "Name", 200),
        phone=clean_text(phone, "Phone", 40),
        is_admin=is_admin,
        email_verified=email_verified,
        app_metadata=app_metadata or {},
        user_metadata=user_metadata or {},
    )
    host = current_app.extensions.get("portcullis.plugins")
    if host is not None:
        try:
            host.before_user_created(user)
        except SignupDenied as denial:
            raise AccountError(str(denial) or "Sign-up refused.") from None
        except PluginError as failure:
            raise AccountError(failure.description) from None
        user.email = email = normalise_email(user.email)
    try:
        with write_transaction():
            if find_by_email(email):
                raise AccountError(f"A user with email {email} already exists.")
            user.save(force_insert=True)
            _created(user, via, on_created)
    except peewee.IntegrityError:
        raise AccountError(f"A user with email {email} already exists.") from None
    return user


def _created(user: User, via: str, on_created: Callable[[User], None] | None) -> None:
    if via == "signup":
        audit.record("signup", user_id=user.id)
    else:
        audit.record("user.created", user_id=user.id, via=via, is_admin=user.is_admin)
    if on_created is not None:
        on_created(user)


def authenticate(email: str, password: str) -> User | None:
    """The user whose credentials these are, or None; the attempt is audited either way.

    Disabled users never authenticate. The audit row has the attempted email, never the
    password.
    """
    user = find_by_email(email)
    if not passwords.verify_password(user.password_hash if user else None, password):
        _failed(email, user)
        return None
    if user.disabled:
        _failed(email, user)
        return None
    if not user.email_verified and current_app.config["EMAIL_VERIFICATION"] == "required":
        _failed(email, user, reason="email_unverified")
        raise EmailNotVerified(user.email)
    changes = {User.last_sign_in_at: utcnow()}
    if passwords.needs_rehash(user.password_hash):
        changes[User.password_hash] = passwords.hash_password(password)
    with write_transaction():
        User.update(changes).where(User.id == user.id).execute()
        audit.record("login.succeeded", user_id=user.id, method="pwd")
    return User.get_by_id(user.id)


def _failed(email: str, user: User | None, reason: str | None = None) -> None:
    attempted = normalise_email(email)[:320]
    # What was typed is kept only when it is an email address: a password typed into the
    # email field must not end up in the audit log.
    details = {"email": attempted if email_problem(attempted) is None else "(not an email address)"}
    if user is not None and user.disabled:
        details["reason"] = "disabled"
    elif reason:
        details["reason"] = reason
    with write_transaction():
        audit.record("login.failed", user_id=user.id if user else None, **details)
    metrics.SIGN_IN_FAILURES.labels("password").inc()


def set_password(
    user: User, password: str, *, sign_out_everywhere: bool = True, via: str = "cli"
) -> None:
    """Replace the password (``via``: ``settings``, ``reset`` or ``cli``); other sessions end."""
    problem = passwords.password_problem(password)
    if problem:
        raise AccountError(problem)
    user.password_hash = passwords.hash_password(password)
    if sign_out_everywhere:
        user.session_epoch += 1
    with write_transaction():
        user.save()
        if sign_out_everywhere:
            browser_sessions.end_all(user.id, reason="password_changed")
        audit.record("password.changed", user_id=user.id, via=via)


def update_profile(user: User, *, name: str | None, phone: str | None, picture: str | None) -> None:
    """The user's own profile fields (the settings page), audited with the names changed."""
    values = {
        "name": clean_text(name, "Name", 200),
        "phone": clean_text(phone, "Phone", 40),
        "picture": clean_text(picture, "Picture", 2048),
    }
    changed = sorted(field for field, value in values.items() if value != getattr(user, field))
    for field, value in values.items():
        setattr(user, field, value)
    if not changed:
        return
    user.updated_at = utcnow()
    with write_transaction():
        user.save()
        audit.record("profile.updated", user_id=user.id, fields=changed)


def sign_out_other_sessions(user: User, *, keep: str | None = None) -> User:
    """End every browser session of ``user`` but ``keep`` (the caller's own session id)."""
    with write_transaction():
        User.update(session_epoch=User.session_epoch + 1).where(User.id == user.id).execute()
        browser_sessions.end_all(user.id, keep=keep, reason="signed_out_others")
        audit.record("sessions.signed_out_others", user_id=user.id)
    return User.get_by_id(user.id)
