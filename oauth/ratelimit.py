"""Rate limits (flask-limiter). They count what an attacker repeats: failed sign-ins, sign-ups,
failed client authentications, registrations. ``RATELIMIT_ENABLED=false`` turns them all off;
``RATELIMIT_STORAGE_URI`` (e.g. ``redis://127.0.0.1:6379``) shares counters between workers.
"""

from __future__ import annotations

import functools
import time

from flask import Flask, current_app, make_response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from oauth.accounts.users import normalise_email
from oauth.protocol.responses import basic_client_id, oauth_error

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=True)


def init_app(app: Flask) -> None:
    limiter.init_app(app)
    app.extensions["portcullis.attempts"] = AttemptCounter(app)


def form_email_key() -> str:
    return "account:" + normalise_email(request.form.get("email", ""))


def failed(response) -> bool:
    """Count a hit only when the attempt failed (a successful sign-in redirects)."""
    return response.status_code not in (301, 302, 303)


class AttemptCounter:
    """Counts failed attempts with the ``limits`` library directly.

    For protocol endpoints on the hot path: a successful token request costs two in-memory (or
    Redis) lookups, instead of flask-limiter's per-request machinery.
    """

    def __init__(self, app: Flask):
        self.enabled = bool(app.config["RATELIMIT_ENABLED"])
        self.strategy = FixedWindowRateLimiter(
            storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
        )
        self._parsed: dict[str, object] = {}

    def _limit(self, value: str):
        if value not in self._parsed:
            self._parsed[value] = parse(value)
        return self._parsed[value]

    def retry_after(self, limit: str, *keys: str) -> int | None:
        """Seconds to wait when any key is exhausted, else None."""
        if not self.enabled:
            return None
        item = self._limit(limit)
        for key in keys:
            if not self.strategy.test(item, key):
                reset = self.strategy.get_window_stats(item, key).reset_time
                return max(1, int(reset - time.time()) + 1)
        return None

    def hit(self, limit: str, *keys: str) -> None:
        if self.enabled:
            item = self._limit(limit)
            for key in keys:
                self.strategy.hit(item, key)


def attempts() -> AttemptCounter:
    return current_app.extensions["portcullis.attempts"]


def _client_id_of_request() -> str:
    try:
        client_id = basic_client_id()
    except ValueError:
        client_id = None  # the view answers invalid_client; count it under the body's id
    return str(client_id or request.form.get("client_id") or "-")[:64]


def limit_failed_client_auth(view):
    """Refuse (429) a client or IP with too many failed client authentications (401s).

    Successful requests are never counted, so machine clients are not throttled.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        counter = attempts()
        limit = current_app.config["CLIENT_AUTH_RATE_LIMIT"]
        keys = (
            f"client-auth/ip/{get_remote_address()}",
            f"client-auth/client/{_client_id_of_request()}",
        )
        wait = counter.retry_after(limit, *keys)
        if wait is not None:
            return oauth_error(
                429, "slow_down", "Too many failed client authentications; try again later.",
                {"Retry-After": str(wait)},
            )  # fmt: skip
        response = make_response(view(*args, **kwargs))
        if response.status_code == 401:
            counter.hit(limit, *keys)
        return response

    return limiter.exempt(wrapper)
