"""Issuing and rotating tokens: access tokens (JWT), ID tokens (JWT), refresh tokens (opaque)."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from oauth.plugins.host import host as plugin_host
from oauth.security import random_token, sha256_hex
from oauth.storage.models import Client, OAuthSession, RefreshToken, User, utcnow
from oauth.tokens import claims as claim_builders
from oauth.tokens import keys
from oauth.tokens.jose import at_hash

ACCESS_TOKEN_TYP = "at+jwt"


@dataclass
class TokenContext:
    """What plugins learn about the token being issued (see oauth.hooks)."""

    client: Client
    user: User | None
    grant_type: str
    authentication_method: str
    scopes: list[str]
    audience: str
    request: Any = None
    session: OAuthSession | None = None
    extra: dict = field(default_factory=dict)


# --- refresh tokens -----------------------------------------------------------------------


def new_refresh_token(
    session: OAuthSession, parent: RefreshToken | None = None
) -> tuple[str, RefreshToken]:
    plain = random_token(32)
    row = RefreshToken.create(session=session, token_hash=sha256_hex(plain), parent=parent)
    return plain, row


def _successor_key(token: str) -> bytes:
    return hashlib.sha256(b"portcullis/refresh-successor\x00" + token.encode()).digest()


def seal_successor(token: str, successor: str) -> str:
    """Encrypt ``successor`` so that only a holder of ``token`` can read it back."""
    nonce = os.urandom(12)
    sealed = AESGCM(_successor_key(token)).encrypt(nonce, successor.encode(), None)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def open_successor(token: str, ciphertext: str) -> str:
    raw = base64.urlsafe_b64decode(ciphertext.encode())
    return AESGCM(_successor_key(token)).decrypt(raw[:12], raw[12:], None).decode()


def rotate_refresh_token(row: RefreshToken, plain: str) -> str:
    """Replace ``row`` by a new token of the same session; return the new token."""
    child_plain, _child = new_refresh_token(row.session, parent=row)
    row.rotated_at = utcnow()
    row.successor_ciphertext = seal_successor(plain, child_plain)
    row.save()
    return child_plain


def live_successor(row: RefreshToken, plain: str) -> str | None:
    """Follow a rotated token's successors to the live one (for replays within the interval)."""
    current_row, current_plain = row, plain
    for _ in range(64):
        if current_row.rotated_at is None:
            return current_plain
        if not current_row.successor_ciphertext:
            return None
        current_plain = open_successor(current_plain, current_row.successor_ciphertext)
        current_row = RefreshToken.get_or_none(RefreshToken.token_hash == sha256_hex(current_plain))
        if current_row is None:
            return None
    return None


def revoke_session(session: OAuthSession, reason: str) -> None:
    """End a token family: its refresh tokens are deleted, its access tokens stop being accepted."""
    if session.revoked_at is None:
        session.revoked_at = utcnow()
        session.revoked_reason = reason
        session.save()
    RefreshToken.delete().where(RefreshToken.session == session).execute()


# --- the token response -------------------------------------------------------------------


def issue_user_tokens(
    *,
    session: OAuthSession,
    user: User,
    client: Client,
    grant_type: str,
    authentication_method: str,
    scopes: list[str] | None = None,
    nonce: str | None = None,
    refresh_token: str | None = None,
    request: Any = None,
) -> dict:
    """The token response for a user: access token, refresh token (when the client may refresh)
    and, with ``openid``, an ID token."""
    now = int(time.time())
    scopes = scopes if scopes is not None else session.scopes
    context = TokenContext(
        client=client,
        user=user,
        grant_type=grant_type,
        authentication_method=authentication_method,
        scopes=list(scopes),
        audience=session.audience,
        request=request,
        session=session,
    )
    access_claims = claim_builders.user_access_token_claims(
        user=user, client=client, session=session, scopes=scopes, now=now
    )
    access_claims = plugin_host().customize_access_token(access_claims, context)
    access_token = keys.sign_jwt(access_claims, typ=ACCESS_TOKEN_TYP)
    response = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": access_claims["exp"] - now,
        "scope": access_claims.get("scope", " ".join(scopes)),
    }
    if client.check_grant_type("refresh_token"):
        if refresh_token is None:
            refresh_token, _row = new_refresh_token(session)
        response["refresh_token"] = refresh_token
    if "openid" in scopes:
        id_claims = claim_builders.id_token_claims(
            user=user,
            client=client,
            scopes=scopes,
            auth_time=session.auth_time,
            nonce=nonce,
            at_hash=at_hash(access_token),
            now=now,
        )
        id_claims = plugin_host().customize_id_token(id_claims, context)
        response["id_token"] = keys.sign_jwt(id_claims, typ="JWT")
    return response
