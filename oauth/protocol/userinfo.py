"""OpenID Connect UserInfo (Core §5.3): who a user access token with ``openid`` speaks for.

Two doors lead here: the Flask view (``web/protocol.py``, every request) and the lean lane
(``protocol/lean_resource.py``, a GET with a bearer header). Both check the token with
``user_token`` and build the answer with ``claims``, so they cannot disagree.
"""

from __future__ import annotations

from oauth.plugins.host import host as plugin_host
from oauth.protocol.responses import bearer_challenge
from oauth.tokens.claims import userinfo_claims
from oauth.tokens.jose import InvalidTokenError
from oauth.tokens.verify import VerifiedToken, verify_access_token

INVALID = "The access token is invalid, expired or revoked."
INSUFFICIENT = "UserInfo needs a user access token with the openid scope."


class Refusal(Exception):
    """What UserInfo answers instead of claims (RFC 6750 §3.1), before any hook has run."""

    def __init__(self, status: int, error: str, description: str, challenge: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        self.headers = {"WWW-Authenticate": challenge}


def user_token(token: str | None) -> VerifiedToken:
    """The live user token with ``openid`` that ``token`` is; raises Refusal otherwise.

    In the app context; no hook runs here."""
    if not token:
        raise Refusal(401, "invalid_token", "Missing bearer token.", bearer_challenge())
    try:
        verified = verify_access_token(token)
    except InvalidTokenError:
        raise Refusal(
            401, "invalid_token", INVALID, bearer_challenge("invalid_token", INVALID)
        ) from None
    if verified.user is None or "openid" not in verified.scopes:
        raise Refusal(
            403, "insufficient_scope", INSUFFICIENT,
            bearer_challenge("insufficient_scope", INSUFFICIENT, "openid"),
        )  # fmt: skip
    return verified


def claims(verified: VerifiedToken) -> dict:
    """The claims UserInfo answers for a ``user_token``: after the ``userinfo_claims`` hook
    (run once, here); raises PluginError when a plugin failed."""
    return plugin_host().userinfo_claims(
        userinfo_claims(verified.user, verified.scopes, verified.session.claims),
        verified.user,
        verified.scopes,
    )
