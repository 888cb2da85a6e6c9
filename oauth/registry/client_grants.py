"""Client grants: which APIs (and scopes) a confidential client may get tokens for with
client_credentials. Auth0's model: an admin grants, the token endpoint checks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import peewee

from oauth import audit
from oauth.registry.apis import ApiError, locked_api
from oauth.registry.cache import cached, invalidates
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import Api, Client, ClientGrant, utcnow


def _clean_granted_scopes(scopes: Any) -> list[str]:
    if isinstance(scopes, str | bytes | dict) or not isinstance(scopes, Iterable):
        raise ApiError("granted scopes must be a list of strings")
    items = list(scopes)
    if not all(isinstance(item, str) for item in items):
        raise ApiError("granted scopes must be a list of strings")
    return list(dict.fromkeys(items))  # de-duplicated, order kept


def _client_credentials_problem(client: Client) -> str | None:
    if client.is_public:
        return "it is a public client (client_credentials needs a confidential client)"
    if "client_credentials" not in (client.grant_types or []):
        return "client_credentials is not one of its grant types"
    return None


@invalidates
def grant(client: Client, api: Api, scopes: Iterable[str] | None = None) -> ClientGrant:
    """Let ``client`` get ``scopes`` of ``api`` with client_credentials (create or replace).

    ``scopes=None`` grants every scope the API has now. Nothing is written on ApiError.
    """
    requested = None if scopes is None else _clean_granted_scopes(scopes)
    _check_client(client)
    try:
        with write_transaction():
            # The API row is locked first, as update_api does, so a concurrent scope removal
            # cannot slip between this check and the write.
            current_api = locked_api(api)
            current_client = Client.get_or_none(Client.client_id == client.client_id)
            if current_client is None:
                raise ApiError(f"client {client.client_id} no longer exists")
            _check_client(current_client)
            row = _save_grant(current_client, current_api, requested)
    except peewee.IntegrityError:
        # The client was deleted, or the same grant created, by a concurrent writer.
        raise ApiError(
            f"the grant for client {client.client_id} on API {api.identifier} changed "
            "concurrently; try again"
        ) from None
    row.client = current_client
    row.api = current_api
    return row


def _check_client(client: Client) -> None:
    problem = _client_credentials_problem(client)
    if problem:
        raise ApiError(f"client {client.client_id} cannot use client_credentials: {problem}")


def _save_grant(client: Client, api: Api, requested: list[str] | None) -> ClientGrant:
    available = api.scope_values
    granted = available if requested is None else requested
    unknown = [s for s in granted if s not in available]
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise ApiError(f"unknown scope(s) for API {api.identifier}: {names}")
    existing = ClientGrant.get_or_none(
        (ClientGrant.client == client.client_id) & (ClientGrant.api == api.id)
    )
    if existing is None:
        row = ClientGrant(client=client.client_id, api=api.id, scopes=granted, created_at=utcnow())
        row.save(force_insert=True)
    else:
        row = existing
        row.scopes = granted
        row.save(only=[ClientGrant.scopes])
    audit.record(
        "client_grant.created",
        client_id=client.client_id,
        identifier=api.identifier,
        scopes=granted,
        replaced=existing is not None,
    )
    return row


@invalidates
def revoke_grant(client: Client, api: Api) -> bool:
    """Remove the client's grant for the API. False when there was none."""
    with write_transaction():
        existing = for_update(
            ClientGrant.select().where(
                (ClientGrant.client == client.client_id) & (ClientGrant.api == api.id)
            )
        ).first()
        if existing is None:
            return False
        existing.delete_instance()
        audit.record(
            "client_grant.revoked",
            client_id=client.client_id,
            identifier=api.identifier,
            scopes=existing.scopes,
        )
    return True


def get_grant(client: Client, api: Api) -> ClientGrant | None:
    """The client's grant for the API, or None."""
    return ClientGrant.get_or_none(
        (ClientGrant.client == client.client_id) & (ClientGrant.api == api.id)
    )


def list_grants(*, api: Api | None = None, client: Client | None = None) -> list[ClientGrant]:
    """Client grants, oldest first; only those of ``api`` and/or ``client`` when given."""
    query = (
        ClientGrant.select(ClientGrant, Client, Api)
        .join(Client, on=ClientGrant.client == Client.client_id)
        .switch(ClientGrant)
        .join(Api, on=ClientGrant.api == Api.id)
        .order_by(ClientGrant.created_at, ClientGrant.id)
    )
    if api is not None:
        query = query.where(ClientGrant.api == api.id)
    if client is not None:
        query = query.where(ClientGrant.client == client.client_id)
    return list(query)


def cached_grant(client: Client, api: Api) -> ClientGrant | None:
    """``get_grant`` through the registry cache (the token endpoint's hot path)."""
    return cached(("grant", client.client_id, api.id), lambda: get_grant(client, api))
