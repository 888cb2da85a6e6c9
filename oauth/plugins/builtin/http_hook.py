"""The HTTP hook: Supabase's custom access token hook for logic that is not Python.

When ``HTTP_HOOK_URL`` is set, every access token's claims and context are POSTed as JSON to
that URL, signed with the Standard Webhooks scheme (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>``) using ``HTTP_HOOK_SECRET`` (``v1,whsec_<base64>``
or ``whsec_<base64>``). The endpoint answers ``{"claims": {...}}`` (merged into the token) or
``{"error": {"http_code": 403, "message": "..."}}`` (the token is refused). A timeout
(``HTTP_HOOK_TIMEOUT``, default 5 s), a connection error, a non-2xx status or a malformed answer
fails the token request with ``server_error``: the hook fails closed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import requests
from flask import Flask, current_app

from oauth.plugins.hookspecs import TokenDenied, hookimpl

_session = requests.Session()


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


@hookimpl(trylast=True)
def customize_access_token(claims, context):
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
    try:
        response = _session.post(
            config["HTTP_HOOK_URL"],
            data=body,
            headers=headers,
            timeout=float(config["HTTP_HOOK_TIMEOUT"]),
        )
    except requests.Timeout:
        raise HttpHookError(f"HTTP hook timed out after {config['HTTP_HOOK_TIMEOUT']} s") from None
    except requests.RequestException as error:
        raise HttpHookError(f"HTTP hook unreachable: {type(error).__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        message = str(error.get("message") or "The token was refused.")
        raise TokenDenied(
            "invalid_request" if error.get("http_code") == 400 else "access_denied", message
        )
    if not 200 <= response.status_code < 300:
        raise HttpHookError(f"HTTP hook answered status {response.status_code}")
    if not isinstance(answer, dict) or not isinstance(answer.get("claims"), dict):
        raise HttpHookError("HTTP hook answer has no 'claims' object")
    return answer["claims"]
