"""The user grants of the token endpoint, Authlib subclasses tightened to OAuth 2.1:
authorization code (S256-only PKCE for every client, code replay revokes what the code issued)
and refresh token (rotation and reuse policy live in ``tokens/refresh.py``). They check the
request and write the grant's rows; the tokens come from ``tokens/issue.py``. Authlib parses
the request, authenticates the client and shapes error responses.

Three steps, so that no lock is held while a plugin hook (perhaps the HTTP hook) runs:
``validate_token_request`` checks the request with plain reads; ``create_token_response``
first builds and signs the tokens (every hook runs there, nothing is written), then opens one
short write transaction that locks the code or refresh token again, re-checks what may have
changed meanwhile (a concurrent redemption or rotation, a revoked session, a disabled user)
and writes. A hook that refuses or fails has therefore consumed nothing."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import peewee
from authlib.common.encoding import urlsafe_b64encode
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)

from oauth import audit, logs
from oauth.accounts import consents
from oauth.plugins.hookspecs import TokenContext
from oauth.protocol import grant_statements, resources
from oauth.registry import clients
from oauth.scopes import parse as parse_scope
from oauth.security import sha256_hex
from oauth.storage.compiled import execute, insert, joined, row_by
from oauth.storage.db import write_transaction
from oauth.storage.models import AuthorizationRequest, Client, OAuthSession, User, new_uuid, utcnow
from oauth.tokens import issue, refresh

CODE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class InvalidTargetError(OAuth2Error):
    """RFC 8707: the requested resource is not valid for this client or request."""

    error = "invalid_target"


def s256(verifier: str) -> str:
    return urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).decode()


def require_grant_type(client, grant_type: str) -> None:
    if not client.check_grant_type(grant_type):
        raise UnauthorizedClientError(f"This client may not use grant_type={grant_type}.")


def check_resource(grant, granted_audience: str) -> None:
    """RFC 8707 at the token endpoint: ``resource``, if sent, names the audience granted, and
    that audience is still a user-token audience (a registered API or DEFAULT_AUDIENCE)."""
    sent = grant.request.payload.datalist.get("resource", [])
    if len(sent) > 1:
        raise InvalidTargetError("Ask for one resource per token.")
    if sent and resources.audience_of(sent[0]) != granted_audience:
        raise InvalidTargetError("'resource' was not granted by this authorization.")
    if not resources.is_user_audience(granted_audience):
        raise InvalidTargetError("The resource of this grant is not a registered API.")


def _authenticate(grant, grant_type: str, parameter: str):
    """The authenticated client (by Authlib, or already by the lean lane: ``request.client``),
    allowed this grant type, and the grant's required parameter."""
    client = grant.request.client or grant.authenticate_token_endpoint_client()
    require_grant_type(client, grant_type)
    value = grant.request.form.get(parameter)
    if not value:
        raise InvalidRequestError(f"Missing '{parameter}'.")
    return client, value


def in_write_transaction(work):
    """``work()`` in one write transaction. An OAuth error it raises is raised after the
    commit, so what it recorded on the way (a revoked session, an audit row) is kept."""
    refusal = None
    with write_transaction():
        try:
            result = work()
        except OAuth2Error as error:
            refusal = error
    if refusal is not None:
        raise refusal
    return result


def _code(code_hash):
    query = AuthorizationRequest.select(AuthorizationRequest, User)
    query = query.join(User, peewee.JOIN.LEFT_OUTER, on=(AuthorizationRequest.user == User.id))
    return query.where(AuthorizationRequest.code_hash == code_hash)


def _active_user(user_id: str, description: str) -> User:
    user = row_by(User.id, user_id)
    if user is None or user.disabled:
        raise InvalidGrantError(description)
    return user


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INACTIVE_USER = "The user of this authorization code is not active."

    def validate_token_request(self):
        client, code = _authenticate(self, "authorization_code", "code")
        found = joined((AuthorizationRequest, User), "grants.code.find", _code, sha256_hex(code))
        row, user = found[0] if found else (None, None)
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The authorization code is invalid.")
        self._check_redeemable(row)
        self._check_redirect_uri(row)
        self._check_code_verifier(row)
        check_resource(self, resources.audience_of(row.resource))
        if user.id is None or user.disabled:  # no user: the join found none
            raise InvalidGrantError(self.INACTIVE_USER)
        self.request.client = client
        self.request.user = user
        self.request.authorization_code = row

    def _check_redeemable(self, row: AuthorizationRequest) -> None:
        """Refuse a used (replay: revoke what it issued) or expired code. Validation runs
        outside a transaction, so the replay's revocation gets its own."""
        if row.status == "consumed":
            in_write_transaction(lambda: self._refuse_replay(row.id))
        if row.status != "approved" or row.expires_at < utcnow():
            raise InvalidGrantError("The authorization code has expired.")

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
        if not row.code_challenge:  # a client registered with require_pkce=false sent none
            if verifier:
                raise InvalidGrantError("'code_verifier' without a code challenge.")
            return
        if not verifier:
            raise InvalidGrantError("Missing 'code_verifier' (PKCE is required).")
        if not CODE_VERIFIER.match(verifier):
            raise InvalidRequestError("Malformed 'code_verifier'.")
        if not hmac.compare_digest(s256(verifier), row.code_challenge):
            raise InvalidGrantError("The code verifier does not match the code challenge.")

    def _refuse_replay(self, row_id: str) -> None:
        """In a write transaction: revoke what the (locked, consumed) code issued."""
        row = row_by(AuthorizationRequest.id, row_id, locked=True)
        if row is not None and row.session_id:
            session = OAuthSession.get_or_none(OAuthSession.id == row.session_id)
            if session is not None:
                refresh.revoke_session(session, "code_replay")
        if row is not None:
            audit.record("code.replayed", user_id=row.user_id, client_id=row.client_id)
        raise InvalidGrantError("The authorization code was already used.")

    def create_token_response(self):
        row: AuthorizationRequest = self.request.authorization_code
        client = self.request.client
        session = OAuthSession(
            id=new_uuid(),
            user=self.request.user,
            client=client,
            scope=row.scope,
            audience=resources.audience_of(row.resource),
            auth_time=row.auth_time or int(time.time()),
            amr=row.amr or ["pwd"],
            browser_sid=row.browser_sid,
            claims=row.claims,
        )
        context = _context(self, "authorization_code", session, session.scopes)
        token, claims = issue.user_tokens(context, nonce=row.nonce)  # every hook, no lock
        # One step (a statement, a SQLite batch), else the careful transaction: the client's
        # "last used" is due, or the code changed since validation.
        if not grant_statements.redeemed(context, row.id, token):
            in_write_transaction(lambda: self._redeem(row.id, context, token))
        _issued(context, "authorization_code", claims)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def _redeem(self, row_id: str, context: TokenContext, token: dict) -> None:
        """In the write transaction: the code is still unused (else this is a replay, as a
        concurrent redemption that won is), then the session, the code and the refresh token."""
        row = row_by(AuthorizationRequest.id, row_id, locked=True)
        if row is None:
            raise InvalidGrantError("The authorization code is invalid.")
        if row.status == "consumed":
            self._refuse_replay(row.id)
        if row.status != "approved" or row.expires_at < utcnow():
            raise InvalidGrantError("The authorization code has expired.")
        user = _active_user(row.user_id, self.INACTIVE_USER)
        insert(context.session)
        execute("grants.code.consumed", grant_statements.consumed, context.session.id, row.id)
        issue.add_refresh_token(token, context)
        _used(user, context.client)


def _context(grant, grant_type: str, session: OAuthSession, scopes: list[str]) -> TokenContext:
    return TokenContext(
        client=grant.request.client,
        user=grant.request.user,
        grant_type=grant_type,
        authentication_method=grant.request.auth_method,
        scopes=list(scopes),
        audience=session.audience,
        request=grant.request,
        session=session,
    )


def _used(user: User, client: Client) -> None:
    """In the grant's write transaction: "last used" of the consent and of the client."""
    logs.note(user_id=user.id)  # the token's subject, for the request's log line
    consents.touch(user, client)
    clients.touch_last_used(client)


def _issued(context: TokenContext, grant_type: str, claims: dict) -> None:
    """After the commit, before the answer: the event of the token the client gets (spooled,
    as a client-credentials token's is: a client that received a token has its event)."""
    audit.record_soon(
        "token.issued",
        user_id=context.user.id,
        client_id=context.client.client_id,
        grant_type=grant_type,
        jti=claims["jti"],
    )


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INACTIVE_USER = "The user of this refresh token is not active."

    def validate_token_request(self):
        client, plain = _authenticate(self, "refresh_token", "refresh_token")
        row, session, user = refresh.find(plain, client)
        if not refresh.may_be_spent(row):
            # A replay past the reuse interval: no token to issue, so no hook to run first.
            in_write_transaction(lambda: refresh.spend(plain, client))
        check_resource(self, session.audience)
        if user.disabled:
            raise InvalidGrantError(self.INACTIVE_USER)
        requested = parse_scope(self.request.form.get("scope"))
        if requested and not set(requested) <= set(session.scopes):
            raise InvalidScopeError("The requested scope exceeds what was granted.")
        self.request.client = client
        self.request.user = user
        self.request.refresh_token_plain = plain
        self.request.oauth_session = session
        self.request.rotation = refresh.prepare(plain, row, session)
        self.request.narrowed_scopes = requested or None

    def create_token_response(self):
        session: OAuthSession = self.request.oauth_session
        scopes = self.request.narrowed_scopes or session.scopes
        context = _context(self, "refresh_token", session, scopes)
        token, claims = issue.user_tokens(context)  # every hook, before any lock
        rotation = self.request.rotation
        if grant_statements.rotated(context, rotation):  # one statement, or one SQLite batch
            issue.add_refresh_token(token, context, refresh_token=rotation.child)
        else:
            in_write_transaction(lambda: self._rotate(context, token))
        _issued(context, "refresh_token", claims)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def _rotate(self, context: TokenContext, token: dict) -> None:
        """In the write transaction (the one step was not taken or changed nothing): spend the
        token, locked again (a concurrent rotation meanwhile, a replay within the interval, or
        reuse), and add its successor. A disabled user's sessions are revoked with the user
        (accounts/admin.py), which ``spend`` sees under the lock."""
        plain, client = self.request.refresh_token_plain, self.request.client
        next_plain = refresh.spend(plain, client)
        issue.add_refresh_token(token, context, refresh_token=next_plain)
        _used(context.user, client)
