"""Prometheus metrics (``GET /metrics``, ``web/metrics.py``): defined here, low in the layers,
so a service at any layer counts what it knows.

With several gunicorn workers each process counts on its own; prometheus_client's
multiprocess mode adds them up at scrape time. It needs ``PROMETHEUS_MULTIPROC_DIR`` set
before ``prometheus_client`` is first imported, emptied when the server starts, and dead
workers marked: ``gunicorn.conf.py`` at the project root does all three (gunicorn loads it
from its working directory). Without the variable (``flask run``, one process), the
counters are this process's own.

Labels are bounded: the Flask endpoint name (never the raw path), the status code, a known
HTTP method, the grant type, the plugin and hook names (from the loaded plugins). Counting
is prometheus_client's own (a lock-free value per label set in multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

CONTENT_TYPE = CONTENT_TYPE_LATEST
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
# Seconds: a token request is milliseconds; a password check (argon2id) a few tenths.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "portcullis_http_requests",
    "HTTP requests answered, by Flask endpoint ('none': no route), method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "portcullis_http_request_duration_seconds",
    "Time to answer an HTTP request, by Flask endpoint.",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter(
    "portcullis_tokens_issued",
    "Successful token responses of POST /oauth/token, by grant type.",
    ["grant_type"],
)
REFRESH_REUSE = Counter(
    "portcullis_refresh_token_reuse_detected",
    "Refresh tokens presented again after rotation (outside the reuse interval): "
    "each revoked its session.",
)
SIGN_IN_FAILURES = Counter(
    "portcullis_sign_in_failures",
    "Failed sign-ins, by method (password, passkey, second_factor).",
    ["method"],
)
HOOK_CALLS = Counter(
    "portcullis_plugin_hook_calls",
    "Plugin hook calls, by plugin and hook (dry runs of `flask plugins try` excluded).",
    ["plugin", "hook"],
)
HOOK_FAILURES = Counter(
    "portcullis_plugin_hook_failures",
    "Plugin hook calls that raised or returned something invalid, by plugin and hook.",
    ["plugin", "hook"],
)
MAIL = Counter(
    "portcullis_mail",
    "Mail delivery attempts, by outcome (sent, failed: retried later or given up).",
    ["outcome"],
)


# (endpoint, method, status) -> its counter and histogram: ``labels()`` takes a lock and
# builds a key on every call; the token hot path looks them up in a plain dict instead.
_request_series: dict[tuple, tuple] = {}


def count_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    key = (endpoint, method, status)
    series = _request_series.get(key)
    if series is None:
        name = endpoint or "none"
        verb = method if method in METHODS else "other"
        series = (REQUESTS.labels(name, verb, str(status)), LATENCY.labels(name))
        if len(_request_series) < 10_000:  # bounded even if methods are odd
            _request_series[key] = series
    series[0].inc()
    series[1].observe(seconds)


def count_token(grant_type: str | None) -> None:
    TOKENS.labels(grant_type if grant_type in GRANT_TYPES else "other").inc()


def render() -> bytes:
    """The exposition text: every worker's counters in multiprocess mode, else this process's."""
    if MULTIPROCESS_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
