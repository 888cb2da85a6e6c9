"""What administrators do to user accounts: search, edit, promote, disable, enable.

Every change is one write transaction with its audit event; ``actor_id`` is the admin.
"""

from __future__ import annotations

import json
from typing import Any

from oauth import audit
from oauth.accounts import browser_sessions, consents, users
from oauth.pagination import Page, paginate
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import OAuthSession, User, utcnow
from oauth.tokens import refresh

PER_PAGE = 25
MAX_METADATA_CHARS = 16_000
MAX_METADATA_DEPTH = 32


class UserAdminError(Exception):
    """A refused change; the message is safe to show."""


def search_users(q: str = "", page: int = 1, per_page: int = PER_PAGE) -> Page:
    """Users whose email or name contains ``q`` (case-insensitive), newest first."""
    query = User.select().order_by(User.created_at.desc(), User.id)
    q = (q or "").strip().replace("\x00", "")[:320]
    if q:
        query = query.where(User.email.contains(q) | User.name.contains(q))
    return paginate(query, page, per_page)


def get_user(user_id: Any, *, locked: bool = False) -> User | None:
    """The user with this id, or None; ``locked``: the row stays locked until the write
    transaction ends (``for_update``)."""
    if not isinstance(user_id, str) or not user_id or len(user_id) > 36 or "\x00" in user_id:
        return None
    query = User.select().where(User.id == user_id)
    return (for_update(query) if locked else query).first()


def parse_metadata(text: str | None, what: str) -> dict:
    """A JSON object from a textarea; UserAdminError names what is wrong."""
    text = (text or "").strip()
    if not text:
        return {}
    if len(text) > MAX_METADATA_CHARS:
        raise UserAdminError(f"{what} is longer than {MAX_METADATA_CHARS} characters.")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except _NotFinite:
        raise UserAdminError(f"{what}: NaN and infinite numbers are not JSON.") from None
    except RecursionError:
        raise UserAdminError(f"{what} is nested too deeply.") from None
    except ValueError as error:
        raise UserAdminError(
            f"{what} is not valid JSON: {error.msg} (line {error.lineno})."
        ) from None
    if not isinstance(value, dict):
        raise UserAdminError(f"{what} must be a JSON object ({{...}}).")
    if _depth(value) > MAX_METADATA_DEPTH:  # deeper fails to encode again: a 500 on save
        raise UserAdminError(f"{what} is nested too deeply (at most {MAX_METADATA_DEPTH}).")
    return value


def check_metadata(value: Any, what: str) -> dict:
    """A metadata object given as JSON data (the management API): the limits of
    ``parse_metadata``, so whatever is accepted can be stored and encoded again."""
    if not isinstance(value, dict):
        raise UserAdminError(f"{what} must be a JSON object ({{...}}).")
    if _depth(value) > MAX_METADATA_DEPTH:
        raise UserAdminError(f"{what} is nested too deeply (at most {MAX_METADATA_DEPTH}).")
    if len(json.dumps(value)) > MAX_METADATA_CHARS:
        raise UserAdminError(f"{what} is longer than {MAX_METADATA_CHARS} characters.")
    return value


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return depth


class _NotFinite(ValueError):
    pass


def _no_constant(name: str):
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotFinite(text)
    return value


def update_user(user: User, *, actor_id: str | None, **fields: Any) -> list[str]:
    """Change name, phone, app_metadata and/or user_metadata; returns the changed field names."""
    allowed = {"name", "phone", "app_metadata", "user_metadata"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"update_user() got unexpected fields: {', '.join(sorted(unknown))}")
    for name, limit in (("name", 200), ("phone", 40)):
        if name in fields:
            try:
                fields[name] = users.clean_text(fields[name], name.capitalize(), limit)
            except users.AccountError as error:
                raise UserAdminError(str(error)) from None
    changed = [name for name, value in fields.items() if getattr(user, name) != value]
    if not changed:
        return []
    with write_transaction():
        User.update(
            {getattr(User, k): fields[k] for k in changed} | {User.updated_at: utcnow()}
        ).where(User.id == user.id).execute()
        audit.record("user.updated", user_id=user.id, actor=actor_id, fields=sorted(changed))
    for name in changed:
        setattr(user, name, fields[name])
    return changed


def set_admin(user: User, is_admin: bool, *, actor_id: str | None) -> None:
    """Grant or withdraw admin rights. An admin cannot demote themselves (no lock-out)."""
    if not is_admin and user.id == actor_id:
        raise UserAdminError("You cannot remove your own admin rights.")
    if user.is_admin == is_admin:
        return
    with write_transaction():
        User.update(is_admin=is_admin, updated_at=utcnow()).where(User.id == user.id).execute()
        audit.record(
            "user.admin_granted" if is_admin else "user.admin_revoked",
            user_id=user.id,
            actor=actor_id,
        )
    user.is_admin = is_admin


def disable_user(user: User, *, actor_id: str | None) -> int:
    """Disable an account: it cannot sign in, its browser sessions end (the epoch moves) and
    every OAuth session it has is revoked. Returns how many OAuth sessions were revoked."""
    if user.id == actor_id:
        raise UserAdminError("You cannot disable your own account.")
    with write_transaction():
        User.update(disabled=True, session_epoch=User.session_epoch + 1, updated_at=utcnow()).where(
            User.id == user.id
        ).execute()
        browser_sessions.end_all(user.id, reason="user_disabled")
        sessions = list(
            for_update(
                OAuthSession.select().where(
                    (OAuthSession.user == user.id) & OAuthSession.revoked_at.is_null()
                )
            )
        )
        for session in sessions:
            refresh.revoke_session(session, "user_disabled")
        audit.record(
            "user.disabled", user_id=user.id, actor=actor_id, sessions_revoked=len(sessions)
        )
    fresh = User.get_by_id(user.id)
    user.disabled, user.session_epoch = fresh.disabled, fresh.session_epoch
    return len(sessions)


def enable_user(user: User, *, actor_id: str | None) -> None:
    """Let a disabled account sign in again (its revoked sessions stay revoked)."""
    if not user.disabled:
        return
    with write_transaction():
        User.update(disabled=False, updated_at=utcnow()).where(User.id == user.id).execute()
        audit.record("user.enabled", user_id=user.id, actor=actor_id)
    user.disabled = False


def user_summary(user: User) -> dict[str, int]:
    """Counts shown on the user's admin page."""
    return {
        "apps": consents.count(user),
        "active_sessions": OAuthSession.select()
        .where((OAuthSession.user == user.id) & OAuthSession.revoked_at.is_null())
        .count(),
    }
