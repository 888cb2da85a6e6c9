"""/api/v1/clients: OAuth clients (the registry's service: oauth/registry/clients.py)."""

from __future__ import annotations

from oauth.api.base import found, listing, page, registry
from oauth.api.framework import precondition
from oauth.api.problems import Problem
from oauth.api.schemas import (
    ClientCreate,
    ClientCreated,
    ClientList,
    ClientOut,
    ClientSecret,
    ClientUpdate,
    PageQuery,
    RotateSecret,
)
from oauth.registry import client_secrets, clients
from oauth.storage.models import Client

READ, WRITE, TAG = "clients:read", "clients:write", "clients"


def represent(client: Client) -> ClientOut:
    return ClientOut(
        client_id=client.client_id,
        name=client.name,
        client_type="public" if client.is_public else "confidential",
        redirect_uris=list(client.redirect_uris or []),
        grant_types=list(client.grant_types or []),
        token_endpoint_auth_method=client.token_endpoint_auth_method,
        registration_type=client.registration_type,
        client_uri=client.client_uri or "",
        logo_uri=client.logo_uri or "",
        require_mfa=bool(client.require_mfa),
        metadata=dict(client.metadata or {}),
        created_at=client.created_at,
        updated_at=client.updated_at,
        last_used_at=client.last_used_at,
        previous_secret_expires_at=client_secrets.grace_ends_at(client),
    )


def _client(client_id: str, *, locked: bool = False) -> Client:
    return found(clients.get_client(client_id, locked=locked), "client")


@registry.operation(
    "GET", "/clients", scope=READ, tag=TAG, summary="List clients (by client_id)",
    query=PageQuery, response=ClientList,
)  # fmt: skip
def list_clients(query: PageQuery) -> ClientList:
    result = page(Client.select(), Client.client_id, query)
    return listing(ClientList, result, represent)


@registry.operation(
    "POST", "/clients", scope=WRITE, tag=TAG, summary="Create a client (its secret, once)",
    body=ClientCreate, response=ClientCreated, status=201, errors=(409,),
)  # fmt: skip
def create_client(body: ClientCreate) -> ClientCreated:
    client, secret = clients.create_client(
        body.name,
        body.redirect_uris,
        public=body.public,
        grant_types=body.grant_types,
        token_endpoint_auth_method=body.token_endpoint_auth_method,
        client_uri=body.client_uri,
        logo_uri=body.logo_uri,
        metadata=body.metadata,
        require_mfa=body.require_mfa,
    )
    return ClientCreated(**represent(client).model_dump(), client_secret=secret)


@registry.operation(
    "GET", "/clients/<client_id>", scope=READ, tag=TAG, summary="Read a client",
    response=ClientOut, etag=True, errors=(404,),
)  # fmt: skip
def get_client(client_id: str) -> ClientOut:
    return represent(_client(client_id))


@registry.operation(
    "PATCH", "/clients/<client_id>", scope=WRITE, tag=TAG, summary="Change a client",
    body=ClientUpdate, response=ClientOut, etag=True, errors=(404, 412),
)  # fmt: skip
def update_client(client_id: str, body: ClientUpdate) -> ClientOut:
    client = _client(client_id, locked=True)
    precondition(represent(client))
    fields = {k: getattr(body, k) for k in body.model_fields_set if getattr(body, k) is not None}
    clients.update_client(client, **fields)
    return represent(client)


@registry.operation(
    "DELETE", "/clients/<client_id>", scope=WRITE, tag=TAG,
    summary="Delete a client and everything it was given", status=204, etag=True,
    errors=(404, 412, 409),
)  # fmt: skip
def delete_client(client_id: str) -> None:
    client = _client(client_id, locked=True)
    precondition(represent(client))
    clients.delete_client(client)


@registry.operation(
    "POST", "/clients/<client_id>/rotate-secret", scope=WRITE, tag=TAG,
    summary="Give a confidential client a new secret (shown once)",
    description="grace_seconds > 0 keeps the old secret valid that long.",
    body=RotateSecret, response=ClientSecret, errors=(404, 409),
)  # fmt: skip
def rotate_secret(client_id: str, body: RotateSecret) -> ClientSecret:
    client = _client(client_id)
    if client.is_public:
        raise Problem(409, "A public client has no secret.")
    secret = clients.rotate_secret(client, grace_seconds=body.grace_seconds)
    return ClientSecret(
        client_id=client.client_id, client_secret=secret, grace_seconds=body.grace_seconds
    )
