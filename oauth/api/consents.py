"""/api/v1/consents: what users let applications do (oauth/accounts/consents.py)."""

from __future__ import annotations

from oauth.accounts import consents
from oauth.api.base import found, listing, page, registry
from oauth.api.framework import precondition
from oauth.api.schemas import ConsentList, ConsentOut, ConsentQuery
from oauth.storage.db import for_update
from oauth.storage.models import Client, Consent

READ, WRITE, TAG = "consents:read", "consents:write", "consents"


def represent(consent: Consent) -> ConsentOut:
    return ConsentOut(
        id=consent.id,
        user_id=consent.user_id,
        client_id=consent.client_id,
        client_name=consent.client.name,
        scopes=list(consent.scopes or []),
        resources=consents.resources_of(consent),
        created_at=consent.created_at,
        updated_at=consent.updated_at,
        last_used_at=consent.last_used_at,
    )


def _consent(consent_id: int, *, locked: bool = False) -> Consent:
    query = Consent.select(Consent, Client).join(Client).where(Consent.id == consent_id)
    query = for_update(query) if locked else query
    return found(query.first() if consent_id < 2**31 else None, "consent")


@registry.operation(
    "GET", "/consents", scope=READ, tag=TAG, summary="List consents (of one user and/or client)",
    query=ConsentQuery, response=ConsentList,
)  # fmt: skip
def list_consents(query: ConsentQuery) -> ConsentList:
    rows = Consent.select(Consent, Client).join(Client)
    if query.user_id is not None:
        rows = rows.where(Consent.user == query.user_id)
    if query.client_id is not None:
        rows = rows.where(Consent.client == query.client_id)
    return listing(ConsentList, page(rows, Consent.id, query), represent)


@registry.operation(
    "GET", "/consents/<int:consent_id>", scope=READ, tag=TAG, summary="Read a consent",
    response=ConsentOut, etag=True, errors=(404,),
)  # fmt: skip
def get_consent(consent_id: int) -> ConsentOut:
    return represent(_consent(consent_id))


@registry.operation(
    "DELETE", "/consents/<int:consent_id>", scope=WRITE, tag=TAG,
    summary="Revoke a consent: the application's tokens for the user end too",
    status=204, etag=True, errors=(404, 412),
)  # fmt: skip
def revoke_consent(consent_id: int) -> None:
    consent = _consent(consent_id, locked=True)
    precondition(represent(consent))
    consents.revoke_user_grant(consent.user, consent.client)
