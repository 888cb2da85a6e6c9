"""Who calls the management API: a machine client with a client-credentials access token
issued by this server for the built-in API ``{ISSUER}/api/v1`` (RFC 6750 bearer, RFC 9068
JWT). Cookies are never looked at: a browser session alone gets 401."""

from __future__ import annotations

from dataclasses import dataclass

from oauth import audit
from oauth.api.problems import Problem
from oauth.protocol.responses import bearer_challenge, bearer_token
from oauth.registry import clients, management_api
from oauth.storage.models import Client
from oauth.tokens.jose import InvalidTokenError
from oauth.tokens.verify import verify_access_token


@dataclass(frozen=True)
class Caller:
    client: Client
    scopes: frozenset[str]


def _invalid(description: str) -> Problem:
    # RFC 6750 §3: the challenge says why; the problem detail says the same.
    challenge = bearer_challenge("invalid_token", description)
    return Problem(401, description, headers={"WWW-Authenticate": challenge})


def authenticate() -> Caller:
    """The calling client, from a live token for this API; 401 ``invalid_token`` otherwise.
    From here on every audit event names the client as its actor."""
    token = bearer_token(form=False)
    if token is None:
        raise _invalid("A bearer access token is required (Authorization: Bearer ...).")
    try:
        verified = verify_access_token(token)
    except InvalidTokenError:
        raise _invalid("The access token is invalid, expired or revoked.") from None
    claims = verified.claims
    if claims.get("aud") != management_api.identifier():
        raise _invalid(f"The access token is not for {management_api.identifier()}.")
    if claims.get("gty") != "client-credentials" or verified.session is not None:
        raise _invalid("The access token must come from the client_credentials grant.")
    client_id = claims.get("client_id")
    client = clients.get_client(client_id) if claims.get("sub") == client_id else None
    if client is None:
        raise _invalid("The client of this access token no longer exists.")
    audit.act_as_client(client.client_id)
    return Caller(client, frozenset(verified.scopes))


def require_scope(caller: Caller, scope: str) -> None:
    """403 ``insufficient_scope`` naming the scope needed (RFC 6750 §3.1)."""
    if scope not in caller.scopes:
        challenge = bearer_challenge(
            "insufficient_scope", f"This call needs the scope {scope}.", scope=scope
        )
        raise Problem(
            403,
            f"This call needs the scope {scope}.",
            headers={"WWW-Authenticate": challenge},
        )
