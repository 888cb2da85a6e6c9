"""Authlib AuthorizationServer wiring: client lookup, grants, client authentication errors."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.rfc6749.errors import (
    InsecureTransportError,
    InvalidClientError,
    InvalidRequestError,
)
from flask import Flask, current_app
from flask import request as flask_request

from oauth import logs
from oauth.protocol import grants
from oauth.protocol.client_credentials import ClientCredentialsGrant
from oauth.protocol.endpoints import register_endpoints
from oauth.protocol.responses import describable
from oauth.registry import clients
from oauth.storage.models import Client


class AuthorizationServer(FlaskAuthorizationServer):
    def authenticate_client(self, request, methods, endpoint="token"):
        # RFC 6749 §5.2: failed client authentication is always 401 with WWW-Authenticate here,
        # whichever method the client tried, and one description whether or not the client
        # exists (Authlib's "does not exist" would let anyone enumerate client ids).
        try:
            client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            error.status_code = 401
            error.description = "Client authentication failed."
            raise
        logs.note(client_id=client.client_id)  # for the request's log line
        return client

    def create_token_response(self, request=None):
        try:
            return self._token_response(request)
        except InsecureTransportError as error:  # plain http to a host that is not loopback
            return self.handle_response(*error())

    def _token_response(self, request):
        form = flask_request.form
        if not form.get("grant_type"):
            return self._refuse(request, "Missing 'grant_type'.")
        # RFC 6749 §3.2: no parameter more than once (RFC 8707 allows several 'resource').
        repeated = [name for name, values in form.lists() if len(values) > 1 and name != "resource"]
        if repeated:
            return self._refuse(
                request, f"'{describable(repeated[0], 64)}' was sent more than once."
            )
        return super().create_token_response(request)

    def _refuse(self, request, description: str):
        return self.handle_error_response(
            self.create_oauth2_request(request), InvalidRequestError(description)
        )

    def handle_response(self, status_code, payload, headers):
        response = super().handle_response(status_code, payload, headers)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response


def query_client(client_id: str) -> Client | None:
    return clients.cached_client(client_id)


def save_token(token, request):  # tokens are stored by the grants themselves
    return None


def init_app(app: Flask) -> AuthorizationServer:
    server = AuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_grant(grants.AuthorizationCodeGrant)
    server.register_grant(grants.RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    register_endpoints(server)
    app.extensions["portcullis.authorization_server"] = server
    app.extensions["portcullis.grant_types"] = [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    return server


def authorization_server() -> AuthorizationServer:
    return current_app.extensions["portcullis.authorization_server"]


__all__ = ["AuthorizationServer", "authorization_server", "init_app"]
