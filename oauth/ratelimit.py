"""Rate limits (flask-limiter). They count what an attacker repeats: failed sign-ins, sign-ups,
failed client authentications, registrations. ``RATELIMIT_ENABLED=false`` turns them all off;
``RATELIMIT_STORAGE_URI`` (e.g. ``redis://127.0.0.1:6379``) shares counters between workers.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def init_app(app: Flask) -> None:
    limiter.init_app(app)


def form_email_key() -> str:
    from .accounts import normalise_email

    return "account:" + normalise_email(request.form.get("email", ""))


def failed(response) -> bool:
    """Count a hit only when the attempt failed (a successful sign-in redirects)."""
    return response.status_code not in (301, 302, 303)


def client_auth_limit() -> str:
    from flask import current_app

    return current_app.config["CLIENT_AUTH_RATE_LIMIT"]


def client_id_key() -> str:
    """The client a request claims to be (Basic header or form), for per-client limits."""
    from authlib.oauth2.rfc6749.util import extract_basic_authorization

    client_id, _ = extract_basic_authorization(request.headers)
    return "client:" + str(client_id or request.form.get("client_id") or "-")[:64]


def client_auth_failed(response) -> bool:
    """Count only failed client authentications (401): successful token requests are never limited."""
    return response.status_code == 401


def limit_failed_client_auth(view):
    """Per-IP and per-client limits on failed client authentication."""
    view = limiter.limit(client_auth_limit, deduct_when=client_auth_failed)(view)
    return limiter.limit(client_auth_limit, key_func=client_id_key, deduct_when=client_auth_failed)(
        view
    )
