"""User accounts: creation, lookup, password sign-in."""

from __future__ import annotations

import re

import peewee
from flask import current_app

from oauth.accounts import passwords
from oauth.plugins.hookspecs import SignupDenied
from oauth.plugins.host import PluginError
from oauth.storage.db import write_transaction
from oauth.storage.models import User, utcnow

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$")


class AccountError(Exception):
    """A refused account operation; the message is safe to show to the user."""


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def email_problem(email: str) -> str | None:
    if not email:
        return "Email is required."
    if len(email) > 320 or not EMAIL_PATTERN.match(email):
        return f"{email!r} is not a valid email address."
    return None


def find_by_email(email: str) -> User | None:
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
) -> User:
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
        name=(name or "").strip(),
        phone=(phone or "").strip(),
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
    except peewee.IntegrityError:
        raise AccountError(f"A user with email {email} already exists.") from None
    return user


def authenticate(email: str, password: str) -> User | None:
    """The user whose credentials these are, or None. Disabled users never authenticate."""
    user = find_by_email(email)
    if not passwords.verify_password(user.password_hash if user else None, password):
        return None
    if user.disabled:
        return None
    changes = {User.last_sign_in_at: utcnow()}
    if passwords.needs_rehash(user.password_hash):
        changes[User.password_hash] = passwords.hash_password(password)
    User.update(changes).where(User.id == user.id).execute()
    return User.get_by_id(user.id)


def set_password(user: User, password: str, *, sign_out_everywhere: bool = True) -> None:
    problem = passwords.password_problem(password)
    if problem:
        raise AccountError(problem)
    user.password_hash = passwords.hash_password(password)
    if sign_out_everywhere:
        user.session_epoch += 1
    user.save()


def delete_user(user: User) -> None:
    with write_transaction():
        user.delete_instance(recursive=True)
