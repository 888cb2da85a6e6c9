"""/api/v1/apis and /api/v1/client-grants: resource servers and which machine client may
get which of their scopes (oauth/registry/apis.py, client_grants.py)."""

from __future__ import annotations

from oauth.api.base import found, listing, page, registry
from oauth.api.framework import precondition
from oauth.api.problems import Problem
from oauth.api.schemas import (
    ApiCreate,
    ApiList,
    ApiOut,
    ApiUpdate,
    GrantCreate,
    GrantList,
    GrantOut,
    GrantQuery,
    GrantUpdate,
    PageQuery,
    ScopeOut,
)
from oauth.registry import apis, client_grants, clients, management_api
from oauth.storage.db import for_update
from oauth.storage.models import Api, ClientGrant

READ, WRITE, TAG = "apis:read", "apis:write", "apis"


def represent(api: Api) -> ApiOut:
    return ApiOut(
        id=api.id,
        identifier=api.identifier,
        name=api.name,
        scopes=[ScopeOut(**scope) for scope in api.scopes or []],
        token_ttl=api.token_ttl,
        builtin=management_api.is_management_api(api),
        created_at=api.created_at,
        updated_at=api.updated_at,
    )


def _api(api_id: int, *, locked: bool = False) -> Api:
    return found(apis.get_api_by_id(api_id, locked=locked), "API")


@registry.operation(
    "GET", "/apis", scope=READ, tag=TAG, summary="List APIs (resource servers)",
    query=PageQuery, response=ApiList,
)  # fmt: skip
def list_apis(query: PageQuery) -> ApiList:
    return listing(ApiList, page(Api.select(), Api.id, query), represent)


@registry.operation(
    "POST", "/apis", scope=WRITE, tag=TAG, summary="Register an API",
    body=ApiCreate, response=ApiOut, status=201, etag=True, errors=(409,),
)  # fmt: skip
def create_api(body: ApiCreate) -> ApiOut:
    scopes = [scope.model_dump() for scope in body.scopes]
    api = apis.create_api(body.identifier, body.name, scopes, token_ttl=body.token_ttl)
    return represent(api)


@registry.operation(
    "GET", "/apis/<int:api_id>", scope=READ, tag=TAG, summary="Read an API",
    response=ApiOut, etag=True, errors=(404,),
)  # fmt: skip
def get_api(api_id: int) -> ApiOut:
    return represent(_api(api_id))


@registry.operation(
    "PATCH", "/apis/<int:api_id>", scope=WRITE, tag=TAG,
    summary="Change an API (scopes it loses leave its client grants too)",
    body=ApiUpdate, response=ApiOut, etag=True, errors=(404, 412),
)  # fmt: skip
def update_api(api_id: int, body: ApiUpdate) -> ApiOut:
    api = _api(api_id, locked=True)
    precondition(represent(api))
    scopes = None if body.scopes is None else [scope.model_dump() for scope in body.scopes]
    apis.update_api(api, name=body.name, scopes=scopes, token_ttl=body.token_ttl)
    return represent(api)


@registry.operation(
    "DELETE", "/apis/<int:api_id>", scope=WRITE, tag=TAG,
    summary="Delete an API and its client grants", status=204, etag=True,
    errors=(404, 409, 412),
)  # fmt: skip
def delete_api(api_id: int) -> None:
    api = _api(api_id, locked=True)
    if management_api.is_management_api(api):
        raise Problem(409, "The management API itself cannot be deleted.")
    precondition(represent(api))
    apis.delete_api(api)


# --- client grants -----------------------------------------------------------------------


def represent_grant(grant: ClientGrant) -> GrantOut:
    return GrantOut(
        id=grant.id,
        client_id=grant.client_id,
        api_id=grant.api_id,
        api_identifier=grant.api.identifier,
        scopes=list(grant.scopes or []),
        created_at=grant.created_at,
    )


def _grant(grant_id: int, *, locked: bool = False) -> ClientGrant:
    query = ClientGrant.select(ClientGrant, Api).join(Api).where(ClientGrant.id == grant_id)
    query = for_update(query) if locked else query
    return found(query.first() if grant_id <= apis.MAX_DB_ID else None, "client grant")


@registry.operation(
    "GET", "/client-grants", scope=READ, tag=TAG,
    summary="List client grants (of one client and/or API)",
    query=GrantQuery, response=GrantList,
)  # fmt: skip
def list_client_grants(query: GrantQuery) -> GrantList:
    rows = ClientGrant.select(ClientGrant, Api).join(Api)
    if query.client_id is not None:
        rows = rows.where(ClientGrant.client == query.client_id)
    if query.api_id is not None:
        rows = rows.where(ClientGrant.api == query.api_id)
    return listing(GrantList, page(rows, ClientGrant.id, query), represent_grant)


@registry.operation(
    "POST", "/client-grants", scope=WRITE, tag=TAG,
    summary="Let a machine client get scopes of an API", body=GrantCreate,
    response=GrantOut, status=201, etag=True, errors=(404, 409),
)  # fmt: skip
def create_client_grant(body: GrantCreate) -> GrantOut:
    client = found(clients.get_client(body.client_id), "client")
    api = found(apis.get_api_by_id(body.api_id), "API")
    if client_grants.get_grant(client, api) is not None:
        raise Problem(409, "This client already has a grant for this API: PATCH it.")
    grant = client_grants.grant(client, api, body.scopes)
    return represent_grant(grant)


@registry.operation(
    "GET", "/client-grants/<int:grant_id>", scope=READ, tag=TAG, summary="Read a client grant",
    response=GrantOut, etag=True, errors=(404,),
)  # fmt: skip
def get_client_grant(grant_id: int) -> GrantOut:
    return represent_grant(_grant(grant_id))


@registry.operation(
    "PATCH", "/client-grants/<int:grant_id>", scope=WRITE, tag=TAG,
    summary="Change the scopes of a client grant", body=GrantUpdate, response=GrantOut,
    etag=True, errors=(404, 412),
)  # fmt: skip
def update_client_grant(grant_id: int, body: GrantUpdate) -> GrantOut:
    grant = _grant(grant_id, locked=True)
    precondition(represent_grant(grant))
    updated = client_grants.grant(grant.client, grant.api, body.scopes)
    return represent_grant(updated)


@registry.operation(
    "DELETE", "/client-grants/<int:grant_id>", scope=WRITE, tag=TAG,
    summary="Revoke a client grant (tokens already issued live until they expire)",
    status=204, etag=True, errors=(404, 412),
)  # fmt: skip
def delete_client_grant(grant_id: int) -> None:
    grant = _grant(grant_id, locked=True)
    precondition(represent_grant(grant))
    client_grants.revoke_grant(grant.client, grant.api)
