"""Authlib grants, tightened to OAuth 2.1. They only do storage and the checks Authlib's
defaults lack (S256-only PKCE for every client, code replay, refresh rotation with reuse
detection); Authlib does request parsing, client authentication and error responses."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import time

from authlib.common.encoding import urlsafe_b64encode
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from flask import current_app

from oauth import audit
from oauth.registry import clients
from oauth.scopes import parse as parse_scope
from oauth.security import sha256_hex
from oauth.storage.db import for_update
from oauth.storage.models import (
    AuthorizationRequest,
    Consent,
    OAuthSession,
    RefreshToken,
    User,
    utcnow,
)
from oauth.tokens import issue as tokens

CODE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class InvalidTargetError(OAuth2Error):
    """RFC 8707: the requested resource is not valid for this client or request."""

    error = "invalid_target"


def s256(verifier: str) -> str:
    return urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode()


def _require_grant_type(client, grant_type: str) -> None:
    if not client.check_grant_type(grant_type):
        raise UnauthorizedClientError(f"This client may not use grant_type={grant_type}.")


def _authenticate(grant, grant_type: str, parameter: str):
    """The authenticated client, allowed this grant type, and the grant's required parameter."""
    client = grant.authenticate_token_endpoint_client()
    _require_grant_type(client, grant_type)
    value = grant.request.form.get(parameter)
    if not value:
        raise InvalidRequestError(f"Missing '{parameter}'.")
    return client, value


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self):
        client, code = _authenticate(self, "authorization_code", "code")
        row = for_update(
            AuthorizationRequest.select().where(AuthorizationRequest.code_hash == sha256_hex(code))
        ).first()
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The authorization code is invalid.")
        if row.status == "consumed":
            self._revoke_what_the_code_issued(row)
            raise InvalidGrantError("The authorization code was already used.")
        if row.status != "approved" or row.expires_at < utcnow():
            raise InvalidGrantError("The authorization code has expired.")
        self._check_redirect_uri(row)
        self._check_code_verifier(row)
        resource = self.request.form.get("resource")
        if resource and resource != row.resource:
            raise InvalidTargetError("'resource' differs from the authorization request.")
        user = User.get_or_none(User.id == row.user_id)
        if user is None or user.disabled:
            raise InvalidGrantError("The user of this authorization code is not active.")
        self.request.client = client
        self.request.user = user
        self.request.authorization_code = row

    def _check_redirect_uri(self, row: AuthorizationRequest) -> None:
        sent = self.request.form.get("redirect_uri")
        if sent is None and row.redirect_uri_sent:
            raise InvalidGrantError(
                "'redirect_uri' is required: it was in the authorization request."
            )
        if sent is not None and sent != row.redirect_uri:
            raise InvalidGrantError("'redirect_uri' differs from the authorization request.")

    def _check_code_verifier(self, row: AuthorizationRequest) -> None:
        verifier = self.request.form.get("code_verifier")
        if not verifier:
            raise InvalidGrantError("Missing 'code_verifier' (PKCE is required).")
        if not CODE_VERIFIER.match(verifier):
            raise InvalidRequestError("Malformed 'code_verifier'.")
        if not hmac.compare_digest(s256(verifier), row.code_challenge):
            raise InvalidGrantError("The code verifier does not match the code challenge.")

    def _revoke_what_the_code_issued(self, row: AuthorizationRequest) -> None:
        if row.session_id:
            session = OAuthSession.get_or_none(OAuthSession.id == row.session_id)
            if session is not None:
                tokens.revoke_session(session, "code_replay")
        audit.record("code.replayed", user_id=row.user_id, client_id=row.client_id)

    def create_token_response(self):
        row: AuthorizationRequest = self.request.authorization_code
        client, user = self.request.client, self.request.user
        session = OAuthSession.create(
            user=user,
            client=client,
            scope=row.scope,
            audience=row.resource or current_app.config["DEFAULT_AUDIENCE"],
            auth_time=row.auth_time or int(time.time()),
            amr=row.amr or ["pwd"],
        )
        row.status = "consumed"
        row.session_id = session.id
        row.save()
        token = tokens.issue_user_tokens(
            session=session,
            user=user,
            client=client,
            grant_type="authorization_code",
            authentication_method=self.request.auth_method,
            nonce=row.nonce,
            request=self.request,
        )
        Consent.update(last_used_at=utcnow()).where(
            (Consent.user == user) & (Consent.client == client)
        ).execute()
        clients.touch_last_used(client)
        audit.record(
            "token.issued",
            user_id=user.id,
            client_id=client.client_id,
            grant_type="authorization_code",
        )
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self):
        client, plain = _authenticate(self, "refresh_token", "refresh_token")
        row = for_update(
            RefreshToken.select().where(RefreshToken.token_hash == sha256_hex(plain))
        ).first()
        if row is None:
            raise InvalidGrantError("The refresh token is invalid.")
        session = for_update(OAuthSession.select().where(OAuthSession.id == row.session_id)).first()
        if session is None or session.client_id != client.client_id:
            raise InvalidGrantError("The refresh token is invalid.")
        if session.revoked_at is not None:
            raise InvalidGrantError("The refresh token was revoked.")
        user = User.get_or_none(User.id == session.user_id)
        if user is None or user.disabled:
            raise InvalidGrantError("The user of this refresh token is not active.")
        requested = parse_scope(self.request.form.get("scope"))
        if requested and not set(requested) <= set(session.scopes):
            raise InvalidScopeError("The requested scope exceeds what was granted.")
        self.request.client = client
        self.request.user = user
        self.request.refresh_token = row
        self.request.refresh_token_plain = plain
        self.request.oauth_session = session
        self.request.narrowed_scopes = requested or None

    def create_token_response(self):
        row: RefreshToken = self.request.refresh_token
        plain: str = self.request.refresh_token_plain
        session: OAuthSession = self.request.oauth_session
        client, user = self.request.client, self.request.user
        if row.rotated_at is None:
            next_plain = tokens.rotate_refresh_token(row, plain)
        else:
            next_plain = self._replay(row, plain, session)
        session.last_used_at = utcnow()
        session.save()
        token = tokens.issue_user_tokens(
            session=session,
            user=user,
            client=client,
            grant_type="refresh_token",
            authentication_method=self.request.auth_method,
            scopes=self.request.narrowed_scopes,
            refresh_token=next_plain,
            request=self.request,
        )
        Consent.update(last_used_at=utcnow()).where(
            (Consent.user == user) & (Consent.client == client)
        ).execute()
        clients.touch_last_used(client)
        audit.record(
            "token.issued", user_id=user.id, client_id=client.client_id, grant_type="refresh_token"
        )
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def _replay(self, row: RefreshToken, plain: str, session: OAuthSession) -> str:
        """A rotated token came back: a concurrent retry (within the interval) gets the current
        pair; anything later is treated as theft and ends the whole session."""
        interval = int(current_app.config["REFRESH_TOKEN_REUSE_INTERVAL"])
        if interval > 0 and utcnow() - row.rotated_at <= dt.timedelta(seconds=interval):
            live = tokens.live_successor(row, plain)
            if live is not None:
                return live
        tokens.revoke_session(session, "refresh_token_reuse")
        audit.record(
            "refresh_token.reuse_detected", user_id=session.user_id, client_id=session.client_id
        )
        raise InvalidGrantError("The refresh token was already used; the session has been revoked.")
