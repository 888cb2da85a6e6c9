"""The client registry: create, validate, look up, rotate secrets, delete OAuth clients."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from oauth import audit
from oauth.redirect_uris import LOOPBACK_HOSTS, redirect_uri_problem
from oauth.registry.cache import cached, invalidates
from oauth.security import lookup_key, random_token, sha256_hex
from oauth.storage.db import write_transaction
from oauth.storage.models import Client, utcnow

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
REGISTRATION_TYPES = ("manual", "dynamic")
MAX_NAME_LENGTH = 200
MAX_REDIRECT_URIS = 20
MAX_URI_LENGTH = 2048
SECRET_BYTES = 32  # 256 bits
ID_TOKEN_ALGS = ("ES256", "RS256")  # tokens/jose.py SUPPORTED_ALGS (a test keeps them equal)
UPDATABLE_FIELDS = frozenset(
    {"name", "redirect_uris", "grant_types", "client_uri", "logo_uri", "metadata",
     "token_endpoint_auth_method"}
)  # fmt: skip


class ClientError(Exception):
    """Refused client metadata. ``error`` is the RFC 7591 error code, ``message`` is safe to show."""

    def __init__(self, message: str, error: str = "invalid_client_metadata") -> None:
        super().__init__(message)
        self.message = message
        self.error = error

    def __str__(self) -> str:
        return self.message


def _metadata_error(message: str) -> ClientError:
    return ClientError(message, "invalid_client_metadata")


def _redirect_error(message: str) -> ClientError:
    return ClientError(message, "invalid_redirect_uri")


# --- validation --------------------------------------------------------------------------


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise _metadata_error("client name is required")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise _metadata_error(f"client name is longer than {MAX_NAME_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise _metadata_error("client name contains control characters")
    return name


def _string_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    # A bare string is iterable too: refuse it rather than registering its characters.
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise ClientError(f"{what} must be a list of strings", _error_code_for(what))
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise ClientError(f"{what} must be a list of strings", _error_code_for(what))
    return list(dict.fromkeys(items))  # de-duplicated, order kept


def _error_code_for(what: str) -> str:
    return "invalid_redirect_uri" if what == "redirect_uris" else "invalid_client_metadata"


def _clean_redirect_uris(uris: Any) -> list[str]:
    uris = _string_list(uris, "redirect_uris")
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise _redirect_error(problem)
    if len(uris) > MAX_REDIRECT_URIS:
        raise _redirect_error(f"at most {MAX_REDIRECT_URIS} redirect URIs may be registered")
    return uris


def _clean_grant_types(grant_types: Any) -> list[str]:
    grant_types = _string_list(grant_types, "grant_types")
    if not grant_types:
        raise _metadata_error("at least one grant type is required")
    for grant_type in grant_types:
        if grant_type not in GRANT_TYPES:
            raise _metadata_error(
                f"unsupported grant type {grant_type!r} (supported: {', '.join(GRANT_TYPES)})"
            )
    return grant_types


def _clean_auth_method(method: Any) -> str:
    if method not in AUTH_METHODS:
        raise _metadata_error(
            f"unsupported token_endpoint_auth_method {method!r} "
            f"(supported: {', '.join(AUTH_METHODS)})"
        )
    return method


def _clean_web_uri(value: Any, field: str) -> str:
    """``client_uri``/``logo_uri``: empty, or an absolute https URL (http only on loopback)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise _metadata_error(f"{field} must be a string")
    if len(value) > MAX_URI_LENGTH:
        raise _metadata_error(f"{field} is longer than {MAX_URI_LENGTH} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        raise _metadata_error(f"{field} contains spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises ValueError for a malformed port
    except ValueError:
        raise _metadata_error(f"{field} {value!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise _metadata_error(f"{field} {value!r} must be an absolute https URL")
    if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise _metadata_error(f"{field} {value!r} must use https (http only for loopback)")
    if "#" in value:
        raise _metadata_error(f"{field} {value!r} must not contain a fragment")
    if "*" in parts.netloc:
        raise _metadata_error(f"{field} {value!r} must not contain wildcards")
    return value


def _clean_metadata(metadata: Any, public: bool = False) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise _metadata_error("metadata must be a JSON object")
    alg = metadata.get("id_token_signed_response_alg")
    if alg is not None and alg not in ID_TOKEN_ALGS:
        raise _metadata_error(
            f"unsupported id_token_signed_response_alg {alg!r} (use {' or '.join(ID_TOKEN_ALGS)})"
        )
    if metadata.get("require_pkce", True) is not True and (
        metadata["require_pkce"] is not False or public
    ):
        raise _metadata_error("require_pkce=false is only for confidential clients")
    try:
        # Round-trip so what is stored is exactly what will be read back (and not aliased).
        return json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError):
        raise _metadata_error("metadata must be JSON-serialisable") from None


def pkce_optional(client: Client) -> bool:
    """A confidential client registered (by an admin) with ``require_pkce=false``."""
    return not client.is_public and (client.metadata or {}).get("require_pkce") is False


def _check_combination(redirect_uris: list[str], grant_types: list[str], method: str) -> None:
    if "authorization_code" in grant_types and not redirect_uris:
        raise _redirect_error("the authorization_code grant needs at least one redirect URI")
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise _metadata_error("the refresh_token grant needs the authorization_code grant")
    if method == "none" and "client_credentials" in grant_types:
        raise _metadata_error("a public client cannot use the client_credentials grant")


def _auth_method_for(public: bool, requested: str | None) -> str:
    if requested is None:
        requested = "none" if public else "client_secret_basic"
    method = _clean_auth_method(requested)
    if public and method != "none":
        raise _metadata_error(f"a public client cannot use {method}; use 'none'")
    if not public and method == "none":
        raise _metadata_error("a confidential client needs a secret-based auth method")
    return method


# --- the service -------------------------------------------------------------------------


def create_client(
    name: str,
    redirect_uris: Iterable[str] = (),
    *,
    public: bool = False,
    grant_types: Iterable[str] | None = None,
    token_endpoint_auth_method: str | None = None,
    client_uri: str = "",
    logo_uri: str = "",
    registration_type: str = "manual",
    metadata: dict | None = None,
    actor_id: str | None = None,
) -> tuple[Client, str | None]:
    """Register a client. Returns it with its plaintext secret (None for a public client).

    The secret is shown once: only its SHA-256 is stored. Nothing is written on ClientError.
    ``actor_id`` (the admin user doing it, if any) goes into the audit event.
    """
    name = _clean_name(name)
    redirect_uris = _clean_redirect_uris(redirect_uris)
    grant_types = _clean_grant_types(DEFAULT_GRANT_TYPES if grant_types is None else grant_types)
    method = _auth_method_for(public, token_endpoint_auth_method)
    _check_combination(redirect_uris, grant_types, method)
    client_uri = _clean_web_uri(client_uri, "client_uri")
    logo_uri = _clean_web_uri(logo_uri, "logo_uri")
    metadata = _clean_metadata(metadata, public)
    if registration_type not in REGISTRATION_TYPES:
        raise _metadata_error(f"unknown registration type {registration_type!r}")

    secret = None if public else random_token(SECRET_BYTES)
    now = utcnow()
    client = Client(
        client_id=str(uuid.uuid4()),
        client_secret_hash=sha256_hex(secret) if secret else None,
        name=name,
        client_uri=client_uri,
        logo_uri=logo_uri,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        token_endpoint_auth_method=method,
        registration_type=registration_type,
        metadata=metadata,
        created_at=now,
        updated_at=now,
    )
    with write_transaction():
        client.save(force_insert=True)
        audit.record(
            "client.created",
            user_id=actor_id,
            client_id=client.client_id,
            name=name,
            client_type="public" if public else "confidential",
            registration_type=registration_type,
            redirect_uris=redirect_uris,
            grant_types=grant_types,
        )
    return client, secret


def get_client(client_id: Any) -> Client | None:
    """The client with this id, or None (also for ids no client could have)."""
    if lookup_key(client_id) is None:  # no NUL (PostgreSQL refuses it), sane length
        return None
    return Client.get_or_none(Client.client_id == client_id)


def list_clients() -> list[Client]:
    """Every client, oldest first."""
    return list(Client.select().order_by(Client.created_at, Client.client_id))


@invalidates
def _apply(
    client: Client, changes: dict[str, Any], event: str, actor_id: str | None, **details: Any
) -> None:
    """Write ``changes`` (field name -> value) to the client's row and the instance, and audit
    ``event`` in the same transaction."""
    changes = {**changes, "updated_at": utcnow()}
    with write_transaction():
        updated = (
            Client.update({getattr(Client, k): v for k, v in changes.items()})
            .where(Client.client_id == client.client_id)
            .execute()
        )
        if updated:
            audit.record(event, user_id=actor_id, client_id=client.client_id, **details)
    if not updated:
        raise _metadata_error(f"client {client.client_id} no longer exists")
    for key, value in changes.items():
        setattr(client, key, value)


def rotate_secret(client: Client, *, actor_id: str | None = None) -> str:
    """Give a confidential client a new secret (the old one stops working at once)."""
    if client.is_public:
        raise _metadata_error("public clients have no secret")
    secret = random_token(SECRET_BYTES)
    _apply(client, {"client_secret_hash": sha256_hex(secret)}, "client.secret_rotated", actor_id)
    return secret


def update_client(client: Client, *, actor_id: str | None = None, **fields: Any) -> Client:
    """Change a client's metadata with the same rules as ``create_client``.

    Accepts name, redirect_uris, grant_types, client_uri, logo_uri, metadata and
    token_endpoint_auth_method (a client may not switch between public and confidential).
    """
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"update_client() got unexpected fields: {', '.join(sorted(unknown))}")
    changes = _cleaned_changes(client, fields)
    _check_combination(
        changes.get("redirect_uris", client.redirect_uris),
        changes.get("grant_types", client.grant_types),
        changes.get("token_endpoint_auth_method", client.token_endpoint_auth_method),
    )
    if changes:
        _apply(client, changes, "client.updated", actor_id, fields=sorted(changes))
    return client


def _cleaned_changes(client: Client, fields: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "name" in fields:
        changes["name"] = _clean_name(fields["name"])
    if "redirect_uris" in fields:
        changes["redirect_uris"] = _clean_redirect_uris(fields["redirect_uris"])
    if "grant_types" in fields:
        changes["grant_types"] = _clean_grant_types(fields["grant_types"])
    if "token_endpoint_auth_method" in fields:
        method = _clean_auth_method(fields["token_endpoint_auth_method"])
        if (method == "none") != client.is_public:
            raise _metadata_error("a client cannot switch between public and confidential")
        changes["token_endpoint_auth_method"] = method
    for field in ("client_uri", "logo_uri"):
        if field in fields:
            changes[field] = _clean_web_uri(fields[field], field)
    if "metadata" in fields:
        changes["metadata"] = _clean_metadata(fields["metadata"], client.is_public)
    return changes


@invalidates
def delete_client(client: Client, *, actor_id: str | None = None) -> None:
    """Delete a client and every row that belongs to it (codes, consents, sessions, tokens)."""
    with write_transaction():
        client.delete_instance(recursive=True)
        audit.record(
            "client.deleted", user_id=actor_id, client_id=client.client_id, name=client.name
        )


def touch_last_used(client: Client, *, min_interval: float = 60) -> None:
    """Record that the client was just used.

    Written at most once per ``min_interval`` seconds: busy machine clients would otherwise
    serialise every token request on this one row.
    """
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=min_interval)
    if client.last_used_at is not None and client.last_used_at > cutoff:
        return
    with write_transaction():
        Client.update(last_used_at=now).where(
            (Client.client_id == client.client_id)
            & (Client.last_used_at.is_null() | (Client.last_used_at <= cutoff))
        ).execute()
    client.last_used_at = now


def client_info(client: Client, client_secret: str | None = None) -> dict[str, Any]:
    """RFC 7591-style description of a client; ``client_secret`` only when given (shown once)."""
    info: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": client.name,
        "client_type": "public" if client.is_public else "confidential",
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "registration_type": client.registration_type,
        "client_id_issued_at": int(client.created_at.replace(tzinfo=dt.UTC).timestamp()),
    }
    for field in ("client_uri", "logo_uri"):
        if getattr(client, field):
            info[field] = getattr(client, field)
    alg = (client.metadata or {}).get("id_token_signed_response_alg")
    info["id_token_signed_response_alg"] = alg or "RS256"
    if pkce_optional(client):
        info["require_pkce"] = False
    if client_secret is not None:
        info["client_secret"] = client_secret
        info["client_secret_expires_at"] = 0
    return info


def cached_client(client_id: str) -> Client | None:
    """``get_client`` through the registry cache (the token endpoint's hot path)."""
    if not isinstance(client_id, str):
        return None
    return cached(("client", client_id), lambda: get_client(client_id))
