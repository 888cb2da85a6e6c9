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
