"""Logging: the request id of the request being served, the request line's fields, and the
two formats (``PORTCULLIS_LOG_FORMAT``: ``text``, or ``json``: one object per line on stderr).

The web layer (``web/instruments.py``) starts and ends each request's state here; any layer
may ``note`` the client or user it has authenticated, so the request line can name them
without parsing anything twice. Records emitted while a request is served carry its
``request_id`` (``RequestIdFilter`` for text, the formatter for JSON).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import secrets
import sys

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# An incoming X-Request-ID is kept when it is visible ASCII and not too long.
_SANE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
# The fields of the request line (``web/instruments.py``), in JSON as their own keys.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "endpoint", "client_id", "user_id")
_QUERY = re.compile(r"\?[^\s\"]*")
_MARK = "_portcullis"

_state: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "portcullis_request", default=None
)


# --- the request being served ---------------------------------------------------------


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is sane, else a fresh random one."""
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(16)


def begin(request_id: str) -> tuple[dict, contextvars.Token]:
    """Start a request's state (the caller ends it with ``end``)."""
    state = {"request_id": request_id, "client_id": None, "user_id": None, "endpoint": None}
    return state, _state.set(state)


def end(token: contextvars.Token) -> None:
    _state.reset(token)


def current_request_id() -> str | None:
    state = _state.get()
    return state["request_id"] if state is not None else None


def note(*, client_id: str | None = None, user_id: str | None = None) -> None:
    """Name the client or user of the request being served (for its log line); no-op outside
    a request. Never pass anything secret: these go to the log as they are."""
    state = _state.get()
    if state is None:
        return
    if client_id is not None:
        state["client_id"] = str(client_id)[:200]
    if user_id is not None:
        state["user_id"] = str(user_id)[:200]


def note_endpoint(endpoint: str) -> None:
    state = _state.get()
    if state is not None:
        state["endpoint"] = endpoint


def noted(name: str) -> str | None:
    state = _state.get()
    return state.get(name) if state is not None else None


def printable(value: str, limit: int = 300) -> str:
    """A value for a text log line: no control characters (no forged lines), bounded."""
    value = value[:limit]
    if value.isprintable():  # nearly always: no copy character by character
        return value
    return "".join(c if c.isprintable() else "?" for c in value)


# --- formats ------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Gives every record ``request_id`` (the request's, or "-" outside any request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


class QueryStringFilter(logging.Filter):
    """Werkzeug's development server logs the request line with its query string, which can
    carry codes, reset tokens and state: this drops every query string from its records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _QUERY.sub("", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY.sub("", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id (during a
    request), the request line's fields, the exception's traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id and request_id != "-":
            entry["request_id"] = request_id
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, *, debug: bool = False) -> None:
    """Install the format on the root logger (once per process; a later app with the other
    format switches it), and on gunicorn's own loggers when they run in this process.

    Text leaves a logging set up by someone else (a harness, a logging config, Flask's debug
    mode) alone; JSON adds its handler anyway, so every record is JSON."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _MARK, False)]
    if not ours and (log_format == "json" or not (debug or root.handlers)):
        handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _MARK, True)
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
        if root.level > logging.INFO:
            root.setLevel(logging.INFO)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(formatter(log_format))
    werkzeug = logging.getLogger("werkzeug")
    if not any(isinstance(f, QueryStringFilter) for f in werkzeug.filters):
        werkzeug.addFilter(QueryStringFilter())
    if log_format == "json":
        for name in ("gunicorn.error", "gunicorn.access"):
            for handler in logging.getLogger(name).handlers:
                handler.setFormatter(JsonFormatter())
