"""The HTTP hook: Supabase's custom access token hook for logic that is not Python.

When ``HTTP_HOOK_URL`` is set, every access token's claims and context are POSTed as JSON to
that URL, signed with the Standard Webhooks scheme (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>``) using ``HTTP_HOOK_SECRET`` (``v1,whsec_<base64>``
or ``whsec_<base64>``). The endpoint answers ``{"claims": {...}}`` (merged into the token) or
``{"error": {"http_code": 403, "message": "..."}}`` (the token is refused). A timeout
(``HTTP_HOOK_TIMEOUT``, default 5 s), a connection error, a non-2xx status (a redirect too: it is
never followed, so the signed payload goes nowhere else) or a malformed answer fails the token
request with ``server_error``: the hook fails closed.

The timeout bounds the whole call: resolving the name, connecting, the TLS handshake, sending
and reading the complete answer (``oauth.outbound``, the one outbound HTTP client), so a server
that dribbles its answer a byte at a time is cut off like one that never answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

from flask import Flask, current_app

from oauth import outbound
from oauth.plugins.hookspecs import TokenDenied, hookimpl

MAX_ANSWER_BYTES = 1 << 20  # a claims answer is small; a bigger one is a broken hook


class HttpHookError(Exception):
    pass


def enabled(app: Flask) -> bool:
    return bool(app.config.get("HTTP_HOOK_URL"))


def signing_key(secret: str) -> bytes:
    value = secret.strip()
    if value.startswith("v1,"):
        value = value[3:]
    if value.startswith("whsec_"):
        value = value[6:]
    return base64.b64decode(value)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _context_payload(context) -> dict:
    user = context.user
    return {
        "client": {
            "client_id": context.client.client_id,
            "name": context.client.name,
            "metadata": context.client.metadata or {},
        },
        "user": None
        if user is None
        else {
            "id": user.id,
            "email": user.email,
            "app_metadata": user.app_metadata or {},
            "user_metadata": user.user_metadata or {},
        },
        "grant_type": context.grant_type,
        "authentication_method": context.authentication_method,
        "scopes": list(context.scopes),
        "audience": context.audience,
    }


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST ``body`` once; the status and answer, all within ``timeout`` seconds in total.

    Through ``oauth.outbound``: the URL is the operator's, so plain http and private addresses
    are allowed; redirects are never followed. Any failure is an HttpHookError.
    """
    try:
        answer = outbound.request(
            "POST",
            url,
            body=body,
            headers=headers,
            timeout=timeout,
            max_bytes=MAX_ANSWER_BYTES,
            https_only=False,
            allow_private=True,
        )
    except outbound.OutboundError as error:
        raise HttpHookError(f"HTTP hook failed: {error}") from None
    return answer.status, answer.body


def _request(claims, context) -> tuple[bytes, dict[str, str]]:
    config = current_app.config
    body = json.dumps(
        {
            "type": "customize_access_token",
            "user_id": claims.get("sub"),
            "claims": claims,
            "context": _context_payload(context),
        },
        separators=(",", ":"),
    ).encode()
    message_id = f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
    }
    if config.get("HTTP_HOOK_SECRET"):
        headers["webhook-signature"] = sign(config["HTTP_HOOK_SECRET"], message_id, timestamp, body)
    return body, headers


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON a token can carry")


@hookimpl(trylast=True)
def customize_access_token(claims, context):
    config = current_app.config
    body, headers = _request(claims, context)
    status, raw = post(config["HTTP_HOOK_URL"], body, headers, float(config["HTTP_HOOK_TIMEOUT"]))
    if 300 <= status < 400:
        raise HttpHookError(f"HTTP hook answered a redirect ({status}); redirects are not followed")
    try:
        answer = json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        message = str(error.get("message") or "The token was refused.")
        raise TokenDenied(
            "invalid_request" if error.get("http_code") == 400 else "access_denied", message
        )
    if not 200 <= status < 300:
        raise HttpHookError(f"HTTP hook answered status {status}")
    if not isinstance(answer, dict) or not isinstance(answer.get("claims"), dict):
        raise HttpHookError("HTTP hook answer has no 'claims' object")
    return answer["claims"]
