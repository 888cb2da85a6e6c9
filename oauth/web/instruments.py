"""Every request's instruments: its id (``X-Request-ID``, kept when sane, echoed on every
response), its one log line (``portcullis.request``: the access log) and its metrics.

A WSGI middleware around the whole app, so 404s, 429s and 500s get the header and the line
too. The line has the path without its query string (queries carry codes, reset tokens,
state), the Flask endpoint, and the client and user the request was for when something
already knew them: ``oauth.logs.note`` (client authentication, bearer tokens, the
authorization request) or the signed-in user, if this request loaded the browser session.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request

from oauth import logs, metrics

request_log = logging.getLogger("portcullis.request")
EXTENSION = "portcullis.instruments"


class RequestInstruments:
    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        request_id = logs.request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        state, token = logs.begin(request_id)
        started = time.perf_counter()
        status = [500]  # what an exception escaping the app becomes

        def start(status_line: str, headers: list, exc_info=None):
            status[0] = int(status_line.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-ID", request_id))
            return start_response(status_line, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            _finish(environ, state, status[0], time.perf_counter() - started)
            logs.end(token)


def _finish(environ: dict, state: dict, status: int, seconds: float) -> None:
    method = environ.get("REQUEST_METHOD", "-")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    metrics.count_request(state["endpoint"], method, status, seconds)
    fields = {
        "request_id": state["request_id"],
        "method": logs.printable(method, 16),
        "path": logs.printable(path),
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        "endpoint": state["endpoint"],
        "client_id": state["client_id"],
        "user_id": state["user_id"],
    }
    request_log.info(
        "%s %s %s %.1fms request_id=%s client_id=%s user_id=%s",
        fields["method"],
        fields["path"],
        status,
        fields["duration_ms"],
        state["request_id"],
        logs.printable(state["client_id"] or "-"),
        state["user_id"] or "-",
        extra=fields,
    )


def _note_endpoint_and_user(exc=None) -> None:
    """At the end of the request (teardown: also after an error): the Flask endpoint, and
    the signed-in user if flask-login loaded one (never loaded here just for the log)."""
    if request.url_rule is not None:
        logs.note_endpoint(request.url_rule.endpoint)
    user = g.get("_login_user")
    if user is not None and getattr(user, "is_authenticated", False) and not logs.noted("user_id"):
        logs.note(user_id=user.id)


def init_app(app: Flask) -> None:
    """Before any other middleware is wrapped round the app (ProxyFix wraps this one)."""
    logs.configure(app.config["LOG_FORMAT"], debug=app.debug)
    app.teardown_request(_note_endpoint_and_user)
    app.wsgi_app = app.extensions[EXTENSION] = RequestInstruments(app.wsgi_app)
