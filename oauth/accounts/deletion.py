"""Deleting an account, whoever asks (the user on the settings page, an admin, the CLI).

Plugins hear of it first (``before_user_deleted``, outside any transaction: they may veto or
clean up their own data, even over the network). Then one write transaction deletes the user
row; the database cascades take its browser sessions, consents, OAuth sessions (and so their
refresh tokens), authorization requests, mailed links and second factors with it; its mails
leave the outbox; and the audit log forgets the person (``audit.forget_user``) while keeping
a ``user.deleted`` event.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from oauth import audit
from oauth.accounts import mail
from oauth.accounts.users import AccountError
from oauth.plugins.hookspecs import DeletionDenied
from oauth.plugins.host import PluginError
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import User

VIA = ("settings", "admin", "cli", "api")


def _ask_plugins(user: User, via: str) -> None:
    host = current_app.extensions.get("portcullis.plugins")
    if host is None:
        return
    try:
        host.before_user_deleted(user, via)
    except DeletionDenied as denial:
        raise AccountError(str(denial) or "Deleting this account was refused.") from None
    except PluginError:
        # logged with the plugin's name; its own data may still be there, so keep the account
        raise AccountError(
            "The account could not be deleted because a plugin failed; nothing was deleted."
        ) from None


def delete_account(
    user: User,
    *,
    via: str,
    actor_id: str | None = None,
    check: Callable[[User], None] | None = None,
) -> str:
    """Delete ``user`` and everything that belongs to it; returns the audit pseudonym.

    ``via`` is ``settings``, ``admin``, ``cli`` or ``api`` (the management API, whose calling
    client the audit event names); ``actor_id`` the admin who asked. Raises
    ``AccountError`` (nothing deleted) when a plugin refuses or fails, or the account is gone.
    ``check(current)``, if given, runs on the user's row as the transaction that deletes it
    holds it (the management API's If-Match): what it raises stops the deletion.
    """
    if via not in VIA:
        raise ValueError(f"via must be one of {VIA}, not {via!r}")
    if via == "admin" and actor_id == user.id:
        raise AccountError("You cannot delete your own account here; use Settings › Security.")
    _ask_plugins(user, via)
    with write_transaction():
        current = for_update(User.select().where(User.id == user.id)).first()
        if current is None:
            raise AccountError("This account no longer exists.")
        if check is not None:
            check(current)
        # every row that refers to the user, and theirs in turn (the schema cascades too)
        current.delete_instance(recursive=True)
        mail.forget_recipient(user.id, current.email)  # the outbox has no foreign key
        pseudonym = audit.forget_user(user.id, current.email)
        audit.record(
            "user.deleted",
            user_id=pseudonym,
            # the user's own address is personal data; an admin's stays, like their id
            ip=None if via == "settings" else audit.FROM_REQUEST,
            via=via,
            actor=actor_id,
        )
    return pseudonym
