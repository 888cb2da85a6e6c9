"""The lean lane of the token endpoint: the common, well-formed request of an authenticated
client, answered without Flask's request machinery or Authlib's endpoint around it (issue 13:
together they took most of a token's time).

The lane reads an urlencoded body of the grant's known parameters, each sent once and none
empty, and authenticates the client in one way only (HTTP Basic or ``client_secret_post`` for
a confidential client, ``client_id`` alone for a public one). When it cannot, ``answer``
returns None *before anything has run*, and the full endpoint (``web/protocol.py`` through
Authlib) answers: every such error, with its RFC error code, and the limits on failed client
authentication stay in one place. Then:

- ``client_credentials``: the grant's own checks and issuing (``protocol/client_credentials.py``);
  a request they refuse goes to the full endpoint too, so the two doors cannot disagree;
- ``refresh_token`` and ``authorization_code``: the grant classes themselves, which answer
  every outcome here (``protocol/lean_grants.py`` says why).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request

from oauth import audit, logs, metrics
from oauth.protocol import client_credentials as grant
from oauth.protocol import lean_grants
from oauth.protocol.responses import HOOK_ERRORS, hook_error
from oauth.registry import clients

TOKEN_PATH = "/oauth/token"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY = 4096
CC_PARAMETERS = frozenset(
    {"grant_type", "audience", "resource", "scope", "client_id", "client_secret"}
)
GRANT_PARAMETERS = {grant.GRANT_TYPE: CC_PARAMETERS, **lean_grants.PARAMETERS}
PARAMETERS = frozenset().union(*GRANT_PARAMETERS.values())
BASIC = "client_secret_basic"
POST = "client_secret_post"
NONE = "none"


@dataclass
class Answer:
    """What the lane answers: a status and a JSON payload (a token or an RFC 6749 error)."""

    status: int
    payload: dict
    headers: list[tuple[str, str]] = field(default_factory=list)


class LeanRequest(OAuth2Request):
    """The Authlib request a plugin hook sees as ``context.request``, as the full endpoint
    gives it: ``method``, ``uri``, ``headers``, ``form``, ``args``, ``payload``, ``client``.

    Authlib's ``__init__`` is not called: it would check the transport again, which the lane
    did once per origin (``secure_transport``); the attributes it sets are set here."""

    def __init__(self, uri: str, headers, form: dict[str, str]):  # noqa: PLW0231  # see above
        self.method = "POST"
        self.uri = uri
        self.headers = headers
        self._body = None
        self._form = form
        self.payload = BasicOAuth2Payload(form)
        self.client = self.auth_method = self.user = self.credential = self._scope = None
        self.authorization_code = self.refresh_token = None

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


_SECURE_ORIGINS: dict[str, bool] = {}


def secure_transport(origin: str) -> bool:
    """Authlib's rule (https, or http to a loopback host) for ``scheme://host``, judged once
    per origin (a bounded few: hosts come from the request)."""
    if os.environ.get("AUTHLIB_INSECURE_TRANSPORT"):
        return True
    secure = _SECURE_ORIGINS.get(origin)
    if secure is None:
        secure = is_secure_transport(origin + "/")
        if len(_SECURE_ORIGINS) < 64:
            _SECURE_ORIGINS[origin] = secure
    return secure


def eligible(method: str, path: str, content_type: str | None, length: str | None) -> bool:
    """A request the lane may read: a POST to the token endpoint with a small form body."""
    if method != "POST" or path != TOKEN_PATH:
        return False
    return form_length(content_type, length, MAX_BODY) is not None


def form_length(content_type: str | None, length: str | None, max_body: int) -> int | None:
    """The body's length when it is an urlencoded form of at most ``max_body`` bytes."""
    if not content_type or not length or not length.isdigit():
        return None
    if content_type.partition(";")[0].strip().lower() != FORM_TYPE:
        return None
    size = int(length)
    return size if 0 < size <= max_body else None


def parse_form(body: bytes, parameters: frozenset[str] = PARAMETERS) -> dict[str, str] | None:
    """The form's fields, or None unless each is one of ``parameters``, sent once, not empty."""
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
            max_num_fields=len(parameters),
            encoding="utf-8", errors="strict",
        )  # fmt: skip
    except (ValueError, UnicodeError):
        return None
    form = dict(pairs)
    if len(form) != len(pairs) or not parameters.issuperset(form):
        return None
    if not all(value and "\x00" not in value for value in form.values()):
        return None
    return form


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: ``Basic base64(urlencoded id ":" urlencoded secret)``, strictly."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None
    client_id, secret = unquote(client_id, errors="strict"), unquote(secret, errors="strict")
    return (client_id, secret) if client_id and secret else None


def _credentials(authorization: str | None, form: dict) -> tuple[str, str, str] | None:
    """(client_id, secret, method) when the client used exactly one way to authenticate."""
    if authorization is not None:
        if "client_secret" in form:
            return None
        try:
            pair = basic_credentials(authorization)
        except UnicodeError:
            return None
        if pair is None or form.get("client_id", pair[0]) != pair[0]:
            return None
        return pair[0], pair[1], BASIC
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if client_id and not secret:
        return client_id, "", NONE
    return (client_id, secret, POST) if client_id and secret else None


def _authenticated_client(credentials: tuple[str, str, str]):
    client_id, secret, method = credentials
    client = clients.cached_client(client_id)
    if client is None or client.is_public != (method == NONE):
        return None
    if not client.check_endpoint_auth_method(method, "token"):
        return None
    return client if method == NONE or client.check_client_secret(secret) else None


def authenticated(authorization: str | None, form: dict, *, public: bool):
    """(client, method) when the client authenticated in exactly one way and it checks: a
    confidential client's secret, or (``public``) a public client's ``client_id`` alone."""
    credentials = _credentials(authorization, form)
    if credentials is None or (credentials[2] == NONE and not public):
        return None
    client = _authenticated_client(credentials)
    return (client, credentials[2]) if client is not None else None


def answer(
    form: dict, authorization: str | None, origin: str, uri: str, headers, ip: str | None
) -> Answer | None:
    """The answer to a token request, or None: the full endpoint answers it.

    In the app context. ``origin`` is ``scheme://host`` of ``uri``; ``headers`` (read by
    plugins through ``context.request``) may be any mapping; ``ip`` goes into the audit event.
    """
    grant_type = form.get("grant_type")
    parameters = GRANT_PARAMETERS.get(grant_type)
    if parameters is None or not parameters.issuperset(form) or not secure_transport(origin):
        return None
    found = authenticated(authorization, form, public=grant_type != grant.GRANT_TYPE)
    if found is None:
        return None
    request = LeanRequest(uri, headers, form)
    request.client, request.auth_method = found
    logs.note(client_id=request.client.client_id)
    if grant_type != grant.GRANT_TYPE:
        audit.from_address(ip)
        return Answer(*lean_grants.answer(grant_type, request))
    return _client_credentials(request.client, form, request, ip)


def _client_credentials(client, form: dict, request: LeanRequest, ip: str | None):
    resources = [form["resource"]] if "resource" in form else []
    try:
        api, scopes = grant.check_request(client, form, resources)
    except OAuth2Error:
        return None
    try:
        token = grant.issue_token(client, api, scopes, request.auth_method, request, ip=ip)
    except HOOK_ERRORS as error:
        return Answer(*hook_error(error))
    metrics.count_token(grant.GRANT_TYPE)
    return Answer(200, token, [("Pragma", "no-cache")])
