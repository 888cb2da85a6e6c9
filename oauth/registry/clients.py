"""The client registry: create, validate, look up, rotate secrets, delete OAuth clients."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from oauth import audit
from oauth.registry import client_rules as rules
from oauth.registry import client_secrets, logout_settings
from oauth.registry.cache import cached, invalidates
from oauth.registry.client_rules import (  # noqa: F401  # the registry's public names
    AUTH_METHODS,
    DEFAULT_GRANT_TYPES,
    GRANT_TYPES,
    ID_TOKEN_ALGS,
    MAX_CLIENT_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_REDIRECT_URIS,
    MAX_URI_LENGTH,
    REGISTRATION_TYPES,
    ClientError,
)
from oauth.security import lookup_key, random_token, sha256_hex
from oauth.storage import models
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import Client, utcnow

SECRET_BYTES = client_secrets.SECRET_BYTES  # 256 bits
UPDATABLE_FIELDS = frozenset(
    {
        "name",
        "require_mfa",
        "redirect_uris",
        "grant_types",
        "client_uri",
        "logo_uri",
        "metadata",
        "token_endpoint_auth_method",
    }
)


def pkce_optional(client: Client) -> bool:
    """A confidential client registered (by an admin) with ``require_pkce=false``."""
    return not client.is_public and (client.metadata or {}).get("require_pkce") is False


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
    require_mfa: bool = False,
    actor_id: str | None = None,
) -> tuple[Client, str | None]:
    """Register a client. Returns it with its plaintext secret (None for a public client).

    The secret is shown once: only its SHA-256 is stored. Nothing is written on ClientError.
    ``actor_id`` (the admin user doing it, if any) goes into the audit event.
    """
    name = rules.clean_name(name)
    redirect_uris = rules.clean_redirect_uris(redirect_uris)
    grant_types = rules.clean_grant_types(
        DEFAULT_GRANT_TYPES if grant_types is None else grant_types
    )
    method = rules.auth_method_for(public, token_endpoint_auth_method)
    rules.check_combination(redirect_uris, grant_types, method)
    client_uri = rules.clean_web_uri(client_uri, "client_uri")
    logo_uri = rules.clean_web_uri(logo_uri, "logo_uri")
    metadata = rules.clean_metadata(metadata, public)
    if registration_type not in REGISTRATION_TYPES:
        raise rules.metadata_error(f"unknown registration type {registration_type!r}")

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
        require_mfa=bool(require_mfa),  # every sign-in for this client needs a second factor
        created_at=now,
        updated_at=now,
    )
    with write_transaction():
        client.save(force_insert=True)
        _audit_created(client, actor_id)
    return client, secret


def _audit_created(client: Client, actor_id: str | None) -> None:
    audit.record(
        "client.created",
        user_id=actor_id,
        client_id=client.client_id,
        name=client.name,
        client_type="public" if client.is_public else "confidential",
        registration_type=client.registration_type,
        redirect_uris=client.redirect_uris,
        grant_types=client.grant_types,
    )


def get_client(client_id: Any, *, locked: bool = False) -> Client | None:
    """The client with this id, or None (also for ids no client could have); ``locked``:
    its row stays locked until the write transaction ends (``for_update``)."""
    if (
        lookup_key(client_id, MAX_CLIENT_ID_LENGTH) is None
    ):  # no NUL (PostgreSQL refuses it), sane length
        return None
    query = Client.select().where(Client.client_id == client_id)
    return (for_update(query) if locked else query).first()


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
        raise rules.metadata_error(f"client {client.client_id} no longer exists")
    for key, value in changes.items():
        setattr(client, key, value)


def rotate_secret(client: Client, *, actor_id: str | None = None, grace_seconds: int = 0) -> str:
    """Give a confidential client a new secret (returned, shown once). The old one keeps
    working for ``grace_seconds`` (an int, 0 to 30 days; default 0: it stops at once); a
    second rotation replaces the previous one. ClientError for a public client or a bad grace."""
    return client_secrets.rotate(client, grace_seconds=grace_seconds, actor_id=actor_id)


def update_client(client: Client, *, actor_id: str | None = None, **fields: Any) -> Client:
    """Change a client's metadata with the same rules as ``create_client``.

    Accepts name, redirect_uris, grant_types, client_uri, logo_uri, metadata and
    token_endpoint_auth_method (a client may not switch between public and confidential).
    """
    unknown = set(fields) - UPDATABLE_FIELDS
    if unknown:
        raise TypeError(f"update_client() got unexpected fields: {', '.join(sorted(unknown))}")
    changes = _cleaned_changes(client, fields)
    rules.check_combination(
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
        changes["name"] = rules.clean_name(fields["name"])
    if "redirect_uris" in fields:
        changes["redirect_uris"] = rules.clean_redirect_uris(fields["redirect_uris"])
    if "grant_types" in fields:
        changes["grant_types"] = rules.clean_grant_types(fields["grant_types"])
    if "token_endpoint_auth_method" in fields:
        method = rules.clean_auth_method(fields["token_endpoint_auth_method"])
        if (method == "none") != client.is_public:
            raise rules.metadata_error("a client cannot switch between public and confidential")
        changes["token_endpoint_auth_method"] = method
    for field in ("client_uri", "logo_uri"):
        if field in fields:
            changes[field] = rules.clean_web_uri(fields[field], field)
    if "metadata" in fields:
        changes["metadata"] = rules.clean_metadata(fields["metadata"], client.is_public)
    if "require_mfa" in fields:
        changes["require_mfa"] = bool(fields["require_mfa"])
    return changes


@invalidates
def delete_client(client: Client, *, actor_id: str | None = None) -> None:
    """Delete a client and every row that belongs to it (codes, consents, sessions, tokens)."""
    with write_transaction():
        client.delete_instance(recursive=True)
        audit.record(
            "client.deleted", user_id=actor_id, client_id=client.client_id, name=client.name
        )


def touch_last_used(client: Client) -> None:
    """Record that the client was just used.

    Written at most once per ``LAST_USED_EVERY`` seconds: busy machine clients would
    otherwise serialise every token request on this one row.
    """
    if not touch_due(client):
        return
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=models.LAST_USED_EVERY)
    with write_transaction():
        Client.update(last_used_at=now).where(
            (Client.client_id == client.client_id)
            & (Client.last_used_at.is_null() | (Client.last_used_at <= cutoff))
        ).execute()
    client.last_used_at = now


def touch_due(client: Client) -> bool:
    """Whether ``touch_last_used`` would write."""
    cutoff = utcnow() - dt.timedelta(seconds=models.LAST_USED_EVERY)
    return client.last_used_at is None or client.last_used_at <= cutoff


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
    for field in ("client_uri", "logo_uri", "require_mfa"):
        if getattr(client, field):
            info[field] = getattr(client, field)
    info.update(logout_settings.describe(client))
    alg = (client.metadata or {}).get("id_token_signed_response_alg")
    info["id_token_signed_response_alg"] = alg or "RS256"
    if pkce_optional(client):
        info["require_pkce"] = False
    info["previous_secret_expires_at"] = client_secrets.previous_secret_expires_at(client)
    if client_secret is not None:
        info["client_secret"] = client_secret
        info["client_secret_expires_at"] = 0
    return info


def cached_client(client_id: str) -> Client | None:
    """``get_client`` through the registry cache (the token endpoint's hot path)."""
    if not isinstance(client_id, str):
        return None
    return cached(("client", client_id), lambda: get_client(client_id))


# The same rules for clients described by a metadata document (metadata_documents.py).
