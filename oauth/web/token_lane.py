"""The token endpoint's lean lane as WSGI middleware, inside the request instruments (so the
request id, the log line and the metrics are the same) and in front of Flask.

A POST to ``/oauth/token`` with a small urlencoded body is read here; when
``protocol/lean_token.py`` can answer it (a well-formed request of an authenticated client) the
answer goes out from here, with every header Flask would add; otherwise the body is put back
and Flask answers, unchanged. ``LEAN_TOKEN_LANE = False`` sends every request to Flask.
"""

from __future__ import annotations

import io

from flask import Flask
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES

from oauth import compact_json, logs
from oauth.protocol import lean_token
from oauth.web import issuer_host
from oauth.web.headers import security_headers
from oauth.web.lane import answer_in_app, origin
from oauth.web.resource_lane import ResourceLane
from oauth.web.wellknown import DocumentLane

ENDPOINT = "api.token"


class TokenLane:
    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if not (
            lean_token.eligible(
                environ.get("REQUEST_METHOD", ""),
                environ.get("PATH_INFO", ""),
                environ.get("CONTENT_TYPE"),
                environ.get("CONTENT_LENGTH"),
            )
            and self.app.config["LEAN_TOKEN_LANE"]
        ):
            return self.wsgi_app(environ, start_response)
        length = int(environ["CONTENT_LENGTH"])  # digits only: checked by eligible()
        body = environ["wsgi.input"].read(length)
        form = lean_token.parse_form(body) if len(body) == length else None
        answer = self._answer(environ, form) if form is not None else None
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.wsgi_app(environ, start_response)
        logs.note_endpoint(ENDPOINT)
        issuer_host.check_environ(self.app, environ)
        data = compact_json.dumps(answer.payload)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            *answer.headers,
            ("Access-Control-Allow-Origin", "*"),
            *security_headers(self.app.config),
        ]
        start_response(f"{answer.status} {HTTP_STATUS_CODES[answer.status]}", headers)
        return [data]

    def _answer(self, environ, form: dict) -> lean_token.Answer | None:
        request_origin = origin(environ)
        return answer_in_app(
            self.app, environ, lean_token.answer,
            form, environ.get("HTTP_AUTHORIZATION"), request_origin,
            request_origin + _path(environ), EnvironHeaders(environ), environ.get("REMOTE_ADDR"),
        )  # fmt: skip


def _path(environ) -> str:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    return f"{path}?{query}" if query else path


def init_app(app: Flask, instruments) -> None:
    """Put the lanes between the request instruments and Flask: the token endpoint's, the
    well-known documents' (``web/wellknown.py``) and UserInfo's and introspection's
    (``web/resource_lane.py``)."""
    instruments.wsgi_app = DocumentLane(
        app, TokenLane(app, ResourceLane(app, instruments.wsgi_app))
    )
