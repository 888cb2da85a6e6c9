"""APIs (resource servers) and client grants: which client may get which scopes of which API.

Auth0's model: an API's identifier is the ``aud`` of the tokens issued for it, and a
confidential client gets client_credentials tokens for an API only through a client grant.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import peewee
from flask import current_app

from oauth import audit
from oauth.registry.cache import cached, invalidates
from oauth.scopes import is_scope_token
from oauth.security import lookup_key
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import Api, ClientGrant, utcnow

MAX_IDENTIFIER_LENGTH = 2048
MAX_NAME_LENGTH = 200
MAX_SCOPE_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 500
MIN_TOKEN_TTL = 60
MAX_TOKEN_TTL = 2_592_000  # 30 days
MAX_DB_ID = 2**31 - 1  # PostgreSQL serial

# RFC 8141: "urn:" NID ":" NSS
URN = re.compile(r"^urn:[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]:.+$", re.IGNORECASE)


class ApiError(Exception):
    """A refused API or client grant change; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- validation --------------------------------------------------------------------------


def _has_line_breaking_or_control(text: str) -> bool:
    # Cc covers C0, DEL and C1 (with U+0085); Zl/Zp are U+2028/U+2029, which end a line too.
    return any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text)


def _clean_identifier(identifier: Any) -> str:
    if not isinstance(identifier, str) or not identifier:
        raise ApiError("API identifier is required")
    if len(identifier) > MAX_IDENTIFIER_LENGTH:
        raise ApiError(f"API identifier is longer than {MAX_IDENTIFIER_LENGTH} characters")
    if _has_line_breaking_or_control(identifier):
        raise ApiError("API identifier contains control characters")
    if identifier != identifier.strip():
        raise ApiError("API identifier must not start or end with spaces")
    if not identifier.isascii():
        raise ApiError("API identifier must be ASCII (percent-encode other characters)")
    return _clean_uri_identifier(identifier)


def _clean_uri_identifier(identifier: str) -> str:
    if " " in identifier:
        raise ApiError(f"API identifier {identifier!r} must not contain spaces")
    if "#" in identifier:
        raise ApiError(f"API identifier {identifier!r} must not contain a fragment")
    scheme = identifier.split(":", 1)[0].lower() if ":" in identifier else ""
    if scheme in ("http", "https"):
        try:
            parts = urlsplit(identifier)
            parts.port  # noqa: B018  # raises ValueError for a malformed port
        except ValueError:
            raise ApiError(f"API identifier {identifier!r} is not a valid URL") from None
        if not identifier[len(scheme) + 1 :].startswith("//") or not parts.hostname:
            raise ApiError(f"API identifier {identifier!r} must be an absolute URL (scheme://host)")
        return identifier
    if scheme == "urn":
        if not URN.match(identifier):
            raise ApiError(f"API identifier {identifier!r} is not a valid URN (urn:NID:NSS)")
        return identifier
    raise ApiError(
        f"API identifier {identifier!r} must be an absolute URI: https://..., http://... or urn:..."
    )


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApiError("API name is required")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError(f"API name is longer than {MAX_NAME_LENGTH} characters")
    if _has_line_breaking_or_control(name):
        raise ApiError("API name contains control characters")
    return name


def _clean_scope_value(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ApiError("a scope value must be a non-empty string")
    if len(value) > MAX_SCOPE_LENGTH:
        raise ApiError(f"scope value is longer than {MAX_SCOPE_LENGTH} characters")
    if not is_scope_token(value):
        raise ApiError(
            f"scope {value!r} is not a valid scope token "
            "(printable ASCII without spaces, double quotes or backslashes)"
        )
    return value


def _clean_description(description: Any, value: str) -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise ApiError(f"the description of scope {value!r} must be a string")
    description = description.strip()
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ApiError(
            f"the description of scope {value!r} is longer than {MAX_DESCRIPTION_LENGTH} characters"
        )
    if _has_line_breaking_or_control(description):
        raise ApiError(f"the description of scope {value!r} contains control characters")
    return description


def _clean_scope(item: Any) -> dict[str, str]:
    if isinstance(item, str):
        # "value=description": the first "=" separates them ("=" is legal in a scope token,
        # but this form is for people typing scopes, who do not use it).
        value, sep, description = item.partition("=")
        value = value.strip()
        return {
            "value": _clean_scope_value(value),
            "description": _clean_description(description if sep else "", value),
        }
    if isinstance(item, tuple | list):
        if len(item) != 2:
            raise ApiError("a scope given as a pair must be (value, description)")
        value = _clean_scope_value(item[0])
        return {"value": value, "description": _clean_description(item[1], value)}
    if isinstance(item, dict):
        unknown = set(item) - {"value", "description"}
        if unknown:
            raise ApiError(f"unknown scope fields: {', '.join(sorted(map(str, unknown)))}")
        value = _clean_scope_value(item.get("value"))
        return {"value": value, "description": _clean_description(item.get("description"), value)}
    raise ApiError(
        "each scope must be a string, a (value, description) pair or a "
        '{"value", "description"} object'
    )


def _clean_scopes(scopes: Any) -> list[dict[str, str]]:
    if scopes is None:
        return []
    # A bare string is iterable too: refuse it rather than making a scope of each character.
    if isinstance(scopes, str | bytes | dict) or not isinstance(scopes, Iterable):
        raise ApiError("scopes must be a list")
    cleaned = [_clean_scope(item) for item in scopes]
    seen: set[str] = set()
    for scope in cleaned:
        if scope["value"] in seen:
            raise ApiError(f"duplicate scope {scope['value']!r}")
        seen.add(scope["value"])
    return cleaned


def _clean_token_ttl(token_ttl: Any, *, default: bool = False) -> int:
    if (
        not isinstance(token_ttl, int)
        or isinstance(token_ttl, bool)
        or not MIN_TOKEN_TTL <= token_ttl <= MAX_TOKEN_TTL
    ):
        source = " (the default, PORTCULLIS_ACCESS_TOKEN_TTL)" if default else ""
        raise ApiError(
            f"token_ttl{source} must be a whole number of seconds from {MIN_TOKEN_TTL} "
            f"to {MAX_TOKEN_TTL}, got {token_ttl!r}"
        )
    return token_ttl


def locked_api(api: Api) -> Api:
    """The API's current row, locked until the transaction ends; ApiError when it is gone."""
    fresh = for_update(Api.select().where(Api.id == api.id)).first()
    if fresh is None:
        raise ApiError(f"API {api.identifier} no longer exists")
    return fresh


# --- APIs --------------------------------------------------------------------------------


def create_api(
    identifier: str, name: str, scopes: Iterable[Any] = (), *, token_ttl: int | None = None
) -> Api:
    """Register an API. Nothing is written on ApiError."""
    identifier = _clean_identifier(identifier)
    name = _clean_name(name)
    cleaned_scopes = _clean_scopes(scopes)
    if token_ttl is None:
        token_ttl = _clean_token_ttl(current_app.config["ACCESS_TOKEN_TTL"], default=True)
    else:
        token_ttl = _clean_token_ttl(token_ttl)
    now = utcnow()
    api = Api(
        identifier=identifier,
        name=name,
        scopes=cleaned_scopes,
        token_ttl=token_ttl,
        created_at=now,
        updated_at=now,
    )
    duplicate = ApiError(f"an API with identifier {identifier} already exists")
    try:
        with write_transaction():
            if Api.select().where(Api.identifier == identifier).exists():
                raise duplicate
            api.save(force_insert=True)
            audit.record(
                "api.created",
                identifier=identifier,
                name=name,
                scopes=[s["value"] for s in cleaned_scopes],
                token_ttl=token_ttl,
            )
    except peewee.IntegrityError:
        raise duplicate from None  # a concurrent create won the race
    return api


def get_api(identifier: Any) -> Api | None:
    """The API with this identifier, or None (also for identifiers no API could have)."""
    if (
        lookup_key(identifier, MAX_IDENTIFIER_LENGTH) is None
    ):  # no NUL (PostgreSQL refuses it), sane length
        return None
    return Api.get_or_none(Api.identifier == identifier)


def get_api_by_id(api_id: Any, *, locked: bool = False) -> Api | None:
    """The API with this numeric id (an int or a string of digits), or None; ``locked``: its
    row stays locked until the write transaction ends (``for_update``)."""
    if isinstance(api_id, str) and api_id.isascii() and api_id.isdigit():
        api_id = int(api_id)
    if not isinstance(api_id, int) or isinstance(api_id, bool) or not 0 < api_id <= MAX_DB_ID:
        return None
    query = Api.select().where(Api.id == api_id)
    return (for_update(query) if locked else query).first()


def list_apis() -> list[Api]:
    """Every API, oldest first."""
    return list(Api.select().order_by(Api.created_at, Api.id))


@invalidates
def update_api(
    api: Api,
    *,
    name: str | None = None,
    scopes: Iterable[Any] | None = None,
    token_ttl: int | None = None,
) -> Api:
    """Change an API (None leaves a field as it is). The identifier never changes.

    Scopes removed from the API are removed from every client grant of that API too.
    """
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = _clean_name(name)
    if scopes is not None:
        changes["scopes"] = _clean_scopes(scopes)
    if token_ttl is not None:
        changes["token_ttl"] = _clean_token_ttl(token_ttl)
    if not changes:
        return api
    changes["updated_at"] = utcnow()
    with write_transaction():
        current = locked_api(api)
        details: dict[str, Any] = {"identifier": current.identifier}
        if "name" in changes and changes["name"] != current.name:
            details["name"] = changes["name"]
        if "token_ttl" in changes and changes["token_ttl"] != current.token_ttl:
            details["token_ttl"] = changes["token_ttl"]
        if "scopes" in changes:
            details.update(_replace_scopes(current, changes["scopes"]))
        Api.update({getattr(Api, k): v for k, v in changes.items()}).where(
            Api.id == current.id
        ).execute()
        audit.record("api.updated", **details)
    for key, value in changes.items():
        setattr(api, key, value)
    return api


def _replace_scopes(api: Api, scopes: list[dict]) -> dict[str, Any]:
    """Audit details of a scope change; grants lose the scopes the API no longer has."""
    kept = {s["value"] for s in scopes}
    old = api.scope_values
    values = [s["value"] for s in scopes]
    details = {
        "scopes": values,
        "added_scopes": [v for v in values if v not in old],
        "removed_scopes": [v for v in old if v not in kept],
        "trimmed_grants": [],
    }
    if details["removed_scopes"]:
        for grant in for_update(ClientGrant.select().where(ClientGrant.api == api.id)):
            remaining = [s for s in grant.scopes if s in kept]
            if remaining != grant.scopes:
                ClientGrant.update(scopes=remaining).where(ClientGrant.id == grant.id).execute()
                details["trimmed_grants"].append(grant.client_id)
    return details


@invalidates
def delete_api(api: Api) -> None:
    """Delete an API and every client grant for it."""
    with write_transaction():
        current = for_update(Api.select().where(Api.id == api.id)).first()
        if current is None:
            return
        grants = list(ClientGrant.select().where(ClientGrant.api == current.id))
        for grant in grants:
            audit.record(
                "client_grant.revoked",
                client_id=grant.client_id,
                identifier=current.identifier,
                scopes=grant.scopes,
                reason="api_deleted",
            )
        current.delete_instance(recursive=True)
        audit.record(
            "api.deleted",
            identifier=current.identifier,
            name=current.name,
            revoked_grants=[grant.client_id for grant in grants],
        )


def api_info(api: Api, grants: Iterable[ClientGrant] | None = None) -> dict[str, Any]:
    """A JSON-ready description of an API; with ``grants``, its client grants too."""
    info: dict[str, Any] = {
        "id": api.id,
        "identifier": api.identifier,
        "name": api.name,
        "scopes": [dict(scope) for scope in api.scopes or []],
        "token_ttl": api.token_ttl,
        "resource_server": api.resource_server_id,
        "created_at": api.created_at.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z"),
    }
    if grants is not None:
        info["grants"] = [
            {"client_id": grant.client_id, "client_name": grant.client.name, "scopes": grant.scopes}
            for grant in grants
        ]
    return info


# --- client grants -----------------------------------------------------------------------


def cached_api(identifier: str) -> Api | None:
    """``get_api`` through the registry cache (the token endpoint's hot path)."""
    if not isinstance(identifier, str):
        return None
    return cached(("api", identifier), lambda: get_api(identifier))
