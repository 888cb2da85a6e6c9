"""RFC 7591 dynamic client registration and RFC 7592 client configuration, as services.

The views in ``web/protocol.py`` only parse the JSON body and shape the answer; what may be
registered, and by whom it may be read, changed or deleted, is decided here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import peewee
from flask import current_app

from oauth import audit
from oauth.registry import clients, logout_settings
from oauth.registry.clients import ClientError
from oauth.security import matches_hash, random_token, sha256_hex
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import Client, utcnow

DEFAULT_CLIENT_NAME = "Unnamed app"
DEFAULT_AUTH_METHOD = "client_secret_basic"  # RFC 7591 §2
# client_credentials is refused: machine access needs a client grant made by an admin.
SELF_SERVICE_GRANT_TYPES = ("authorization_code", "refresh_token")
# Metadata we keep (in Client.metadata) and echo back; only the ID token alg is acted on.
EXTRA_FIELDS = (
    "scope", "contacts", "software_id", "software_version", "id_token_signed_response_alg",
)  # fmt: skip
MAX_EXTRA_LENGTH = 2000
MAX_CONTACTS = 10
REGISTRATION_TOKEN_BYTES = 32  # 256 bits
_NO_HASH = "0" * 64


def enabled() -> bool:
    return bool(current_app.config["ALLOW_DYNAMIC_REGISTRATION"])


def _plain_string(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_EXTRA_LENGTH:
        raise ClientError(f"{field} must be a string of at most {MAX_EXTRA_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ClientError(f"{field} contains control characters")
    return value


def _extra_metadata(body: dict) -> dict:
    extras: dict[str, Any] = {}
    for field in ("scope", "software_id", "software_version", "id_token_signed_response_alg"):
        if body.get(field) is not None:
            extras[field] = _plain_string(body[field], field)
    contacts = body.get("contacts")
    if contacts is not None:
        if not isinstance(contacts, list) or len(contacts) > MAX_CONTACTS:
            raise ClientError(f"contacts must be a list of at most {MAX_CONTACTS} strings")
        extras["contacts"] = [_plain_string(contact, "contacts") for contact in contacts]
    return extras


def _check_grant_and_response_types(body: dict) -> Any:
    """The grant types to register (the defaults when omitted), or ClientError."""
    grant_types = body.get("grant_types")
    if grant_types is None:
        grant_types = list(clients.DEFAULT_GRANT_TYPES)
    if isinstance(grant_types, list):
        for grant_type in grant_types:
            if not isinstance(grant_type, str) or grant_type not in SELF_SERVICE_GRANT_TYPES:
                raise ClientError(
                    f"grant type {grant_type!r} cannot be registered here "
                    f"(allowed: {', '.join(SELF_SERVICE_GRANT_TYPES)})"
                )
    response_types = body.get("response_types")
    if response_types is not None and (
        not isinstance(response_types, list)
        or not all(isinstance(value, str) for value in response_types)  # [[]] was a 500
        or set(response_types) != {"code"}
    ):
        raise ClientError('response_types must be ["code"]')
    return grant_types


def client_fields(body: dict, *, default_method: str = DEFAULT_AUTH_METHOD) -> dict[str, Any]:
    """RFC 7591 metadata -> keyword arguments of ``clients.create_client``/``update_client``."""
    grant_types = _check_grant_and_response_types(body)
    method = body.get("token_endpoint_auth_method")
    name = body.get("client_name")
    return {
        "name": DEFAULT_CLIENT_NAME if name is None or name == "" else name,
        "redirect_uris": body.get("redirect_uris") or [],
        "grant_types": grant_types,
        "token_endpoint_auth_method": default_method if method is None else method,
        "client_uri": body.get("client_uri") or "",
        "logo_uri": body.get("logo_uri") or "",
        "metadata": {**_extra_metadata(body), **logout_settings.from_registration(body)},
    }


def client_document(client: Client, *, secret: str | None = None, token: str | None = None):
    """The RFC 7591 §3.2.1 client information response."""
    info = clients.client_info(client, secret)
    for field in EXTRA_FIELDS:
        if field in (client.metadata or {}):
            info[field] = client.metadata[field]
    info["registration_client_uri"] = (
        f"{current_app.config['ISSUER']}/oauth/register/{client.client_id}"
    )
    if token is not None:
        info["registration_access_token"] = token
    return info


def register(body: dict) -> dict:
    """Register a client from its metadata; the answer holds its credentials, shown once."""
    token = random_token(REGISTRATION_TOKEN_BYTES)
    fields = client_fields(body)
    public = fields["token_endpoint_auth_method"] == "none"
    with write_transaction():
        client, secret = clients.create_client(
            fields.pop("name"), public=public, registration_type="dynamic", **fields
        )
        Client.update(registration_access_token_hash=sha256_hex(token)).where(
            Client.client_id == client.client_id
        ).execute()
    return client_document(client, secret=secret, token=token)


def authorized_client(client_id: str, token: str | None) -> Client | None:
    """The dynamic client this registration access token manages, else None."""
    client = clients.get_client(client_id)
    stored = None
    if client is not None and client.registration_type == "dynamic":
        stored = client.registration_access_token_hash
    # Compare even without a stored hash, so the answer does not depend on the client existing.
    matches = matches_hash(token or "", stored or _NO_HASH)
    return client if token and stored and matches else None


def update(client: Client, body: dict) -> None:
    """RFC 7592 §2.2: replace a client's metadata (its id, type and secret stay)."""
    if body.get("client_id") != client.client_id:
        raise ClientError("client_id must be the id of the client being updated")
    secret = body.get("client_secret")
    if secret is not None and not (isinstance(secret, str) and client.check_client_secret(secret)):
        raise ClientError("client_secret does not match")
    # An omitted auth method keeps the current one: the type (public/confidential) is fixed.
    fields = client_fields(body, default_method=client.token_endpoint_auth_method)
    replaced = (*EXTRA_FIELDS, *logout_settings.FIELDS)
    kept = {k: v for k, v in (client.metadata or {}).items() if k not in replaced}
    fields["metadata"] = {**kept, **fields["metadata"]}
    with write_transaction():
        clients.update_client(client, **fields)  # audited by the client service


def delete(client: Client) -> None:
    with write_transaction():
        clients.delete_client(client)  # audited by the client service


def unused_clients(unused_days: int) -> list[Client]:
    """Dynamic clients not used (or, never used, not created) for ``unused_days``, locked."""
    cutoff = utcnow() - dt.timedelta(days=unused_days)
    last_seen = peewee.fn.COALESCE(Client.last_used_at, Client.created_at)
    query = (
        Client.select()
        .where((Client.registration_type == "dynamic") & (last_seen < cutoff))
        .order_by(Client.created_at, Client.client_id)
    )
    return list(for_update(query))


def purge_unused(unused_days: int) -> list[Client]:
    """Delete the dynamic clients unused for ``unused_days`` (manual ones never), audited."""
    with write_transaction():
        # Locked by the deleting transaction: no token request marks a client used mid-purge.
        stale = unused_clients(unused_days)
        for client in stale:
            clients.delete_client(client)
            audit.record(
                "client.purged",
                client_id=client.client_id,
                registration_type="dynamic",
                unused_days=unused_days,
            )
    return stale
