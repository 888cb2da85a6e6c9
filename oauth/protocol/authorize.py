"""The authorization endpoint's logic: validate a request, store it, and decide it.

Until the client and redirect URI are known good, errors are shown to the user (never
redirected); afterwards they go back to the client with ``error``, ``state`` and ``iss``.
A request is stored only for a signed-in user (``protocol/pending.py`` bounds the rest).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app, session
from werkzeug.datastructures import MultiDict

from oauth import audit, logs
from oauth.accounts import consents
from oauth.protocol import oidc, pending, resources
from oauth.protocol.assurance import needs_second_factor
from oauth.protocol.responses import error_location, success_location  # used by web/consent
from oauth.redirect_uris import LOOPBACK_HOSTS, redirect_uri_problem
from oauth.registry import clients, metadata_documents
from oauth.scopes import parse as parse_scope
from oauth.scopes import unknown as unknown_scopes
from oauth.security import lookup_key, random_token, sha256_hex
from oauth.storage.db import for_update, write_transaction
from oauth.storage.models import AuthorizationRequest, User, utcnow

CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
PROMPTS = {"none", "login", "consent", "select_account"}
SINGLE_PARAMS = (*pending.CARRIED, pending.ARRIVED)

MAX_AGE_LIMIT = 2**31 - 1  # seconds; a PostgreSQL integer column


class AuthorizationPageError(Exception):
    """An error shown on our own page: the client or redirect URI cannot be trusted."""

    def __init__(self, title: str, message: str):
        super().__init__(message)
        self.title = title
        self.message = message


@dataclass
class RedirectError(Exception):
    """An error sent back to the client's redirect URI."""

    redirect_uri: str
    error: str
    description: str
    state: str | None

    def location(self) -> str:
        return error_location(self.redirect_uri, self.error, self.description, self.state)


def validate_request(args: MultiDict) -> AuthorizationRequest:
    """Check a /oauth/authorize request and return it, not yet stored (``store`` does).

    Until the client and redirect URI are known good, problems are shown on an error page
    (``AuthorizationPageError``); after, they go back to the client (``RedirectError``),
    unless the client registered itself (``untrusted``): then the page too.
    """
    client, redirect_uri, redirect_uri_sent = _client_and_redirect_uri(args)
    logs.note(client_id=client.client_id)  # for the request's log line
    has_nul = any("\x00" in value for value in args.values())
    overlong = pending.too_long(args)
    state = None if has_nul or overlong == "state" else args.get("state")

    def fail(error: str, description: str):
        if untrusted(client):
            raise AuthorizationPageError("Invalid request", description)
        raise RedirectError(redirect_uri, error, description, state)

    if has_nul:
        fail("invalid_request", "Parameters may not contain NUL.")
    if overlong:
        limit = pending.PARAM_LIMITS[overlong]
        fail("invalid_request", f"Parameter '{overlong}' is longer than {limit} bytes.")

    _check_request_shape(args, client, fail)
    scopes = _scopes(args, redirect_uri_sent, fail)
    try:
        claims, expected_sub = oidc.parameters(args, scopes)
    except oidc.ParameterError as error:
        fail("invalid_request", str(error))
    challenge = _code_challenge(args, client, scopes, fail)
    prompts, max_age = _prompt_and_max_age(args, fail)
    resource = args.get("resource")
    problem = resources.resource_problem(resource) if resource is not None else None
    if problem:
        fail("invalid_target", problem)
    if resource == resources.default_audience():
        resource = None
    arrived = pending.arrival(args)
    row = AuthorizationRequest(
        id=random_token(24),
        client=client,
        redirect_uri=redirect_uri,
        redirect_uri_sent=redirect_uri_sent,
        scope=" ".join(scopes),
        state=state,
        nonce=args.get("nonce"),
        code_challenge=challenge,
        code_challenge_method="S256",
        resource=resource,
        prompt=" ".join(sorted(prompts)) or None,
        max_age=max_age,
        login_hint=args.get("login_hint") or None,
        acr_values=args.get("acr_values") or None,
        claims=claims,
        created_at=arrived,
        expires_at=arrived + dt.timedelta(seconds=int(current_app.config["AUTHORIZATION_TTL"])),
    )
    row.expected_sub = expected_sub  # not stored: checked before the request is
    return row


def store(row: AuthorizationRequest, user: User) -> None:
    """Keep a validated request for the signed-in ``user`` (in the caller's transaction)."""
    pending.store(row, user)


def resume_query(args: MultiDict, row: AuthorizationRequest) -> str:
    """The /oauth/authorize query that resumes ``row`` after an anonymous user signs in."""
    return pending.resume_query(args, row.created_at)


def _client_and_redirect_uri(args: MultiDict):
    """The client and the redirect URI to answer to (and whether the request named it)."""
    client_id = args.get("client_id")
    if len(args.getlist("client_id")) > 1 or len(args.getlist("redirect_uri")) > 1:
        raise AuthorizationPageError(
            "Invalid request", "The request repeats client_id or redirect_uri."
        )
    if not client_id:
        raise AuthorizationPageError("Invalid request", "The request has no client_id.")
    try:  # an https client_id is fetched here, outside any transaction (MCP)
        client = metadata_documents.resolve(client_id)
    except metadata_documents.MetadataDocumentError as error:
        raise AuthorizationPageError("Unusable application", str(error)) from None
    if client is None:
        raise AuthorizationPageError(
            "Unknown application", "No application is registered with this client_id."
        )
    redirect_uri = args.get("redirect_uri")
    if redirect_uri is None:
        redirect_uri = client.get_default_redirect_uri()
        if redirect_uri is None:
            raise AuthorizationPageError(
                "Invalid request", "redirect_uri is required: this application has several."
            )
        return client, redirect_uri, False
    if not client.check_redirect_uri(redirect_uri) or redirect_uri_problem(redirect_uri):
        raise AuthorizationPageError(
            "Invalid redirect URI", "The redirect_uri is not registered for this application."
        )
    return client, redirect_uri, True


def _check_request_shape(args: MultiDict, client, fail) -> None:
    for name in SINGLE_PARAMS:
        if len(args.getlist(name)) > 1:
            fail("invalid_request", f"Parameter '{name}' is repeated.")
    if "request" in args:
        fail("request_not_supported", "Request objects are not supported.")
    if "request_uri" in args:
        fail("request_uri_not_supported", "request_uri is not supported.")
    response_type = args.get("response_type")
    if not response_type:
        fail("invalid_request", "Missing 'response_type'.")
    if response_type != "code":
        fail("unsupported_response_type", "Only response_type=code is supported.")
    if args.get("response_mode") not in (None, "query"):
        fail("invalid_request", "Only response_mode=query is supported.")
    if not client.check_response_type("code"):
        fail("unauthorized_client", "This client may not use the authorization code grant.")


def _scopes(args: MultiDict, redirect_uri_sent: bool, fail) -> list[str]:
    scopes = parse_scope(args.get("scope")) or parse_scope(current_app.config["DEFAULT_SCOPE"])
    bad = unknown_scopes(scopes)
    if bad and "openid" in scopes:  # Core §3.1.2.1: SHOULD ignore unknown scope values
        scopes = [scope for scope in scopes if scope not in bad]
    elif bad:
        fail("invalid_scope", f"Unsupported scope: {' '.join(bad)}.")
    if "openid" in scopes and not redirect_uri_sent:  # Core §3.1.2.1: never guessed
        raise AuthorizationPageError("Invalid request", "redirect_uri is required (OpenID).")
    return scopes


def _code_challenge(args: MultiDict, client, scopes: list[str], fail) -> str:
    challenge = args.get("code_challenge")
    if not challenge and not args.get("code_challenge_method") and clients.pkce_optional(client):
        # OAuth 2.1 §7.5.1: without PKCE, an OpenID client's nonce protects the code.
        if "openid" in scopes and not args.get("nonce"):
            fail("invalid_request", "nonce is required when the request has no PKCE.")
        return ""
    if not challenge:
        fail(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        )
    if args.get("code_challenge_method") != "S256":
        fail("invalid_request", "code_challenge_method must be S256 (plain is not allowed).")
    if not CODE_CHALLENGE.match(challenge):
        fail("invalid_request", "Malformed code_challenge.")
    return challenge


def _prompt_and_max_age(args: MultiDict, fail) -> tuple[set[str], int | None]:
    prompts = set((args.get("prompt") or "").split())
    if prompts - PROMPTS:
        fail("invalid_request", f"Unsupported prompt: {' '.join(sorted(prompts - PROMPTS))}.")
    if "none" in prompts and len(prompts) > 1:
        fail("invalid_request", "prompt=none cannot be combined with other values.")
    max_age = args.get("max_age")
    if max_age is None:
        return prompts, None
    if not (max_age.isascii() and max_age.isdigit()) or int(max_age) > MAX_AGE_LIMIT:
        fail("invalid_request", f"max_age must be a whole number of seconds up to {MAX_AGE_LIMIT}.")
    return prompts, int(max_age)


# --- deciding -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What to do next with the user's browser."""

    kind: str  # "redirect" (to the client), "login", "mfa" (a second factor), "consent"
    location: str | None = None


def needs_login(row: AuthorizationRequest, user: User | None) -> bool:
    """prompt=login and an elapsed max_age ask for a sign-in made after the request arrived."""
    if user is None:
        return True
    login_at = float(session.get("login_at", 0))
    if login_at >= row.created_at.replace(tzinfo=dt.UTC).timestamp():
        return False
    if "login" in (row.prompt or "").split():
        return True
    return row.max_age is not None and time.time() - login_at >= row.max_age


def load_pending(authorization_id: str | None) -> AuthorizationRequest:
    key = lookup_key(authorization_id)
    row = AuthorizationRequest.get_or_none(AuthorizationRequest.id == key) if key else None
    if row is None:
        raise AuthorizationPageError(
            "Request not found",
            "This authorization request does not exist or has expired. "
            "Go back to the application and try again.",
        )
    if row.status != "pending":
        raise AuthorizationPageError(
            "Request already handled", "This authorization request was already answered."
        )
    if row.expires_at < utcnow():
        raise AuthorizationPageError(
            "Request expired",
            "This authorization request expired. Go back to the application and try again.",
        )
    logs.note(client_id=row.client_id, user_id=row.user_id)
    return row


def untrusted(client) -> bool:
    """A self-registered client: its redirect URI was never checked by anyone (RFC 9700
    §4.11.2), so errors that need no user interaction are shown here, not sent there."""
    return client.registration_type == "dynamic"


def remembered_consent_may_answer(client, redirect_uri: str) -> bool:
    """RFC 8252 §8.6: a public client's identity is proven only by a claimed https redirect
    URI (not loopback), so only then may a remembered consent answer without a screen."""
    if not client.is_public:
        return True
    parts = urlsplit(redirect_uri)
    return parts.scheme == "https" and parts.hostname not in LOOPBACK_HOSTS


def _silent_error(row: AuthorizationRequest, user: User | None, error: str, description: str):
    """Answer a prompt=none request that cannot be answered silently."""
    if user is not None:  # only a signed-in user's request is stored
        _finish(row, user, approved=False)
    if untrusted(row.client):
        raise AuthorizationPageError("Sign-in needed", description)
    return Outcome("redirect", error_location(row.redirect_uri, error, description, row.state))


def decide(row: AuthorizationRequest, user: User | None) -> Outcome:
    """Continue a pending request for the browser's user: log in, ask consent, or answer."""
    prompts = set((row.prompt or "").split())
    if needs_login(row, user):
        if "none" in prompts:
            return _silent_error(row, user, "login_required", "The user is not signed in.")
        return Outcome("login")
    if row.user_id not in (None, user.id):
        raise AuthorizationPageError(
            "Wrong account", "This authorization request belongs to another user."
        )
    if needs_second_factor(row):
        if "none" in prompts:
            return _silent_error(row, user, "interaction_required", "A second factor is needed.")
        return Outcome("mfa")
    if _remembered(row, user, prompts):
        return Outcome("redirect", approve(row, user, remember=False))
    if "none" in prompts:
        return _silent_error(row, user, "consent_required", "The user has not granted this access.")
    if row.user_id is None:
        AuthorizationRequest.update(user=user).where(AuthorizationRequest.id == row.id).execute()
    return Outcome("consent")


def _remembered(row: AuthorizationRequest, user: User, prompts: set[str]) -> bool:
    """Whether a remembered consent answers this request without the consent page."""
    return (
        "consent" not in prompts
        and remembered_consent_may_answer(row.client, row.redirect_uri)
        and consents.covers(
            user, row.client_id, _consent_scopes(row), resources.audience_of(row.resource)
        )
    )


def _consent_scopes(row: AuthorizationRequest) -> list[str]:
    return oidc.consent_scopes(row.scopes, row.claims)


def _finish(row: AuthorizationRequest, user: User | None, *, approved: bool) -> None:
    AuthorizationRequest.update(status="approved" if approved else "denied", user=user).where(
        AuthorizationRequest.id == row.id
    ).execute()


def _lock_pending(row: AuthorizationRequest) -> AuthorizationRequest:
    """Re-read the request under a row lock: two decisions on one request cannot both win."""
    locked = for_update(
        AuthorizationRequest.select().where(AuthorizationRequest.id == row.id)
    ).first()
    if locked is None or locked.status != "pending":
        raise AuthorizationPageError(
            "Request already handled", "This authorization request was already answered."
        )
    return locked


def approve(row: AuthorizationRequest, user: User, *, remember: bool = True) -> str:
    """Issue the code (bound to client, redirect URI, PKCE, user, scopes, nonce, auth_time)."""
    with write_transaction():
        locked = _lock_pending(row)
        code = random_token(32)
        locked.status = "approved"
        locked.user = user
        locked.code_hash = sha256_hex(code)
        locked.auth_time = int(session.get("auth_time") or time.time())
        locked.amr = list(session.get("amr") or ["pwd"])
        locked.browser_sid = getattr(user, "browser_sid", None)  # the ID token's sid
        locked.save()
        if remember:
            consents.remember(
                user,
                locked.client_id,
                _consent_scopes(locked),
                resources.audience_of(locked.resource),
            )
    return success_location(locked.redirect_uri, code, locked.state)


def deny(row: AuthorizationRequest, user: User) -> str:
    with write_transaction():
        locked = _lock_pending(row)
        _finish(locked, user, approved=False)
        audit.record("consent.denied", user_id=user.id, client_id=locked.client_id)
    return error_location(
        locked.redirect_uri, "access_denied", "The user denied the request.", locked.state
    )
