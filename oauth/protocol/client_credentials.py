"""The client_credentials grant: machine-to-machine tokens for registered APIs (Auth0's model,
with RFC 8707 ``resource`` as an alias of ``audience``). The token comes from the one issuing
pipeline (``tokens/issue.py``), which runs Auth0's hook and then ``customize_access_token``.
Nothing here waits for the database: the audit event (with the token's ``jti``) goes to the
spool before the answer (``audit.record_soon``), and the client's last use is written at most
once a minute."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from flask import current_app

from oauth import audit
from oauth.plugins.hookspecs import TokenContext
from oauth.protocol.grants import InvalidTargetError, require_grant_type
from oauth.protocol.responses import describable
from oauth.registry import apis, client_grants, clients
from oauth.scopes import parse as parse_scope
from oauth.tokens import issue


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        require_grant_type(client, "client_credentials")
        identifier = self._api_identifier()
        api = apis.cached_api(identifier)
        client_grant = client_grants.cached_grant(client, api) if api is not None else None
        if client_grant is None:
            raise InvalidTargetError(
                f"This client is not authorized for the API '{describable(identifier)}'."
            )
        requested = parse_scope(self.request.form.get("scope"))
        granted = list(client_grant.scopes or [])
        outside = [s for s in requested if s not in granted]
        if outside:
            raise InvalidScopeError(
                f"Scope not granted to this client: {describable(' '.join(outside), 300)}."
            )
        self.request.client = client
        self.request.api = api
        self.request.scopes = requested or granted

    def _api_identifier(self) -> str:
        audience = self.request.form.get("audience")
        resources = self.request.payload.datalist.get("resource", [])
        if len(resources) > 1:
            raise InvalidTargetError("Ask for one API (resource) per token.")
        resource = resources[0] if resources else None
        if audience and resource and audience != resource:
            raise InvalidTargetError("'audience' and 'resource' name different APIs.")
        identifier = audience or resource or current_app.config.get("DEFAULT_API")
        if not identifier:
            raise InvalidRequestError("Name the API with 'audience' (or 'resource').")
        return identifier

    def create_token_response(self):
        client, api = self.request.client, self.request.api
        context = TokenContext(
            client=client,
            user=None,
            grant_type="client_credentials",
            authentication_method=self.request.auth_method,
            scopes=list(self.request.scopes),
            audience=api.identifier,
            request=self.request,
        )
        token, claims = issue.machine_token(context, ttl=api.token_ttl)  # every hook, no lock
        audit.record_soon(
            "token.issued",
            client_id=client.client_id,
            grant_type="client_credentials",
            audience=api.identifier,
            jti=claims["jti"],
        )
        clients.touch_last_used(client)
        return 200, token, self.TOKEN_RESPONSE_HEADER
