"""/api/v1/users: accounts (oauth/accounts/users.py, admin.py, mfa.py, deletion.py)."""

from __future__ import annotations

from oauth.accounts import admin, deletion, mfa, users
from oauth.api.base import found, listing, page, registry
from oauth.api.framework import precondition
from oauth.api.problems import refused
from oauth.api.schemas import MfaReset, UserCreate, UserList, UserOut, UserQuery, UserUpdate
from oauth.storage.models import User

READ, WRITE, TAG = "users:read", "users:write", "users"
VIA = "api"
PROFILE_FIELDS = ("name", "phone", "app_metadata", "user_metadata")


def represent(user: User, factors: list[str] | None = None) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name or "",
        phone=user.phone or "",
        is_admin=bool(user.is_admin),
        email_verified=bool(user.email_verified),
        disabled=bool(user.disabled),
        app_metadata=dict(user.app_metadata or {}),
        user_metadata=dict(user.user_metadata or {}),
        mfa=mfa.factors(user) if factors is None else factors,
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_sign_in_at=user.last_sign_in_at,
    )


def _user(user_id: str, *, locked: bool = False) -> User:
    return found(admin.get_user(user_id, locked=locked), "user")


def _metadata(value, what: str) -> dict | None:
    return None if value is None else admin.check_metadata(value, what)


@registry.operation(
    "GET", "/users", scope=READ, tag=TAG, summary="List or search users (by id)",
    query=UserQuery, response=UserList,
)  # fmt: skip
def list_users(query: UserQuery) -> UserList:
    rows = User.select()
    q = (query.q or "").strip()
    if q:
        rows = rows.where(User.email.contains(q) | User.name.contains(q))
    result = page(rows, User.id, query)
    factors = mfa.factors_by_user([user.id for user in result.items])
    return listing(UserList, result, lambda user: represent(user, factors[user.id]))


@registry.operation(
    "POST", "/users", scope=WRITE, tag=TAG, summary="Create a user",
    body=UserCreate, response=UserOut, status=201, etag=True, errors=(409,),
)  # fmt: skip
def create_user(body: UserCreate) -> UserOut:
    app_metadata = _metadata(body.app_metadata, "app_metadata")
    user_metadata = _metadata(body.user_metadata, "user_metadata")
    user = users.create_user(
        body.email,
        body.password,
        name=body.name,
        phone=body.phone,
        is_admin=body.is_admin,
        email_verified=body.email_verified,
        app_metadata=app_metadata,
        user_metadata=user_metadata,
        via=VIA,
    )
    return represent(user)


@registry.operation(
    "GET", "/users/<user_id>", scope=READ, tag=TAG, summary="Read a user",
    response=UserOut, etag=True, errors=(404,),
)  # fmt: skip
def get_user(user_id: str) -> UserOut:
    return represent(_user(user_id))


@registry.operation(
    "PATCH", "/users/<user_id>", scope=WRITE, tag=TAG,
    summary="Change a user; disabled: true signs them out everywhere",
    body=UserUpdate, response=UserOut, etag=True, errors=(404, 412),
)  # fmt: skip
def update_user(user_id: str, body: UserUpdate) -> UserOut:
    user = _user(user_id, locked=True)
    precondition(represent(user))
    given = {k: getattr(body, k) for k in body.model_fields_set if getattr(body, k) is not None}
    for field in ("app_metadata", "user_metadata"):
        if field in given:
            given[field] = _metadata(given[field], field)
    profile = {k: v for k, v in given.items() if k in PROFILE_FIELDS}
    if profile:
        admin.update_user(user, actor_id=None, **profile)
    if "is_admin" in given:
        admin.set_admin(user, given["is_admin"], actor_id=None)
    if given.get("disabled") is True and not user.disabled:
        admin.disable_user(user, actor_id=None)
    elif given.get("disabled") is False:
        admin.enable_user(user, actor_id=None)
    return represent(user)


@registry.operation(
    "POST", "/users/<user_id>/reset-mfa", scope=WRITE, tag=TAG,
    summary="Remove every second factor (TOTP, recovery codes, passkeys)",
    response=MfaReset, errors=(404,),
)  # fmt: skip
def reset_mfa(user_id: str) -> MfaReset:
    return MfaReset(removed=mfa.reset(_user(user_id), actor_id=None, via=VIA))


@registry.operation(
    "DELETE", "/users/<user_id>", scope=WRITE, tag=TAG,
    summary="Delete a user and everything that belongs to them", status=204, etag=True,
    errors=(404, 409, 412), atomic=False,
)  # fmt: skip
def delete_user(user_id: str) -> None:
    user = _user(user_id)
    precondition(represent(user))  # before the plugins are asked; again where it is deleted
    try:
        deletion.delete_account(
            user, via=VIA, check=lambda current: precondition(represent(current))
        )
    except users.AccountError as error:
        raise refused(error, 409) from None
