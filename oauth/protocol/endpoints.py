"""Authlib endpoints for RFC 7009 revocation and RFC 7662 introspection."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as BaseRevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as BaseIntrospectionEndpoint
from flask import current_app

from oauth import audit
from oauth.registry import resource_servers
from oauth.security import lookup_key, sha256_hex
from oauth.storage.compiled import row_by
from oauth.storage.models import OAuthSession, RefreshToken, RevokedAccessToken, User, utcnow
from oauth.tokens import keys, refresh
from oauth.tokens.issue import ACCESS_TOKEN_TYP
from oauth.tokens.jose import InvalidTokenError
from oauth.tokens.verify import verify_access_token

ACCESS_TOKEN = "access_token"
REFRESH_TOKEN = "refresh_token"
MAX_TOKEN_LENGTH = 16384
NO_STORE = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


@dataclass
class AccessTokenRecord:
    """A JWT access token whose signature and expiry verified."""

    claims: dict

    def check_client(self, client) -> bool:
        return self.claims.get("client_id") == client.client_id


@dataclass
class RefreshTokenRecord:
    """A stored refresh token and its OAuth session."""

    row: RefreshToken
    session: OAuthSession

    def check_client(self, client) -> bool:
        return self.session.client_id == client.client_id


TokenRecord = AccessTokenRecord | RefreshTokenRecord


def _token_param(request) -> str:
    token = request.form.get("token")
    if not token:
        raise InvalidRequestError("Missing 'token'.")
    return token


def _lookup_order(hint: str | None) -> tuple[str, str]:
    # RFC 7009 §2.1 / RFC 7662 §2.1: the hint only orders the search; a wrong or unknown
    # hint must not stop it.
    if hint == REFRESH_TOKEN:
        return REFRESH_TOKEN, ACCESS_TOKEN
    return ACCESS_TOKEN, REFRESH_TOKEN


def _find_refresh_token(token: str) -> RefreshTokenRecord | None:
    # Compiled once (storage/compiled.py): every refresh-token introspection runs these.
    row = row_by(RefreshToken.token_hash, sha256_hex(token))
    if row is None:
        return None
    session = row_by(OAuthSession.id, row.session_id)
    if session is None:
        return None
    return RefreshTokenRecord(row, session)


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and len(token) <= MAX_TOKEN_LENGTH


class RevocationEndpoint(BaseRevocationEndpoint):
    """RFC 7009. A refresh token ends its whole OAuth session; an access token is denylisted
    until it expires. Unknown tokens and other clients' tokens are silently ignored."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def authenticate_token(self, request, client):
        token = _token_param(request)
        record = self.query_token(token, request.form.get("token_type_hint"))
        if record is None or not record.check_client(client):
            return None  # RFC 7009 §2.2: answer 200 and reveal nothing
        return record

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        for kind in _lookup_order(token_type_hint):
            if kind == REFRESH_TOKEN:
                record = _find_refresh_token(token_string)
            else:
                record = self._find_access_token(token_string)
            if record is not None:
                return record
        return None

    def _find_access_token(self, token: str) -> AccessTokenRecord | None:
        if not _looks_like_jwt(token):
            return None
        try:
            claims = keys.verify_jwt(token, typ=ACCESS_TOKEN_TYP)
        except InvalidTokenError:
            return None  # expired or not ours: nothing to revoke
        return AccessTokenRecord(claims)

    def revoke_token(self, token: TokenRecord, request) -> None:
        client_id = request.client.client_id
        if isinstance(token, RefreshTokenRecord):
            refresh.revoke_session(token.session, "revoked_by_client")
            audit.record(
                "token.revoked",
                user_id=token.session.user_id,
                client_id=client_id,
                token_type=REFRESH_TOKEN,
            )
            return
        claims = token.claims
        jti = lookup_key(claims.get("jti"))
        if jti is None:
            return
        now = utcnow()
        expires_at = dt.datetime.fromtimestamp(claims["exp"], dt.UTC).replace(tzinfo=None)
        RevokedAccessToken.delete().where(RevokedAccessToken.expires_at < now).execute()
        RevokedAccessToken.insert(
            jti=jti, expires_at=expires_at, revoked_at=now
        ).on_conflict_ignore().execute()
        audit.record(
            "token.revoked",
            user_id=claims.get("sub") if claims.get("session_id") else None,
            client_id=client_id,
            token_type=ACCESS_TOKEN,
        )

    def create_endpoint_response(self, request):
        client = self.authenticate_endpoint_client(request)
        token = self.authenticate_token(request, client)
        if token is not None:
            self.revoke_token(token, request)
        return 200, "", [("Cache-Control", "no-store")]


# --- RFC 7662 introspection: two doors (Authlib's endpoint below, and the lean lane in
# protocol/lean_resource.py) both answer with ``introspection``, so they cannot disagree.


def introspection(client, token: str, hint: str | None) -> dict:
    """The RFC 7662 answer to an authenticated ``client`` for ``token``: the claims of a live
    token it may see, else ``{"active": false}``. In the app context; reads only."""
    payload = query_token(token, hint)
    if payload is None or not check_permission(payload, client):
        return {"active": False}
    return payload


def check_permission(token: dict, client) -> bool:
    """The client a token was issued to, or (an access token) the resource server of an API
    in its ``aud``, may see it."""
    if token.get("client_id") == client.client_id:
        return True
    if token.get("token_type") == REFRESH_TOKEN:
        return False  # a refresh token is only ever for its own client
    return resource_servers.serves(client, token.get("aud"))


def query_token(token_string: str, token_type_hint: str | None) -> dict | None:
    """The introspection payload of a live token, else None."""
    for kind in _lookup_order(token_type_hint):
        if kind == REFRESH_TOKEN:
            payload = _refresh_token_payload(token_string)
        else:
            payload = _access_token_payload(token_string)
        if payload is not None:
            return payload
    return None


def _access_token_payload(token: str) -> dict | None:
    if not _looks_like_jwt(token):
        return None
    try:
        verified = verify_access_token(token)
    except InvalidTokenError:
        return None
    claims = verified.claims
    payload = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"):
        if name in claims:
            payload[name] = claims[name]
    if verified.user is not None:
        payload["username"] = verified.user.email
    return payload


def _refresh_token_payload(token: str) -> dict | None:
    record = _find_refresh_token(token)
    if record is None or record.row.rotated_at is not None:
        return None
    session = record.session
    if session.revoked_at is not None:
        return None
    user = row_by(User.id, session.user_id)
    if user is None or user.disabled:
        return None
    created = record.row.created_at.replace(tzinfo=dt.UTC)
    return {
        "active": True,
        "token_type": REFRESH_TOKEN,
        "scope": session.scope,
        "client_id": session.client_id,
        "sub": user.id,
        "username": user.email,
        "iss": current_app.config["ISSUER"],
        "iat": int(created.timestamp()),
    }


class IntrospectionEndpoint(BaseIntrospectionEndpoint):
    """RFC 7662 for confidential clients. A token is active only to the client it was issued
    to and, for an access token, to the resource server of an API in its ``aud``
    (``registry/resource_servers.py``); to every other client it is ``{"active": false}``,
    like an unknown token (RFC 7662 §2.2), so nothing about it leaks."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def create_endpoint_response(self, request):
        client = self.authenticate_endpoint_client(request)
        token = _token_param(request)
        return 200, introspection(client, token, request.form.get("token_type_hint")), NO_STORE


def register_endpoints(server) -> None:
    """Register the revocation and introspection endpoints on the AuthorizationServer."""
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
