"""The lean lane of UserInfo and introspection (issue 13): the common, well-formed request
answered without Flask's request machinery (and, for introspection, Authlib's endpoint)
around it, as ``protocol/lean_token.py`` does for the token endpoint.

The lane takes only a request it can answer in full; for anything else these functions
return None *before any hook has run*, and the full endpoint (``web/protocol.py``) answers:
every error with its RFC code and ``WWW-Authenticate``, and the limit on failed client
authentication, stay in one place.

- UserInfo: a GET (or a POST without a body), no query string, ``Authorization: Bearer``
  with a live user token that has ``openid``. The checks and the claims are the view's own
  (``protocol/userinfo.py``). The one answer besides the claims is a plugin failure, given
  where it happened (the hook runs once): 500 ``server_error`` with the view's body.
- Introspection: a POST of a strict urlencoded form (``token``, optional
  ``token_type_hint``, ``client_id``/``client_secret``) by a confidential client whose
  credentials check (one method only: lean_token's rules), answered with the endpoint's
  own payload (``endpoints.introspection``). No hook runs there.
"""

from __future__ import annotations

from oauth import logs
from oauth.plugins.host import PluginError
from oauth.protocol import userinfo
from oauth.protocol.endpoints import MAX_TOKEN_LENGTH, introspection
from oauth.protocol.lean_token import Answer, authenticated, parse_form, secure_transport
from oauth.protocol.responses import header_bearer_token, hook_error

USERINFO_PATH = "/oauth/userinfo"
INTROSPECTION_PATH = "/oauth/introspect"
PARAMETERS = frozenset({"token", "token_type_hint", "client_id", "client_secret"})
MAX_BODY = MAX_TOKEN_LENGTH + 1024  # the longest token we verify, and the other fields
NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]  # the endpoint's (server.py)


# --- UserInfo --------------------------------------------------------------------------------


def userinfo_token(
    method: str, query: str | None, length: str | None, chunked: str | None, authorization
) -> str | None:
    """The bearer token of a UserInfo request the lane may take, else None: a GET or a POST
    without a body (a body could carry another token: RFC 6750 §2.2), no query string."""
    if method not in ("GET", "POST") or query or chunked or length not in (None, "", "0"):
        return None
    return header_bearer_token(authorization)


def userinfo_answer(token: str) -> Answer | None:
    """The claims for ``token`` (status 200), a plugin's failure (500), or None: the view
    answers. In the app context."""
    try:
        verified = userinfo.user_token(token)
    except userinfo.Refusal:
        return None
    try:
        claims = userinfo.claims(verified)
    except PluginError as failure:
        return Answer(*hook_error(failure))
    return Answer(200, claims)


# --- introspection ---------------------------------------------------------------------------


def strict_form(body: bytes) -> dict[str, str] | None:
    """The introspection form's fields (lean_token's rules: known, once, not empty), or None."""
    return parse_form(body, PARAMETERS)


def introspection_answer(form: dict, authorization: str | None, origin: str) -> Answer | None:
    """The endpoint's answer to an introspection request by a client whose credentials
    check, or None: the full endpoint answers. In the app context; ``origin`` is the
    request's ``scheme://host``."""
    token = form.get("token")
    if token is None or not secure_transport(origin):
        return None
    found = authenticated(authorization, form, public=False)
    if found is None:
        return None
    client = found[0]
    logs.note(client_id=client.client_id)  # as the full endpoint's client authentication does
    return Answer(200, introspection(client, token, form.get("token_type_hint")), NO_STORE)
