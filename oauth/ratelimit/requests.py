"""Per-IP limits on requests that create something for anyone who asks: sign-ups, dynamic
client registrations, anonymous authorization requests, client metadata document fetches.
Every request counts."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import current_app, request

from oauth.protocol.responses import JSON_PATHS, oauth_error
from oauth.ratelimit import client_ip, throttle
from oauth.registry import metadata_documents


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


def limit_metadata_fetches(view):
    """Count a request that would fetch a client metadata document, per IP and per host.

    A cached document costs nothing; a fetch is an outbound connection anyone can trigger with
    a made-up client_id, so ``METADATA_FETCH_RATE_LIMIT`` (per IP) and
    ``METADATA_FETCH_HOST_RATE_LIMIT`` (per document host, from every IP) bound them.
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        host = metadata_documents.needs_fetch(request.values.get("client_id"))
        if host is not None:
            config = current_app.config
            limits = (
                (config["METADATA_FETCH_RATE_LIMIT"], f"metadata_fetch/ip/{client_ip()}"),
                (config["METADATA_FETCH_HOST_RATE_LIMIT"], f"metadata_fetch/host/{host}"),
            )
            counter = throttle()
            waits = [counter.retry_after(limit, key) for limit, key in limits]
            if any(wait is not None for wait in waits):
                return too_many(max(wait for wait in waits if wait is not None))
            for limit, key in limits:
                counter.hit(limit, key)
        return view(*args, **kwargs)

    return wrapper
