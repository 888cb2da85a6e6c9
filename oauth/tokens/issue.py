"""The one token issuing pipeline: base claims -> plugin hooks -> protected-claim guard ->
sign. Every grant (authorization code, refresh token, client credentials) and ``flask plugins
try`` (a dry run, which signs nothing and counts no hook call) go through here.

The guard runs inside the plugin host as each hook's changes are merged
(``oauth.plugins.host``). Nothing here writes while hooks run: the rows of the grant (session,
refresh token) are written by the grants afterwards, in their own short write transaction.
"""

from __future__ import annotations

import time

from oauth.plugins.hookspecs import TokenContext
from oauth.plugins.host import CC_HOOK
from oauth.plugins.host import host as plugin_host
from oauth.tokens import claims as base
from oauth.tokens import keys
from oauth.tokens.jose import at_hash
from oauth.tokens.refresh import new_refresh_token

ACCESS_TOKEN_TYP = "at+jwt"
ID_TOKEN_TYP = "JWT"


def access_claims(
    context: TokenContext, now: int, *, ttl: int | None = None, until: str = ""
) -> dict:
    """The claims of the access token ``context`` describes, after every hook.

    Client credentials (no user) run Auth0's hook first, then ``customize_access_token``;
    ``until=CC_HOOK`` stops after the first (a dry run of that hook). ``ttl`` is the API's.
    """
    host = plugin_host()
    if context.user is None:
        scopes, extra = host.customize_client_credentials(
            context.client, context.scopes, context.audience, context
        )
        context.scopes = scopes
        claims = base.machine_access_token_claims(
            client=context.client, audience=context.audience, scopes=scopes, ttl=ttl, now=now
        )
        claims.update(extra)
        if until == CC_HOOK:
            return claims
    else:
        claims = base.user_access_token_claims(
            user=context.user,
            client=context.client,
            session=context.session,
            scopes=context.scopes,
            now=now,
        )
    return host.customize_access_token(claims, context)


def id_token_claims(
    context: TokenContext, now: int, *, nonce: str | None, access_token: str | None
) -> dict:
    """The claims of an ID token (``openid`` only), after ``customize_id_token``."""
    claims = base.id_token_claims(
        user=context.user,
        client=context.client,
        scopes=context.scopes,
        auth_time=context.session.auth_time if context.session else now,
        nonce=nonce,
        at_hash=at_hash(access_token) if access_token else None,
        now=now,
        sid=context.session.browser_sid if context.session else None,
        amr=context.session.amr if context.session else None,
        claims_request=context.session.claims if context.session else None,
    )
    return plugin_host().customize_id_token(claims, context)


def id_token_alg(client) -> str:
    """The client's registered ``id_token_signed_response_alg``; RS256 (OIDC's default)."""
    return (client.metadata or {}).get("id_token_signed_response_alg") or "RS256"


def _bearer(claims: dict, now: int, scopes: list[str]) -> dict:
    return {
        "access_token": keys.sign_jwt(claims, typ=ACCESS_TOKEN_TYP),
        "token_type": "Bearer",
        "expires_in": claims["exp"] - now,
        "scope": claims.get("scope", " ".join(scopes)),
    }


def machine_token(context: TokenContext, *, ttl: int) -> tuple[dict, dict]:
    """The token response of a client acting for itself (client credentials), and the claims
    it signed (their ``jti`` names the token in the audit log)."""
    now = int(time.time())
    claims = access_claims(context, now, ttl=ttl)
    return _bearer(claims, now, context.scopes), claims


def user_tokens(context: TokenContext, *, nonce: str | None = None) -> tuple[dict, dict]:
    """The signed tokens for a user (an access token and, with ``openid``, an ID token), and
    the access token's claims (their ``jti`` names the token in the audit log).

    Every hook of a user token runs here and nothing is written, so the grant calls this
    before its write transaction (no lock is held while a hook, perhaps the HTTP hook, runs)
    and then stores its rows and adds the refresh token (``add_refresh_token``) in it.
    """
    now = int(time.time())
    claims = access_claims(context, now)
    response = _bearer(claims, now, context.scopes)
    if "openid" in context.scopes:
        id_claims = id_token_claims(
            context, now, nonce=nonce, access_token=response["access_token"]
        )
        alg = id_token_alg(context.client)
        response["id_token"] = keys.sign_jwt(id_claims, typ=ID_TOKEN_TYP, alg=alg)
    return response, claims


def add_refresh_token(
    response: dict, context: TokenContext, *, refresh_token: str | None = None
) -> dict:
    """In the grant's transaction: the refresh token, when the client may refresh (a new one
    of ``context.session``, a stored session, unless the grant rotated one)."""
    if context.client.check_grant_type("refresh_token"):
        if refresh_token is None:
            refresh_token = new_refresh_token(context.session)
        response["refresh_token"] = refresh_token
    return response


def dry_run(hook: str, context: TokenContext, *, ttl: int) -> dict:
    """The claims ``hook``'s chain produces for ``context``; nothing is signed or counted."""
    context.dry_run = True
    now = int(time.time())
    with plugin_host().dry_run():
        if hook == "customize_id_token":
            return id_token_claims(context, now, nonce=None, access_token=None)
        return access_claims(context, now, ttl=ttl, until=hook)
