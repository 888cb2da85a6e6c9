"""The plugin API: hook specifications, the ``hookimpl`` marker and the errors plugins raise.

A plugin is a module (a ``*.py`` file in ``plugins/`` or an installed package with a
``portcullis`` entry point) with functions decorated by ``@hookimpl`` whose names are the
hooks below. Every hook is optional. The plugin guide is ``docs/plugins.md``.

Order: when several plugins implement a hook they run one after another, each seeing the
result of the previous ones: ``tryfirst`` implementations first, then the rest in load order
(files in ``plugins/`` alphabetically, then entry points alphabetically), then built-ins
(registered ``trylast``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pluggy

from oauth.storage.models import Client, OAuthSession, User

PROJECT = "portcullis"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# TokenDenied errors and the HTTP status each answers with.
DENIAL_STATUS = {
    "invalid_request": 400,
    "invalid_scope": 400,
    "invalid_target": 400,
    "unauthorized_client": 400,
    "access_denied": 403,
}


# Claims no hook may change: they say who issued the token, to whom, for whom and when, and
# tie it to the session that revocation ends.
PROTECTED_CLAIMS = ("iss", "sub", "iat", "exp", "nbf", "jti", "client_id", "session_id")
# An ID token also binds the client (aud), the request (nonce), the access token (at_hash)
# and the sign-in (auth_time, acr): a relying party checks each of them.
ID_TOKEN_PROTECTED_CLAIMS = (
    *PROTECTED_CLAIMS,
    "aud",
    "nonce",
    "at_hash",
    "auth_time",
    "acr",
    "sid",
)


@dataclass
class TokenContext:
    """What a token hook learns about the token being issued.

    ``client`` is the client the token is for (``client_id``, ``name``, ``metadata``);
    ``user`` is ``None`` for client-credentials tokens; ``grant_type`` is
    ``authorization_code``, ``refresh_token`` or ``client_credentials``;
    ``authentication_method`` is how the client authenticated (``client_secret_basic``,
    ``client_secret_post``, ``none``); ``scopes`` is a list of str; ``audience`` the ``aud``
    (an API identifier, or ``DEFAULT_AUDIENCE`` for user tokens); ``request`` the Authlib
    request (``None`` in a dry run); ``session`` the OAuth session of a user token;
    ``dry_run`` is true under ``flask plugins try`` (nothing is issued or saved).
    """

    client: Client
    user: User | None
    grant_type: str
    authentication_method: str
    scopes: list[str]
    audience: str
    request: Any = None
    session: OAuthSession | None = None
    dry_run: bool = False


class TokenDenied(Exception):
    """Raise from a token hook to refuse the token with an OAuth error.

    ``error`` is one of ``invalid_request``, ``invalid_scope``, ``invalid_target``,
    ``unauthorized_client`` (400) or ``access_denied`` (403); ``description`` is sent to the
    client as ``error_description``. Nothing of the request is persisted.
    """

    def __init__(self, error: str = "access_denied", description: str = "The token was refused."):
        if error not in DENIAL_STATUS:
            raise ValueError(
                f"TokenDenied error must be one of {sorted(DENIAL_STATUS)}, not {error!r}"
            )
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = DENIAL_STATUS[error]


class SignupDenied(Exception):
    """Raise from ``before_user_created`` to refuse an account; the message is shown to the user."""


class DeletionDenied(Exception):
    """Raise from ``before_user_deleted`` to keep an account; the message is shown to whoever
    asked (the user on the settings page, the admin, the CLI)."""


class PortcullisHookspecs:
    @hookspec
    def customize_access_token(
        self, claims: dict[str, Any], context: TokenContext
    ) -> dict[str, Any] | None:
        """Change the claims of every access token, user and machine, before it is signed.

        Supabase's *custom access token hook*. ``claims`` holds the claims so far (read them,
        do not mutate them); return a dict of claims to merge (a value of ``None`` sets the
        claim to null) or ``None`` to change nothing. ``context`` carries ``client``
        (``client_id``, ``name``, ``metadata``), ``user`` (``None`` for client credentials),
        ``grant_type``, ``authentication_method``, ``scopes`` (list of str), ``audience``
        (str) and ``request``. The claims ``iss sub iat exp nbf jti client_id session_id`` are
        protected: changing one fails the request with ``server_error`` (the plugin is named in
        the server log). Raise ``TokenDenied`` to refuse.
        """

    @hookspec
    def customize_client_credentials_token(
        self, client: Client, scope: list[str], audience: str, context: TokenContext
    ) -> dict[str, Any] | None:
        """Auth0's *client credentials exchange hook*: shape a machine-to-machine token.

        ``client`` is the authenticated client, ``scope`` the scopes granted so far (list of
        str), ``audience`` the API identifier. Return ``{"scope": [...], "<claim>": value}``:
        ``scope``, when present, replaces the token's scopes (it may add scopes beyond the
        client grant); every other key is merged into the claims (protected claims excepted).
        Runs before ``customize_access_token``. Raise ``TokenDenied`` to refuse.
        """

    @hookspec
    def customize_id_token(
        self, claims: dict[str, Any], context: TokenContext
    ) -> dict[str, Any] | None:
        """Change the claims of an ID token (only issued with the ``openid`` scope).

        Same contract as ``customize_access_token``: return claims to merge; the protected
        claims (``iss sub iat exp nbf jti client_id session_id`` and, in ID tokens, ``aud nonce
        at_hash auth_time acr``) cannot change.
        """

    @hookspec
    def userinfo_claims(
        self, claims: dict[str, Any], user: User, scopes: list[str]
    ) -> dict[str, Any] | None:
        """Change what ``/oauth/userinfo`` returns for ``user`` with the token's ``scopes``.

        Return claims to merge; ``sub`` cannot change.
        """

    @hookspec
    def register_scopes(self) -> dict[str, str] | None:
        """Declare extra scopes: ``{"scope": "plain words shown on the consent page"}``.

        Registered scopes may be requested at ``/oauth/authorize`` and appear in discovery.
        Called once at start-up.
        """

    @hookspec
    def before_user_created(self, user: User) -> None:
        """Inspect a new account before it is saved; raise ``SignupDenied(message)`` to refuse.

        ``user`` is not yet in the database (``user.email``, ``user.name``...); it may be
        modified (e.g. ``user.app_metadata``). Applies to sign-up, the CLI and the admin pages.
        """

    @hookspec
    def before_user_deleted(self, user: User, via: str) -> None:
        """Hear of an account about to be deleted; raise ``DeletionDenied(message)`` to keep it.

        ``user`` is still in the database, nothing is deleted yet and no database transaction
        is open, so the hook may call other services or delete the plugin's own data. ``via``
        is ``settings`` (the user), ``admin``, ``cli`` or ``api`` (the management REST API).
        Any other exception also keeps the account (the failure is logged).
        """

    @hookspec
    def on_event(self, event: dict[str, Any]) -> None:
        """Observe an audit event after its transaction committed.

        ``event`` has ``type``, ``created_at`` (ISO 8601), ``user_id``, ``client_id``, ``ip``
        and ``details``. Events include ``login.succeeded``, ``login.failed``,
        ``consent.granted``, ``consent.denied``, ``token.issued``,
        ``refresh_token.reuse_detected``, ``grant.revoked``... A failing ``on_event`` is
        logged and counted; it never breaks the request. A client-credentials ``token.issued``
        is spooled first: it is heard within ``AUDIT_SPOOL_FLUSH_SECONDS``, from the flusher's
        thread (no request context).
        """


__all__ = [
    "DeletionDenied",
    "ID_TOKEN_PROTECTED_CLAIMS",
    "PROTECTED_CLAIMS",
    "PortcullisHookspecs",
    "SignupDenied",
    "TokenContext",
    "TokenDenied",
    "hookimpl",
    "hookspec",
]
