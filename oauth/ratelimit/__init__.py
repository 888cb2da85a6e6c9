"""Rate limits: they count what an attacker repeats and slow the guesser, never the owner.

One ``Throttle`` per application holds fixed-window counters (the ``limits`` library) in the
storage named by ``RATELIMIT_STORAGE_URI``: ``database://`` (the default) keeps them in the
application's own database, so a limit holds across every worker of a machine and every
instance sharing a PostgreSQL database; ``redis://host:port`` shares them through Redis
(``pip install portcullis[redis]``); ``memory://`` counts per process (tests, one worker).
``RATELIMIT_ENABLED=false`` turns every limit off. What is limited, and by which key, lives in
the modules of this package: ``clients`` (failed client authentication), ``passwords``
(password and second-factor checks, with device cookies) and ``requests`` (per-IP limits on
sign-up, registration and anonymous authorization requests).
"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from oauth.config import ConfigError
from oauth.storage.counters import DatabaseStorage

log = logging.getLogger(__name__)

EXTENSION = "portcullis.throttle"
DATABASE_STORAGE = "database://"


def _storage(uri: str) -> Storage:
    if uri in (DATABASE_STORAGE, "database"):
        return DatabaseStorage()
    setting = f"PORTCULLIS_RATELIMIT_STORAGE_URI={uri!r}"
    try:
        storage = storage_from_string(uri, wrap_exceptions=True)
    except Exception as error:  # limits raises ConfigurationError, or ImportError-like ones
        hint = " (pip install 'portcullis[redis]')" if uri.startswith("redis") else ""
        raise ConfigError(f"{setting}: {error}{hint}") from None
    if not storage.check():
        raise ConfigError(f"{setting}: the limit storage does not answer")
    return storage


class Throttle:
    """Counters for named limits (``"10 per minute; 30 per hour"``) under string keys.

    An external storage (Redis) that stops answering fails open, logged: an outage of the
    limit storage must not take sign-in down with it. Database errors are not swallowed.
    """

    def __init__(self, app: Flask):
        self.enabled = bool(app.config["RATELIMIT_ENABLED"])
        self.storage = _storage(str(app.config["RATELIMIT_STORAGE_URI"]))
        self.strategy = FixedWindowRateLimiter(self.storage)
        self._parsed: dict[str, list[RateLimitItem]] = {}

    def _items(self, limit: str) -> list[RateLimitItem]:
        if limit not in self._parsed:
            self._parsed[limit] = parse_many(limit)
        return self._parsed[limit]

    def retry_after(self, limit: str, *keys: str) -> int | None:
        """Seconds to wait when any window of ``limit`` is exhausted for any key, else None."""
        if not self.enabled:
            return None
        try:
            waits = [
                self.strategy.get_window_stats(item, key).reset_time - time.time()
                for item in self._items(limit)
                for key in keys
                if not self.strategy.test(item, key)
            ]
        except StorageError as error:
            log.error("rate-limit storage failed, not limiting: %s", error)
            return None
        return max(1, int(max(waits)) + 1) if waits else None

    def hit(self, limit: str, *keys: str) -> None:
        """Count one attempt against every window of ``limit`` for every key."""
        self._each(self.strategy.hit, limit, keys)

    def clear(self, limit: str, *keys: str) -> None:
        self._each(self.strategy.clear, limit, keys)

    def _each(self, action, limit: str, keys: tuple[str, ...]) -> None:
        if not self.enabled:
            return
        try:
            for item in self._items(limit):
                for key in keys:
                    action(item, key)
        except StorageError as error:
            log.error("rate-limit storage failed, not counting: %s", error)


def init_app(app: Flask) -> None:
    throttle = Throttle(app)
    for name in [key for key in app.config if key.endswith("RATE_LIMIT")]:
        try:
            throttle._items(str(app.config[name]))
        except ValueError as error:
            raise ConfigError(f"PORTCULLIS_{name}={app.config[name]!r}: {error}") from None
    app.extensions[EXTENSION] = throttle


def throttle() -> Throttle:
    return current_app.extensions[EXTENSION]


def client_ip() -> str:
    """The address limits count by (issue 12's PROXY_HOPS decides what ``remote_addr`` is)."""
    return request.remote_addr or "-"
