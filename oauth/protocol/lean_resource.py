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

from urllib.parse import parse_qsl

from oauth import logs
from oauth.plugins.host import PluginError
from oauth.protocol import userinfo
from oauth.protocol.endpoints import MAX_TOKEN_LENGTH, introspection
from oauth.protocol.lean_token import FORM_TYPE, Answer, secure_transport
from oauth.protocol.lean_token import _authenticated_client as authenticated_client
from oauth.protocol.lean_token import _credentials as client_credentials
from oauth.protocol.responses import PLUGIN_FAILED, header_bearer_token

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
    except PluginError:
        return Answer(500, {"error": "server_error", "error_description": PLUGIN_FAILED})
    return Answer(200, claims)


# --- introspection ---------------------------------------------------------------------------


def form_length(content_type: str | None, length: str | None) -> int | None:
    """The body's length when it is a small urlencoded form the lane may read, else None."""
    if not content_type or not length or not length.isdigit():
        return None
    if content_type.partition(";")[0].strip().lower() != FORM_TYPE:
        return None
    size = int(length)
    return size if 0 < size <= MAX_BODY else None


def strict_form(body: bytes, parameters: frozenset[str] = PARAMETERS) -> dict[str, str] | None:
    """The form's fields, or None unless each is one of ``parameters``, sent once, not empty
    (lean_token's rules for its own parameters)."""
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
            max_num_fields=len(parameters), encoding="utf-8", errors="strict",
        )  # fmt: skip
    except (ValueError, UnicodeError):
        return None
    form = dict(pairs)
    if len(form) != len(pairs) or not parameters.issuperset(form):
        return None
    if not all(value and "\x00" not in value for value in form.values()):
        return None
    return form


def introspection_answer(form: dict, authorization: str | None, origin: str) -> Answer | None:
    """The endpoint's answer to an introspection request by a client whose credentials
    check, or None: the full endpoint answers. In the app context; ``origin`` is the
    request's ``scheme://host``."""
    token = form.get("token")
    if token is None or not secure_transport(origin):
        return None
    credentials = client_credentials(authorization, form)
    client = authenticated_client(credentials) if credentials else None
    if client is None:
        return None
    logs.note(client_id=client.client_id)  # as the full endpoint's client authentication does
    return Answer(200, introspection(client, token, form.get("token_type_hint")), NO_STORE)
