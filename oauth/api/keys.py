"""/api/v1/keys: signing keys, public parts only (oauth/tokens/keys.py)."""

from __future__ import annotations

from oauth.api.base import found, listing, page, registry
from oauth.api.problems import refused
from oauth.api.schemas import KeyCreate, KeyList, KeyOut, KeyRotate, PageQuery
from oauth.storage.models import SigningKey
from oauth.tokens import keys

READ, WRITE, TAG = "keys:read", "keys:write", "keys"
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def represent(key: SigningKey) -> KeyOut:
    jwk = {k: v for k, v in (key.public_jwk or {}).items() if k not in PRIVATE_MEMBERS}
    return KeyOut(
        kid=key.kid,
        alg=key.alg,
        status=key.state,
        public_jwk=None if key.state == keys.REVOKED else jwk,
        created_at=key.created_at,
        activated_at=key.activated_at,
        retired_at=key.retired_at,
        revoked_at=key.revoked_at,
    )


@registry.operation(
    "GET", "/keys", scope=READ, tag=TAG, summary="List signing keys (public parts)",
    query=PageQuery, response=KeyList,
)  # fmt: skip
def list_keys(query: PageQuery) -> KeyList:
    return listing(KeyList, page(SigningKey.select(), SigningKey.kid, query), represent)


@registry.operation(
    "GET", "/keys/<kid>", scope=READ, tag=TAG, summary="Read a signing key (public part)",
    response=KeyOut, etag=True, errors=(404,),
)  # fmt: skip
def get_key(kid: str) -> KeyOut:
    return represent(found(SigningKey.get_or_none(SigningKey.kid == kid), "signing key"))


@registry.operation(
    "POST", "/keys", scope=WRITE, tag=TAG,
    summary="Add a standby key (published in the JWKS before it signs)",
    body=KeyCreate, response=KeyOut, status=201, etag=True,
)  # fmt: skip
def add_key(body: KeyCreate) -> KeyOut:
    return represent(keys.add_key(body.alg))


@registry.operation(
    "POST", "/keys/rotate", scope=WRITE, tag=TAG,
    summary="Rotate: a standby key (or a new one) signs from now on",
    description="Without a standby key published beforehand, resource servers caching the "
    "JWKS may reject new tokens for up to their cache time.",
    body=KeyRotate, response=KeyOut, etag=True,
)  # fmt: skip
def rotate_keys(body: KeyRotate) -> KeyOut:
    return represent(keys.rotate(body.alg))


@registry.operation(
    "POST", "/keys/<kid>/revoke", scope=WRITE, tag=TAG,
    summary="Revoke a standby or previous key (tokens it signed stop verifying)",
    response=KeyOut, etag=True, errors=(404, 409),
)  # fmt: skip
def revoke_key(kid: str) -> KeyOut:
    key = found(SigningKey.get_or_none(SigningKey.kid == kid), "signing key")
    try:
        return represent(keys.revoke(key.kid))
    except keys.KeyServiceError as error:
        raise refused(error, 409) from None
