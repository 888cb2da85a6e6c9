"""The claims of every token type, before plugins see them."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import current_app

from oauth.storage.models import Client, OAuthSession, User

PASSWORD_METHOD = "pwd"
TOTP_METHOD = "totp"
RECOVERY_METHOD = "recovery"
WEBAUTHN_METHOD = "webauthn"
# amr methods that are a second factor (or a phishing-resistant one): they make a sign-in aal2.
SECOND_FACTOR_METHODS = frozenset({TOTP_METHOD, RECOVERY_METHOD, WEBAUTHN_METHOD})
AAL1, AAL2 = "aal1", "aal2"


def assurance_level(amr) -> str:
    """``aal2`` when the sign-in's methods (``amr``) include a second factor, else ``aal1``."""
    return AAL2 if SECOND_FACTOR_METHODS.intersection(amr or ()) else AAL1


# The claims a ``claims`` request (OIDC Core §5.5) may ask for, and the scope each belongs to
# (None: no scope; released as the token type says, acr and amr by the second-factor code).
CLAIM_SCOPES = {
    "sub": None, "auth_time": None, "acr": None, "amr": None,
    "email": "email", "email_verified": "email",
    "phone_number": "phone", "phone_number_verified": "phone",
    "name": "profile", "picture": "profile", "preferred_username": "profile",
    "updated_at": "profile",
}  # fmt: skip


def _is_https_url(value) -> bool:
    return isinstance(value, str) and value.lower().startswith("https://") and len(value) <= 2048


def _epoch(value: dt.datetime | None) -> int | None:
    return int(value.replace(tzinfo=dt.UTC).timestamp()) if value else None


def user_access_token_claims(
    *, user: User, client: Client, session: OAuthSession, scopes: list[str], now: int
) -> dict:
    """RFC 9068 access token of a user, with Supabase's claim set."""
    return {
        "iss": current_app.config["ISSUER"],
        "sub": user.id,
        "aud": session.audience,
        "exp": now + int(current_app.config["ACCESS_TOKEN_TTL"]),
        "iat": now,
        "jti": str(uuid.uuid4()),
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        "session_id": session.id,
        "email": user.email,
        "email_verified": bool(user.email_verified),
        "phone": user.phone,
        "role": "authenticated",
        "aal": assurance_level(session.amr),
        "amr": [
            {"method": method, "timestamp": session.auth_time}
            for method in (session.amr or ["pwd"])
        ],
        "app_metadata": user.app_metadata or {},
        "user_metadata": user.user_metadata or {},
        "is_anonymous": False,
    }


def machine_access_token_claims(
    *, client: Client, audience: str, scopes: list[str], ttl: int, now: int
) -> dict:
    """RFC 9068 access token of a client acting for itself (client_credentials)."""
    return {
        "iss": current_app.config["ISSUER"],
        "sub": client.client_id,
        "aud": audience,
        "exp": now + int(ttl),
        "iat": now,
        "jti": str(uuid.uuid4()),
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        "gty": "client-credentials",
    }


def scope_claims(user: User, scopes: list[str]) -> dict:
    """The OIDC standard claims the granted scopes release (ID token and UserInfo)."""
    claims: dict = {}
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = bool(user.email_verified)
    if "phone" in scopes and user.phone:
        claims["phone_number"] = user.phone
        claims["phone_number_verified"] = bool(user.phone_verified)
    if "profile" in scopes:
        metadata = user.user_metadata or {}
        claims["name"] = user.name or metadata.get("name") or ""
        picture = user.picture or metadata.get("picture") or metadata.get("avatar_url") or ""
        # Relying parties put it in <img src>: only an https URL, never javascript: or data:.
        claims["picture"] = picture if _is_https_url(picture) else ""
        claims["preferred_username"] = (
            metadata.get("preferred_username") or metadata.get("username") or user.email
        )
        claims["updated_at"] = _epoch(user.updated_at)
    return claims


def requested_claims(user: User, claims_request: dict | None, target: str) -> dict:
    """The claims a ``claims`` request asks for in ``target`` ("id_token" or "userinfo") that
    the user has. The consent covered their scopes (protocol/oidc.consent_scopes); a
    ``value``/``values`` does not change what is true, so it does not change the answer."""
    names = (claims_request or {}).get(target) or {}
    scopes = sorted({CLAIM_SCOPES[name] for name in names if CLAIM_SCOPES.get(name)})
    available = scope_claims(user, scopes)
    return {name: available[name] for name in names if name in available}


def id_token_claims(
    *,
    user: User,
    client: Client,
    scopes: list[str],
    auth_time: int,
    nonce: str | None,
    at_hash: str | None,
    now: int,
    sid: str | None = None,
    amr: list[str] | None = None,
    claims_request: dict | None = None,
) -> dict:
    claims = {
        "iss": current_app.config["ISSUER"],
        "sub": user.id,
        "aud": client.client_id,
        "exp": now + int(current_app.config["ACCESS_TOKEN_TTL"]),
        "iat": now,
        "auth_time": auth_time,
        "acr": assurance_level(amr),
    }
    if nonce:
        claims["nonce"] = nonce
    if at_hash:
        claims["at_hash"] = at_hash
    if sid:
        claims["sid"] = sid  # the browser session's OIDC sid (back-channel logout)
    claims.update(scope_claims(user, scopes))
    claims.update(requested_claims(user, claims_request, "id_token"))
    return claims


def userinfo_claims(user: User, scopes: list[str], claims_request: dict | None = None) -> dict:
    requested = requested_claims(user, claims_request, "userinfo")
    return {"sub": user.id, **scope_claims(user, scopes), **requested}
