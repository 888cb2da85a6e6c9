"""Email verification (``EMAIL_VERIFICATION``: ``optional``, ``required`` or ``off``) and the
change of a user's address, which is confirmed from the new address before it replaces the old.

``email_verified`` (ID tokens, UserInfo, access tokens) becomes true only here: when the
mailed link is confirmed by a POST, or when an admin marks the address verified.
"""

from __future__ import annotations

from dataclasses import dataclass

import peewee
from flask import current_app

from oauth import audit
from oauth.accounts import account_tokens, mail
from oauth.accounts import users as accounts
from oauth.storage.db import write_transaction
from oauth.storage.models import AccountToken, User, utcnow

LINK_PURPOSES = (account_tokens.VERIFY_EMAIL, account_tokens.CHANGE_EMAIL)


class LinkInvalid(Exception):
    """The link was used, expired, replaced by a newer one, or never existed."""


def mode() -> str:
    return current_app.config["EMAIL_VERIFICATION"]


@dataclass
class SignUp:
    user: User | None  # the new account, signed in at once unless verification is required
    existing: User | None = None  # required mode: the address already had this account


def sign_up(email: str, password: str, *, name: str = "", next_path: str | None = None) -> SignUp:
    """Create a self-service account and queue its verification mail in the same transaction.

    With ``required``, an address that already has an account is not an error the visitor
    sees: the caller answers "check your mail" either way and may notify the owner
    (``notify_signup_attempt``). Other refusals (a weak password...) raise AccountError.
    """
    current = mode()

    def queue_verification(user: User) -> None:
        if current != "off":
            keep = next_path if current == "required" else None
            mail.queue("verify_email", user.email, user_id=user.id, next=keep)

    try:
        user = accounts.create_user(
            email, password, name=name, via="signup", on_created=queue_verification
        )
    except accounts.AccountError:
        existing = accounts.find_by_email(email) if current == "required" else None
        if existing is None:
            raise
        return SignUp(user=None, existing=existing)
    return SignUp(user=None if current == "required" else user)


def notify_signup_attempt(user: User) -> None:
    """Tell the owner of an address that someone tried to sign up with it."""
    with write_transaction():
        mail.queue("signup_exists", user.email, user_id=user.id)
        audit.record("signup.existing_address", user_id=user.id)


def resend(email: str) -> None:
    """Queue a new link for ``email``. The same work whatever the address: whether it has an
    unconfirmed account is decided when the mail is sent (nothing is sent otherwise)."""
    with write_transaction():
        mail.queue("verify_email", accounts.normalise_email(email)[:320])


def resend_for(user: User) -> None:
    """Queue a new link for a signed-in user whose address is unconfirmed."""
    if user.email_verified:
        return
    with write_transaction():
        mail.queue("verify_email", user.email, user_id=user.id)


def pending_link(raw) -> AccountToken | None:
    """The verification or email-change token behind ``raw`` while it can still be used."""
    token = account_tokens.find(raw, LINK_PURPOSES)
    if token is None:
        return None
    user = User.get_or_none(User.id == token.user_id)
    if user is None or user.disabled:
        return None
    if token.purpose == account_tokens.VERIFY_EMAIL and user.email != token.email:
        return None
    return token


def confirm(raw) -> tuple[User, AccountToken]:
    """Use the link: verify the address, or switch the account to its new, verified address."""
    token = pending_link(raw)
    if token is None:
        raise LinkInvalid
    try:
        with write_transaction():
            if not account_tokens.claim(token):
                raise LinkInvalid
            user = User.get_by_id(token.user_id)
            if token.purpose == account_tokens.VERIFY_EMAIL:
                _verified(user, via="link")
            else:
                _switch_address(user, token.email)
    except peewee.IntegrityError:
        raise accounts.AccountError(f"{token.email} is already used by another account.") from None
    return User.get_by_id(token.user_id), token


def _verified(user: User, *, via: str, actor_id: str | None = None) -> None:
    User.update(email_verified=True, updated_at=utcnow()).where(User.id == user.id).execute()
    account_tokens.discard(user.id, account_tokens.VERIFY_EMAIL)
    audit.record("email.verified", user_id=user.id, email=user.email, via=via, actor=actor_id)


def _switch_address(user: User, new_email: str) -> None:
    if accounts.find_by_email(new_email) is not None:
        raise accounts.AccountError(f"{new_email} is already used by another account.")
    old_email = user.email
    User.update(email=new_email, email_verified=True, updated_at=utcnow()).where(
        User.id == user.id
    ).execute()
    # Links mailed to the old address die with it.
    account_tokens.discard(
        user.id,
        account_tokens.VERIFY_EMAIL,
        account_tokens.CHANGE_EMAIL,
        account_tokens.PASSWORD_RESET,
    )
    audit.record("email.changed", user_id=user.id, old_email=old_email, new_email=new_email)
    mail.queue("email_changed", old_email, user_id=user.id, new_email=new_email)


def change_problem(user: User, new_email: str) -> str | None:
    """Why ``user`` cannot move to ``new_email``, or None."""
    new_email = accounts.normalise_email(new_email)
    problem = accounts.email_problem(new_email)
    if problem:
        return problem
    if new_email == user.email:
        return "That is already your email address."
    if accounts.find_by_email(new_email) is not None:
        return f"{new_email} is already used by another account."
    return None


def request_change(user: User, new_email: str) -> str:
    """Start changing the address: the new one gets a link; the old stays until it is used.

    With EMAIL_VERIFICATION=off the address changes at once and is unverified.
    """
    problem = change_problem(user, new_email)
    if problem:
        raise accounts.AccountError(problem)
    new_email = accounts.normalise_email(new_email)
    try:
        with write_transaction():
            if mode() == "off":
                User.update(email=new_email, email_verified=False, updated_at=utcnow()).where(
                    User.id == user.id
                ).execute()
                account_tokens.discard(user.id, *account_tokens.PURPOSES)
                audit.record(
                    "email.changed", user_id=user.id, old_email=user.email, new_email=new_email
                )
            else:
                mail.queue("change_email", new_email, user_id=user.id)
                audit.record("email_change.requested", user_id=user.id, new_email=new_email)
    except peewee.IntegrityError:
        raise accounts.AccountError(f"{new_email} is already used by another account.") from None
    return new_email


def mark_verified(user: User, *, actor_id: str | None) -> None:
    """An admin vouches for the address (audited with the admin)."""
    if user.email_verified:
        return
    with write_transaction():
        _verified(user, via="admin", actor_id=actor_id)
    user.email_verified = True
