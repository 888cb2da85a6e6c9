"""The HTTP hook: Supabase's custom access token hook for logic that is not Python.

When ``HTTP_HOOK_URL`` is set, every access token's claims and context are POSTed as JSON to
that URL, signed with the Standard Webhooks scheme (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>``) using ``HTTP_HOOK_SECRET`` (``v1,whsec_<base64>``
or ``whsec_<base64>``). The endpoint answers ``{"claims": {...}}`` (merged into the token) or
``{"error": {"http_code": 403, "message": "..."}}`` (the token is refused). A timeout
(``HTTP_HOOK_TIMEOUT``, default 5 s), a connection error, a non-2xx status (a redirect too: it is
never followed, so the signed payload goes nowhere else) or a malformed answer fails the token
request with ``server_error``: the hook fails closed.

The timeout bounds the whole call: connecting, sending and reading the complete answer. A
watchdog shuts the socket down at the deadline, so a server that dribbles its answer a byte at
a time is cut off like one that never answers. (Name resolution is not covered: Python's
resolver cannot be interrupted; point the hook at an address or a fast resolver.)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import threading
import time
import uuid
from urllib.parse import urlsplit

from flask import Flask, current_app

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


class _Watchdog:
    """Shuts ``connection``'s socket down ``seconds`` from now, ending any blocked read."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.connection = connection
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        sock = self.connection.sock
        if sock is not None:
            # The plain socket's shutdown, also for TLS: it only touches the descriptor, so
            # the thread blocked in a read wakes up with an error.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpHookError("HTTP_HOOK_URL is not an http(s) URL")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        port = parts.port
    except ValueError:
        raise HttpHookError("HTTP_HOOK_URL has an invalid port") from None
    if parts.scheme == "https":
        context = ssl.create_default_context()
        return http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=context
        ), target
    return http.client.HTTPConnection(parts.hostname, port, timeout=timeout), target


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST ``body`` once; the status and answer, all within ``timeout`` seconds in total.

    Redirects are never followed (http.client does not). Any failure is an HttpHookError.
    """
    connection, target = _connection(url, timeout)
    watchdog = _Watchdog(connection, timeout)
    try:
        with watchdog:
            connection.connect()
            if watchdog.fired:  # it fired while the socket did not exist yet
                raise TimeoutError
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read(MAX_ANSWER_BYTES + 1)
            status = response.status
    except (OSError, http.client.HTTPException, UnicodeError) as error:
        if watchdog.fired or isinstance(error, TimeoutError):
            raise HttpHookError(f"HTTP hook timed out after {timeout:g} s") from None
        raise HttpHookError(f"HTTP hook unreachable: {type(error).__name__}") from None
    finally:
        connection.close()
    if watchdog.fired:
        raise HttpHookError(f"HTTP hook timed out after {timeout:g} s")
    if len(answer) > MAX_ANSWER_BYTES:
        raise HttpHookError(f"HTTP hook answer is larger than {MAX_ANSWER_BYTES} bytes")
    return status, answer


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
