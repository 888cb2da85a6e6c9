"""A client's logout settings (OIDC RP-Initiated Logout 1.0 and Back-Channel Logout 1.0).

They live in ``Client.metadata`` under their registration names, checked here whenever the
metadata is written (CLI, admin page, dynamic registration):

- ``post_logout_redirect_uris``: where ``/oauth/logout`` may send the browser back; matched
  exactly (the redirect URI rules apply to what may be registered);
- ``backchannel_logout_uri``: where logout tokens are POSTed (absolute http(s), no fragment;
  http only for loopback);
- ``backchannel_logout_session_required``: logout tokens must carry ``sid``;
- ``logout_revokes_tokens``: an RP-initiated logout also revokes this client's OAuth session
  of that sign-in (its refresh tokens). Default false: a logout ends the browser session only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from oauth.redirect_uris import LOOPBACK_HOSTS, redirect_uri_problem
from oauth.storage.models import Client

POST_LOGOUT_REDIRECT_URIS = "post_logout_redirect_uris"
BACKCHANNEL_LOGOUT_URI = "backchannel_logout_uri"
SESSION_REQUIRED = "backchannel_logout_session_required"
REVOKES_TOKENS = "logout_revokes_tokens"
FIELDS = (POST_LOGOUT_REDIRECT_URIS, BACKCHANNEL_LOGOUT_URI, SESSION_REQUIRED, REVOKES_TOKENS)
MAX_URIS = 20
MAX_URI_LENGTH = 2048


class LogoutSettingsError(ValueError):
    """Refused logout metadata; the message is safe to show."""


def _uris(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(uri, str) for uri in value):
        raise LogoutSettingsError(f"{POST_LOGOUT_REDIRECT_URIS} must be a list of strings")
    uris = list(dict.fromkeys(value))
    if len(uris) > MAX_URIS:
        raise LogoutSettingsError(f"at most {MAX_URIS} post-logout redirect URIs")
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise LogoutSettingsError(f"post-logout {problem}")
    return uris


def backchannel_uri_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URI_LENGTH:
        return f"{BACKCHANNEL_LOGOUT_URI} must be a URL of at most {MAX_URI_LENGTH} characters"
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value) or "#" in value:
        return f"{BACKCHANNEL_LOGOUT_URI} must not contain spaces or a fragment"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises ValueError for a malformed port
    except ValueError:
        return f"{BACKCHANNEL_LOGOUT_URI} {value!r} is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname or "*" in parts.netloc:
        return f"{BACKCHANNEL_LOGOUT_URI} {value!r} must be an absolute https URL"
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        return f"{BACKCHANNEL_LOGOUT_URI} {value!r} must use https (http only for loopback)"
    return None


def clean(metadata: dict) -> dict:
    """``metadata`` with its logout fields checked (absent or empty ones dropped)."""
    cleaned = dict(metadata)
    if cleaned.get(POST_LOGOUT_REDIRECT_URIS) in (None, []):
        cleaned.pop(POST_LOGOUT_REDIRECT_URIS, None)
    else:
        cleaned[POST_LOGOUT_REDIRECT_URIS] = _uris(cleaned[POST_LOGOUT_REDIRECT_URIS])
    if cleaned.get(BACKCHANNEL_LOGOUT_URI) in (None, ""):
        cleaned.pop(BACKCHANNEL_LOGOUT_URI, None)
    else:
        problem = backchannel_uri_problem(cleaned[BACKCHANNEL_LOGOUT_URI])
        if problem:
            raise LogoutSettingsError(problem)
    for flag in (SESSION_REQUIRED, REVOKES_TOKENS):
        if cleaned.get(flag) is None:
            cleaned.pop(flag, None)
        elif not isinstance(cleaned[flag], bool):
            raise LogoutSettingsError(f"{flag} must be true or false")
    return cleaned


def from_registration(body: dict) -> dict:
    """The logout fields of an RFC 7591 registration body (checked when the client is saved)."""
    return {field: body[field] for field in FIELDS if body.get(field) is not None}


def describe(client: Client) -> dict:
    """The client's logout fields, for its registration document and the admin page."""
    metadata = client.metadata or {}
    return {field: metadata[field] for field in FIELDS if field in metadata}


def post_logout_redirect_uris(client: Client) -> list[str]:
    return list((client.metadata or {}).get(POST_LOGOUT_REDIRECT_URIS) or [])


def backchannel_logout_uri(client: Client) -> str | None:
    return (client.metadata or {}).get(BACKCHANNEL_LOGOUT_URI) or None


def session_required(client: Client) -> bool:
    return bool((client.metadata or {}).get(SESSION_REQUIRED))


def revokes_tokens(client: Client) -> bool:
    return bool((client.metadata or {}).get(REVOKES_TOKENS))
