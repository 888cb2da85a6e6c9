"""Per-IP limits on requests that create something for anyone who asks: sign-ups, dynamic
client registrations, anonymous authorization requests. Every request counts."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import current_app, request

from oauth.protocol.responses import JSON_PATHS, oauth_error
from oauth.ratelimit import client_ip, throttle


class TooManyRequests(Exception):
    """Raised by ``limit_per_ip`` views; answered as 429 with ``Retry-After``."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def limit_per_ip(
    setting: str, *, methods: tuple[str, ...] = ("POST",), when: Callable[[], bool] | None = None
):
    """Count each ``methods`` request under ``setting`` (a config name) per client IP."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if request.method in methods and (when is None or when()):
                limit = current_app.config[setting]
                key = f"{setting.lower()}/ip/{client_ip()}"
                counter = throttle()
                wait = counter.retry_after(limit, key)
                if wait is not None:
                    return too_many(wait)
                counter.hit(limit, key)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def too_many(wait: int):
    """The 429 answer: RFC 6749-style JSON on protocol paths, the error page elsewhere."""
    headers = {"Retry-After": str(wait)}
    if request.path.startswith(JSON_PATHS):
        return oauth_error(429, "slow_down", "Too many requests; try again later.", headers)
    raise TooManyRequests(wait)
