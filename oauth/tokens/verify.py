"""Checking access tokens we issued: signature, expiry, issuer, and that their grant is alive."""

from __future__ import annotations

from dataclasses import dataclass

import peewee
from flask import current_app

from oauth import logs
from oauth.security import lookup_key
from oauth.storage.compiled import joined, row_by
from oauth.storage.models import OAuthSession, RevokedAccessToken, User
from oauth.tokens import keys
from oauth.tokens.jose import InvalidTokenError


@dataclass
class VerifiedToken:
    claims: dict
    user: User | None
    session: OAuthSession | None

    @property
    def scopes(self) -> list[str]:
        return (self.claims.get("scope") or "").split()


def verify_access_token(token: str) -> VerifiedToken:
    """The token's claims when it is live; raises InvalidTokenError otherwise.

    A user token dies with its OAuth session (revoked grant, reuse detection, code replay),
    with its user (deleted or disabled) and when its ``jti`` is denylisted (RFC 7009), not
    only at ``exp``.
    """
    if not token or len(token) > 16384:
        raise InvalidTokenError("malformed token")
    claims = keys.verify_jwt(token, typ="at+jwt")
    if claims.get("iss") != current_app.config["ISSUER"]:
        raise InvalidTokenError("token from another issuer")
    jti = lookup_key(claims.get("jti"))
    session_id = claims.get("session_id")
    logs.note(client_id=claims.get("client_id"))  # for the request's log line
    if not session_id:
        if jti is not None and row_by(RevokedAccessToken.jti, jti) is not None:
            raise InvalidTokenError("token revoked")
        return VerifiedToken(claims, None, None)
    # One query for the session, its user and the jti's denylisting, compiled once
    # (storage/compiled.py), as it runs on every UserInfo and introspection request.
    found = joined((User, OAuthSession), "verify.session", _session, str(session_id), jti)
    user, session = found[0] if found else (None, None)
    if session is None or session.jti_revoked or session.revoked_at is not None:
        raise InvalidTokenError("token revoked")
    if user.disabled or user.id != str(claims.get("sub")):
        raise InvalidTokenError("user not active")
    logs.note(user_id=user.id)
    return VerifiedToken(claims, user, session)


def _session(session_id, jti):
    denylisted = RevokedAccessToken.select(RevokedAccessToken.jti).where(
        RevokedAccessToken.jti == jti
    )
    query = User.select(User, OAuthSession, peewee.fn.EXISTS(denylisted).alias("jti_revoked"))
    return query.join(OAuthSession).where(OAuthSession.id == session_id)
