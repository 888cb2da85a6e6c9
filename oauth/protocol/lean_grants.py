"""The lean lane's user grants: a well-formed refresh-token or authorization-code request of an
authenticated client, run through the grant's own code (``protocol/grants.py``) without
Flask's request machinery or Authlib's endpoint around it.

``lean_token.answer`` authenticates the client first and leaves a failed authentication to the
full endpoint (its failures are counted there). From then on this lane answers every outcome
itself, errors included: the grant's checks may already have written (a replayed code revokes
what it issued, a reused refresh token ends its session), so sending the request on to the
full endpoint would do that twice.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import OAuth2Error

from oauth import metrics
from oauth.protocol import grants
from oauth.protocol.responses import HOOK_ERRORS, hook_error
from oauth.protocol.server import authorization_server

GRANTS = {
    "authorization_code": grants.AuthorizationCodeGrant,
    "refresh_token": grants.RefreshTokenGrant,
}
CLIENT = frozenset({"grant_type", "client_id", "client_secret", "resource"})
PARAMETERS = {
    "authorization_code": CLIENT | {"code", "redirect_uri", "code_verifier"},
    "refresh_token": CLIENT | {"refresh_token", "scope"},
}
# The lane writes Content-Type and Cache-Control itself (as for every answer).
OWN_HEADERS = frozenset({"content-type", "cache-control"})


def answer(grant_type: str, request) -> tuple[int, dict, list[tuple[str, str]]]:
    """(status, payload, extra headers) of ``request`` (an authenticated ``LeanRequest``)."""
    grant = GRANTS[grant_type](request, authorization_server())
    try:
        grant.validate_token_request()
        status, token, headers = grant.create_token_response()
    except OAuth2Error as error:
        status, body, headers = error()
        return status, body, [h for h in headers if h[0].lower() not in OWN_HEADERS]
    except HOOK_ERRORS as error:
        return *hook_error(error), []
    metrics.count_token(grant_type)
    return status, token, [h for h in headers if h[0].lower() not in OWN_HEADERS]
