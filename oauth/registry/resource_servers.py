"""Resource servers: the client an API's own server authenticates as.

An API (``registry/apis.py``) is the ``aud`` of its tokens; a client grant lets a client *get*
tokens for it. Neither says which client *is* the API's server, which RFC 7662 introspection
needs: a resource server may read the tokens meant for it, and nobody else's. So an API names
at most one confidential client as its resource server (``Api.resource_server``), set by an
admin (``flask apis resource-server``).
"""

from __future__ import annotations

from typing import Any

from oauth import audit
from oauth.registry.apis import MAX_IDENTIFIER_LENGTH, ApiError, locked_api
from oauth.registry.cache import invalidates
from oauth.security import lookup_key
from oauth.storage.db import write_transaction
from oauth.storage.models import Api, Client, utcnow

MAX_AUDIENCES = 20  # a token names a handful of audiences; more is not worth a query


@invalidates
def set_resource_server(api: Api, client: Client | None) -> Api:
    """Make ``client`` (confidential) the resource server of ``api``; None unlinks."""
    if client is not None and client.is_public:
        raise ApiError(
            f"client {client.client_id} is public: a resource server must authenticate "
            "(give it a secret)"
        )
    with write_transaction():
        current = locked_api(api)
        if client is not None and Client.get_or_none(Client.client_id == client.client_id) is None:
            raise ApiError(f"client {client.client_id} no longer exists")
        client_id = client.client_id if client is not None else None
        Api.update(resource_server=client_id, updated_at=utcnow()).where(
            Api.id == current.id
        ).execute()
        audit.record("api.updated", identifier=current.identifier, resource_server=client_id)
    api.resource_server = client
    return api


def audiences(aud: Any) -> list[str]:
    """The audiences of a token's ``aud`` claim (a string or a list), usable as lookup keys."""
    values = aud if isinstance(aud, list) else [aud]
    return [
        value
        for value in values[:MAX_AUDIENCES]
        if lookup_key(value, MAX_IDENTIFIER_LENGTH) is not None
    ]


def serves(client: Client, aud: Any) -> bool:
    """Whether ``client`` is the resource server of an API named in ``aud``."""
    names = audiences(aud)
    if not names:
        return False
    return (
        Api.select()
        .where(Api.identifier.in_(names) & (Api.resource_server == client.client_id))
        .exists()
    )
