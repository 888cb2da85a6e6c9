"""The lean lane of UserInfo and introspection as WSGI middleware, inside the request
instruments (the same request id, log line and metrics) and in front of Flask, like the token
endpoint's (``web/token_lane.py``).

When ``protocol/lean_resource.py`` can answer a request in full, the answer goes out from
here with every header the Flask view sends (the same JSON bytes too: Flask's for UserInfo,
Authlib's through Flask's for introspection); otherwise a body read is put back and Flask answers, unchanged.
``LEAN_TOKEN_LANE = False`` (the one setting of every lean lane) sends every request to Flask.
"""

from __future__ import annotations

import io

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from oauth import logs
from oauth.protocol import lean_resource
from oauth.protocol.lean_token import Answer, form_length
from oauth.web import issuer_host
from oauth.web.headers import security_headers
from oauth.web.lane import answer_in_app, origin

JSON = ("Content-Type", "application/json")
CORS = ("Access-Control-Allow-Origin", "*")
NO_STORE = ("Cache-Control", "no-store")


class ResourceLane:
    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._headers: dict[tuple, tuple[tuple[str, str], ...]] = {}
        self._lanes = {
            lean_resource.USERINFO_PATH: self._userinfo,
            lean_resource.INTROSPECTION_PATH: self._introspection,
        }

    def __call__(self, environ, start_response):
        lane = self._lanes.get(environ.get("PATH_INFO"))
        if lane is None or not self.app.config["LEAN_TOKEN_LANE"]:
            return self.wsgi_app(environ, start_response)
        return lane(environ, start_response)

    def _userinfo(self, environ, start_response):
        token = lean_resource.userinfo_token(
            environ.get("REQUEST_METHOD", ""),
            environ.get("QUERY_STRING"),
            environ.get("CONTENT_LENGTH"),
            environ.get("HTTP_TRANSFER_ENCODING"),
            environ.get("HTTP_AUTHORIZATION"),
        )
        answer = (
            answer_in_app(self.app, environ, lean_resource.userinfo_answer, token)
            if token
            else None
        )
        if answer is None:
            return self.wsgi_app(environ, start_response)
        body = self._flask_json(answer.payload)
        return self._send(environ, start_response, "api.userinfo", answer, body)

    def _introspection(self, environ, start_response):
        length = None
        if environ.get("REQUEST_METHOD") == "POST":
            length = form_length(
                environ.get("CONTENT_TYPE"), environ.get("CONTENT_LENGTH"), lean_resource.MAX_BODY
            )
        if length is None:
            return self.wsgi_app(environ, start_response)
        body = environ["wsgi.input"].read(length)
        form = lean_resource.strict_form(body) if len(body) == length else None
        answer = None
        if form is not None:
            answer = answer_in_app(
                self.app, environ, lean_resource.introspection_answer,
                form, environ.get("HTTP_AUTHORIZATION"), origin(environ),
            )  # fmt: skip
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.wsgi_app(environ, start_response)
        # Authlib's handle_response: flask.json.dumps, the app's provider (sorted keys)
        data = self.app.json.dumps(answer.payload).encode("utf-8")
        return self._send(environ, start_response, "api.introspect", answer, data)

    def _flask_json(self, payload: dict) -> bytes:
        """The bytes of Flask's ``jsonify(payload)`` (sorted keys, compact unless debugging,
        a final newline)."""
        provider = self.app.json
        compact = getattr(provider, "compact", None)
        if (compact is None and self.app.debug) or compact is False:
            text = provider.dumps(payload, indent=2)
        else:
            text = provider.dumps(payload, separators=(",", ":"))
        return (text + "\n").encode("utf-8")

    def _send(self, environ, start_response, endpoint: str, answer: Answer, body: bytes):
        logs.note_endpoint(endpoint)
        issuer_host.check_environ(self.app, environ)
        headers = [*self._constant_headers(answer), ("Content-Length", str(len(body)))]
        start_response(f"{answer.status} {HTTP_STATUS_CODES[answer.status]}", headers)
        return [body]

    def _constant_headers(self, answer: Answer) -> tuple[tuple[str, str], ...]:
        """Every header but the length: built once per kind of answer and HSTS setting."""
        key = (tuple(answer.headers), bool(self.app.config["SESSION_COOKIE_SECURE"]))
        headers = self._headers.get(key)
        if headers is None:
            extra = answer.headers or [NO_STORE]
            headers = self._headers[key] = (JSON, *extra, CORS, *security_headers(self.app.config))
        return headers
