"""The management API's pydantic models: request models validate (strict types, unknown
fields refused), response models shape every answer; both give the OpenAPI document its
JSON Schemas (openapi.py). Lists are ``{"data": [...], "next_cursor": ...}``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from oauth.pagination import MAX_CURSOR_CHARS


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


# Times are stored as naive UTC; answered as ISO 8601 with "Z".
Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
Text = Annotated[str, Field(max_length=2048)]
JsonObject = dict[str, Any]


# defer_build: a model builds its validator and serializer on first use, not at import: a
# worker that never serves the management API saves about 1.6 MB (issue 13's memory target).
class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", defer_build=True)

    limit: int = Field(50, ge=1, le=100, description="Rows per page (1 to 100).")
    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_CHARS,
        description="The next_cursor of the previous page; none for the first page.",
    )


class ValidationErrorItem(Out):
    loc: list[str | int]
    msg: str
    type: str


class ProblemOut(Out):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ValidationErrorItem] | None = None


# --- clients ---------------------------------------------------------------------------


class ClientCreate(Request):
    name: Annotated[str, Field(max_length=200)]
    redirect_uris: list[Text] = Field(default_factory=list, max_length=50)
    public: bool = False
    grant_types: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=8)
    token_endpoint_auth_method: Annotated[str, Field(max_length=64)] | None = None
    client_uri: Text = ""
    logo_uri: Text = ""
    metadata: JsonObject | None = None
    require_mfa: bool = False


class ClientUpdate(Request):
    """Only the fields given change; null leaves a field as it is."""

    name: Annotated[str, Field(max_length=200)] | None = None
    redirect_uris: list[Text] | None = Field(None, max_length=50)
    grant_types: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=8)
    token_endpoint_auth_method: Annotated[str, Field(max_length=64)] | None = None
    client_uri: Text | None = None
    logo_uri: Text | None = None
    metadata: JsonObject | None = None
    require_mfa: bool | None = None


class RotateSecret(Request):
    grace_seconds: int = Field(
        0, ge=0, le=2_592_000, description="How long the old secret keeps working (seconds)."
    )


class ClientOut(Out):
    client_id: str
    name: str
    client_type: Literal["public", "confidential"]
    redirect_uris: list[str]
    grant_types: list[str]
    token_endpoint_auth_method: str
    registration_type: str
    client_uri: str
    logo_uri: str
    require_mfa: bool
    metadata: JsonObject
    created_at: Timestamp
    updated_at: Timestamp
    last_used_at: Timestamp | None
    previous_secret_expires_at: Timestamp | None = Field(
        description="Until when the secret a rotation replaced still works; null: it does not."
    )


class ClientCreated(ClientOut):
    client_secret: str | None = Field(description="Shown once; null for a public client.")


class ClientSecret(Out):
    client_id: str
    client_secret: str = Field(description="The new secret, shown once.")
    grace_seconds: int


class ClientList(Out):
    data: list[ClientOut]
    next_cursor: str | None


# --- APIs and client grants ------------------------------------------------------------


class ScopeIn(Request):
    value: Annotated[str, Field(min_length=1, max_length=255)]
    description: Annotated[str, Field(max_length=500)] = ""


class ApiCreate(Request):
    identifier: Text
    name: Annotated[str, Field(max_length=200)]
    scopes: list[ScopeIn] = Field(default_factory=list, max_length=100)
    token_ttl: int | None = Field(None, ge=60, le=2_592_000)


class ApiUpdate(Request):
    name: Annotated[str, Field(max_length=200)] | None = None
    scopes: list[ScopeIn] | None = Field(None, max_length=100)
    token_ttl: int | None = Field(None, ge=60, le=2_592_000)


class ScopeOut(Out):
    value: str
    description: str


class ApiOut(Out):
    id: int
    identifier: str
    name: str
    scopes: list[ScopeOut]
    token_ttl: int
    builtin: bool = Field(description="The management API itself (cannot be deleted).")
    created_at: Timestamp
    updated_at: Timestamp


class ApiList(Out):
    data: list[ApiOut]
    next_cursor: str | None


class GrantQuery(PageQuery):
    client_id: Annotated[str, Field(max_length=255)] | None = None
    api_id: int | None = Field(None, ge=1, le=2**31 - 1)


class GrantCreate(Request):
    client_id: Annotated[str, Field(max_length=255)]
    api_id: int = Field(ge=1, le=2**31 - 1)
    scopes: list[Annotated[str, Field(max_length=255)]] | None = Field(
        None, max_length=100, description="null grants every scope the API has."
    )


class GrantUpdate(Request):
    scopes: list[Annotated[str, Field(max_length=255)]] = Field(max_length=100)


class GrantOut(Out):
    id: int
    client_id: str
    api_id: int
    api_identifier: str
    scopes: list[str]
    created_at: Timestamp


class GrantList(Out):
    data: list[GrantOut]
    next_cursor: str | None


# --- users -----------------------------------------------------------------------------


class UserQuery(PageQuery):
    q: Annotated[str, Field(max_length=320)] | None = Field(
        None, description="Part of the email or name (case-insensitive)."
    )


class UserCreate(Request):
    email: Annotated[str, Field(max_length=320)]
    password: Annotated[str, Field(max_length=1024)] | None = Field(
        None, description="null: the account has no password (passkey or reset by mail)."
    )
    name: Annotated[str, Field(max_length=200)] = ""
    phone: Annotated[str, Field(max_length=40)] = ""
    is_admin: bool = False
    email_verified: bool = False
    app_metadata: JsonObject | None = None
    user_metadata: JsonObject | None = None


class UserUpdate(Request):
    """Only the fields given change; null leaves a field as it is."""

    name: Annotated[str, Field(max_length=200)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    app_metadata: JsonObject | None = None
    user_metadata: JsonObject | None = None
    disabled: bool | None = None
    is_admin: bool | None = None


class UserOut(Out):
    id: str
    email: str
    name: str
    phone: str
    is_admin: bool
    email_verified: bool
    disabled: bool
    app_metadata: JsonObject
    user_metadata: JsonObject
    mfa: list[str] = Field(description="The second factors enrolled.")
    created_at: Timestamp
    updated_at: Timestamp
    last_sign_in_at: Timestamp | None


class UserList(Out):
    data: list[UserOut]
    next_cursor: str | None


class MfaReset(Out):
    removed: list[str]


# --- signing keys ----------------------------------------------------------------------

Alg = Literal["ES256", "RS256"]


class KeyCreate(Request):
    alg: Alg | None = Field(None, description="Default: SIGNING_ALG.")


class KeyRotate(Request):
    alg: Alg | None = Field(None, description="Default: every algorithm.")


class KeyOut(Out):
    kid: str
    alg: str
    status: Literal["standby", "current", "previous", "revoked"]
    public_jwk: JsonObject | None = Field(description="Public members only; null once revoked.")
    created_at: Timestamp
    activated_at: Timestamp | None
    retired_at: Timestamp | None
    revoked_at: Timestamp | None


class KeyList(Out):
    data: list[KeyOut]
    next_cursor: str | None


# --- consents and the audit log --------------------------------------------------------


class ConsentQuery(PageQuery):
    user_id: Annotated[str, Field(max_length=36)] | None = None
    client_id: Annotated[str, Field(max_length=255)] | None = None


class ConsentOut(Out):
    id: int
    user_id: str
    client_id: str
    client_name: str
    scopes: list[str]
    resources: list[str]
    created_at: Timestamp
    updated_at: Timestamp
    last_used_at: Timestamp | None


class ConsentList(Out):
    data: list[ConsentOut]
    next_cursor: str | None


Name = Annotated[str, Field(max_length=255, pattern=r"^[A-Za-z0-9.:/@+-]+$")]


class AuditQuery(PageQuery):
    event_type: Annotated[str, Field(max_length=64)] | None = None
    actor: Name | None = Field(None, description="The admin user id or client id who acted.")
    target: Name | None = Field(None, description="The user id or client id acted on.")
    since: dt.datetime | None = Field(None, description="ISO 8601; UTC when no offset.")
    until: dt.datetime | None = Field(None, description="ISO 8601, exclusive.")


class AuditEventOut(Out):
    id: int
    created_at: Timestamp
    event_type: str
    user_id: str | None
    client_id: str | None
    ip: str | None
    details: JsonObject


class AuditList(Out):
    data: list[AuditEventOut]
    next_cursor: str | None
