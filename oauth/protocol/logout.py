"""OpenID Connect RP-Initiated Logout 1.0: the ``end_session_endpoint`` (``/oauth/logout``).

``parse`` checks the request: ``id_token_hint`` (an ID token we signed, expired ones too; its
``aud`` names the client), ``client_id`` (must agree with the hint), ``post_logout_redirect_uri``
(compared exactly with the client's ``post_logout_redirect_uris``; refused without a client),
``state`` (echoed to that URI). ``ui_locales`` is ignored. A request that does not prove which
client asks (no valid hint), or whose hint names another user than the signed-in one, is
confirmed by the user first (``needs_confirmation``). ``perform`` ends the browser session
(back-channel logout tokens follow) and, when the client registered ``logout_revokes_tokens``,
revokes its OAuth sessions of that sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import current_app

from oauth import audit
from oauth.accounts.login import sign_out
from oauth.registry import logout_settings
from oauth.registry.clients import get_client
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import Client, OAuthSession, User
from oauth.tokens import keys, refresh
from oauth.tokens.issue import ID_TOKEN_TYP
from oauth.tokens.jose import InvalidTokenError

MAX_PARAMETER_LENGTH = 8192
PARAMETERS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")


class LogoutError(Exception):
    """A logout request we refuse; shown on an error page (never redirected)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class LogoutRequest:
    client: Client | None
    hint: dict | None  # the verified claims of id_token_hint
    redirect_uri: str | None  # a registered post_logout_redirect_uri
    state: str | None
    parameters: dict[str, str]  # what was sent, for the confirmation form

    @property
    def hint_sub(self) -> str | None:
        return self.hint.get("sub") if self.hint else None


def _parameters(values) -> dict[str, str]:
    found = {}
    for name in PARAMETERS:
        value = values.get(name)
        if value is None or value == "":
            continue
        if len(values.getlist(name)) > 1:
            raise LogoutError(f"{name} was sent more than once.")
        if len(value) > MAX_PARAMETER_LENGTH or "\x00" in value:
            raise LogoutError(f"{name} is too long or malformed.")
        found[name] = value
    return found


def verify_hint(token: str) -> dict:
    """The claims of an ID token we issued (its signature and issuer checked, expiry not)."""
    try:
        claims = keys.verify_jwt(token, typ=ID_TOKEN_TYP, allow_expired=True)
    except InvalidTokenError:
        raise LogoutError("id_token_hint is not an ID token issued by this server.") from None
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) == 1:
        audience = audience[0]
    if (
        claims.get("iss") != current_app.config["ISSUER"]
        or not isinstance(audience, str)
        or not isinstance(claims.get("sub"), str)
    ):
        raise LogoutError("id_token_hint is not an ID token issued by this server.")
    return {**claims, "aud": audience}


def _client(parameters: dict[str, str], hint: dict | None) -> Client | None:
    client_id = parameters.get("client_id")
    if hint is not None:
        if client_id is not None and client_id != hint["aud"]:
            raise LogoutError("client_id does not match the id_token_hint's audience.")
        client_id = hint["aud"]
    if client_id is None:
        return None
    client = get_client(client_id)
    if client is None:
        raise LogoutError("Unknown client.")
    return client


def parse(values) -> LogoutRequest:
    """Check a logout request (GET query or POST form); LogoutError when it is refused."""
    parameters = _parameters(values)
    hint = verify_hint(parameters["id_token_hint"]) if "id_token_hint" in parameters else None
    client = _client(parameters, hint)
    redirect_uri = parameters.get("post_logout_redirect_uri")
    if redirect_uri is not None:
        if client is None:
            raise LogoutError(
                "post_logout_redirect_uri needs an id_token_hint or a client_id naming the client."
            )
        if redirect_uri not in logout_settings.post_logout_redirect_uris(client):
            raise LogoutError("post_logout_redirect_uri is not registered for this client.")
    return LogoutRequest(client, hint, redirect_uri, parameters.get("state"), parameters)


def needs_confirmation(request: LogoutRequest, user: User | None) -> bool:
    """Ask the user unless the request proves the client and names the signed-in user."""
    if user is None:
        return False  # nobody to sign out: nothing a forged request could do
    return request.hint is None or request.hint_sub != user.id


def _revoke_client_sessions(client: Client, user_id: str, sid: str | None) -> int:
    with write_transaction():
        query = OAuthSession.select().where(
            (OAuthSession.user == user_id)
            & (OAuthSession.client == client.client_id)
            & OAuthSession.revoked_at.is_null()
        )
        if sid:
            query = query.where(OAuthSession.browser_sid == sid)
        sessions = list(for_update(query))
        for session in sessions:
            refresh.revoke_session(session, "logout")
        if sessions:
            audit.record(
                "logout.tokens_revoked",
                user_id=user_id,
                client_id=client.client_id,
                sessions_revoked=len(sessions),
            )
    return len(sessions)


def perform(request: LogoutRequest, user: User | None) -> None:
    """End the browser session and, if the client asked for it, its OAuth session."""
    client = request.client
    if client is not None and logout_settings.revokes_tokens(client):
        if request.hint is not None:
            _revoke_client_sessions(client, request.hint["sub"], request.hint.get("sid"))
        elif user is not None:
            _revoke_client_sessions(client, user.id, user.browser_sid)
    sign_out()


def redirect_location(request: LogoutRequest) -> str | None:
    """The registered post-logout URI with ``state`` added, or None (our own page)."""
    if request.redirect_uri is None:
        return None
    if request.state is None:
        return request.redirect_uri
    parts = urlsplit(request.redirect_uri)
    query = "&".join(filter(None, [parts.query, urlencode({"state": request.state})]))
    return urlunsplit(parts._replace(query=query))
