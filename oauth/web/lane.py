"""What every lean lane (``token_lane.py``, ``resource_lane.py``) does around its answer, as
Flask would around a view: the app context, the hook statistics' flush of the after_request
hook, and on an exception the log line and a 500 that never shows the details."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Flask

from oauth.plugins.host import host as plugin_host
from oauth.protocol.lean_token import Answer
from oauth.web.errors import MESSAGES

log = logging.getLogger(__name__)

SERVER_ERROR = {"error": "server_error", "error_description": MESSAGES[500]}


def answer_in_app(
    app: Flask, environ, answer: Callable[..., Answer | None], *args
) -> Answer | None:
    """``answer(*args)`` in ``app``'s context: its Answer, or None (Flask answers)."""
    try:
        with app.app_context():
            result = answer(*args)
            if result is not None:
                plugin_host().stats.maybe_flush()
            return result
    except Exception:  # what Flask would do: log it, answer 500 (never the details)
        log.exception(
            "Exception on %s [%s]", environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        )
        return Answer(500, SERVER_ERROR)


def origin(environ) -> str:
    """``scheme://host`` of the request, as the client addressed it."""
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    return f"{environ['wsgi.url_scheme']}://{host}"
