"""The client_credentials grant: machine-to-machine tokens for registered APIs (Auth0's model,
with RFC 8707 ``resource`` as an alias of ``audience``). The token comes from the one issuing
pipeline (``tokens/issue.py``), which runs Auth0's hook and then ``customize_access_token``.
Nothing here waits for the database: the audit event (with the token's ``jti``) goes to the
spool before the answer (``audit.record_soon``), and the client's last use is written at most
once a minute.

Two doors lead here: Authlib's endpoint (``ClientCredentialsGrant``, every request) and the
lean lane (``protocol/lean_token.py``, the common well-formed request). Both check the request
with ``check_request`` and issue with ``issue_token``, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from flask import current_app

from oauth import audit
from oauth.plugins.hookspecs import TokenContext
from oauth.protocol.grants import InvalidTargetError, require_grant_type
from oauth.protocol.responses import describable
from oauth.registry import apis, client_grants, clients
from oauth.scopes import parse as parse_scope
from oauth.storage.models import Api, Client
from oauth.tokens import issue

GRANT_TYPE = "client_credentials"


def check_request(client: Client, form: Mapping, resources: list[str]) -> tuple[Api, list[str]]:
    """The API and the scopes of a client-credentials request by an authenticated ``client``;
    raises the RFC's OAuth2Error when the client, the API or a scope is not allowed."""
    require_grant_type(client, GRANT_TYPE)
    identifier = _api_identifier(form.get("audience"), resources)
    api = apis.cached_api(identifier)
    client_grant = client_grants.cached_grant(client, api) if api is not None else None
    if client_grant is None:
        raise InvalidTargetError(
            f"This client is not authorized for the API '{describable(identifier)}'."
        )
    requested = parse_scope(form.get("scope"))
    granted = list(client_grant.scopes or [])
    outside = [s for s in requested if s not in granted]
    if outside:
        raise InvalidScopeError(
            f"Scope not granted to this client: {describable(' '.join(outside), 300)}."
        )
    return api, requested or granted


def _api_identifier(audience: str | None, resources: list[str]) -> str:
    if len(resources) > 1:
        raise InvalidTargetError("Ask for one API (resource) per token.")
    resource = resources[0] if resources else None
    if audience and resource and audience != resource:
        raise InvalidTargetError("'audience' and 'resource' name different APIs.")
    identifier = audience or resource or current_app.config.get("DEFAULT_API")
    if not identifier:
        raise InvalidRequestError("Name the API with 'audience' (or 'resource').")
    return identifier


def issue_token(
    client: Client, api: Api, scopes: list[str], auth_method: str, request, *, ip=audit.FROM_REQUEST
) -> dict:
    """Every hook, then the signed token; then the audit event, spooled before the answer (a
    client that received the token has its event; ``ip``: the Flask request's by default). Raises TokenDenied /
    PluginError from the hooks, before any write."""
    context = TokenContext(
        client=client,
        user=None,
        grant_type=GRANT_TYPE,
        authentication_method=auth_method,
        scopes=list(scopes),
        audience=api.identifier,
        request=request,
    )
    token, claims = issue.machine_token(context, ttl=api.token_ttl)  # every hook, no lock
    audit.record_soon(
        "token.issued",
        client_id=client.client_id,
        ip=ip,
        grant_type=GRANT_TYPE,
        audience=api.identifier,
        jti=claims["jti"],
    )
    clients.touch_last_used(client)
    return token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        resources = self.request.payload.datalist.get("resource", [])
        api, scopes = check_request(client, self.request.form, resources)
        self.request.client = client
        self.request.api = api
        self.request.scopes = scopes

    def create_token_response(self):
        request = self.request
        token = issue_token(
            request.client, request.api, request.scopes, request.auth_method, request
        )
        return 200, token, self.TOKEN_RESPONSE_HEADER
