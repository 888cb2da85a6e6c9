"""A short-lived per-worker cache of the client registry (clients, APIs, client grants) for the
token endpoint's hot path.

Every worker keeps what it looked up for ``REGISTRY_CACHE_SECONDS`` (default 5, like the
signing keys); a change made through the client or API services clears this worker's cache at
once, and other workers see it when their entries expire. Misses are never cached, so a new
client or grant works everywhere immediately; a deleted client, a revoked grant or a rotated
secret is honoured by every worker within the interval. ``0`` turns the cache off.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from flask import current_app, has_app_context

_MISSING = object()
# Entries per worker: a client and its grant take about 3 KB, so the cache stays under ~6 MB
# however many clients call (ids come from requests; expired entries go first when full).
MAX_ENTRIES = 4096


class RegistryCache:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self._entries: dict[tuple, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, load):
        if self.seconds <= 0:
            return load()
        now = time.monotonic()
        entry = self._entries.get(key, _MISSING)
        if entry is not _MISSING and entry[0] > now:
            return entry[1]
        value = load()
        if value is not None:
            with self._lock:
                if len(self._entries) >= MAX_ENTRIES:
                    self._make_room(now)
                self._entries[key] = (now + self.seconds, value)
        return value

    def _make_room(self, now: float) -> None:
        """Drop the expired entries; if every entry is live, all of them (rare: that many
        clients within one interval gain little from a cache)."""
        live = {k: e for k, e in self._entries.items() if e[0] > now}
        self._entries = live if len(live) < MAX_ENTRIES else {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def init_app(app) -> None:
    app.extensions["portcullis.registry"] = RegistryCache(
        float(app.config["REGISTRY_CACHE_SECONDS"])
    )


def _cache() -> RegistryCache | None:
    return current_app.extensions.get("portcullis.registry") if has_app_context() else None


def invalidate() -> None:
    cache = _cache()
    if cache is not None:
        cache.clear()


def invalidates(function):
    """Decorate a service function that changes clients, APIs or grants."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            invalidate()

    return wrapper


def cached(key: tuple, load):
    """``load()``, or what it returned for ``key`` less than the interval ago."""
    cache = _cache()
    return load() if cache is None else cache.get(key, load)
