"""What protocol endpoints answer: RFC 6749 JSON errors, bearer tokens and their challenges."""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import current_app, jsonify, request

from oauth.plugins.hookspecs import TokenDenied
from oauth.plugins.host import PluginError

# Paths that answer clients in JSON, errors included (never an HTML page).
JSON_PATHS = (
    "/oauth/token",
    "/oauth/userinfo",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/register",
)

# The client learns that a plugin failed, never which one: that is in the server log.
PLUGIN_FAILED = "The server could not complete the request; see the server log."
HOOK_ERRORS = (TokenDenied, PluginError)  # what a token or UserInfo hook may raise


def hook_error(error: Exception) -> tuple[int, dict]:
    """The status and RFC 6749 body answering one of ``HOOK_ERRORS``: a plugin's refusal as
    it worded it, a plugin's failure as a 500 that does not name the plugin."""
    if isinstance(error, TokenDenied):
        return error.status_code, error_body(error.error, error.description)
    return 500, error_body("server_error", PLUGIN_FAILED)


def error_body(error: str, description: str) -> dict:
    return {"error": error, "error_description": description}


def oauth_error(status: int, error: str, description: str, headers: dict | None = None):
    """An RFC 6749 §5.2 error response, never cached."""
    response = jsonify(error_body(error, description))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def describable(value: str, limit: int = 200) -> str:
    """``value`` (from the request) as an ``error_description`` may quote it: RFC 6749 §5.2
    allows printable ASCII except '"' and '\\' (Authlib raises on anything else: a 500)."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in value[:limit])


def no_store(payload: dict, status: int = 200):
    """A JSON answer holding credentials: neither the client nor a proxy may cache it."""
    response = jsonify(payload)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def bearer_token(*, form: bool = True) -> str | None:
    """The RFC 6750 bearer token of this request: the header, or (``form``) a form field."""
    token = header_bearer_token(request.headers.get("Authorization"))
    if token:
        return token
    if (
        form
        and request.method == "POST"
        and request.mimetype == "application/x-www-form-urlencoded"
    ):
        return request.form.get("access_token")
    return None


def header_bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), else None."""
    scheme, _, value = (authorization or "").partition(" ")
    value = value.strip()
    return value if value and scheme.lower() == "bearer" else None


def basic_client_id() -> str | None:
    """The client id of this request's Basic credentials (None without any).

    ValueError when they cannot be decoded (not base64, not UTF-8): the caller answers
    ``invalid_client``; nothing may assume well-formed credentials.
    """
    try:
        client_id, _ = extract_basic_authorization(request.headers)
    except (ValueError, UnicodeError) as error:
        raise ValueError("malformed Basic credentials") from error
    return client_id


def bearer_challenge(
    error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    """An RFC 6750 §3 ``WWW-Authenticate`` value."""
    parts = ['Bearer realm="portcullis"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


def invalid_token(description: str, *, presented: bool = True):
    """401 ``invalid_token``; without a presented token the challenge names no error (§3.1)."""
    challenge = bearer_challenge("invalid_token", description) if presented else bearer_challenge()
    return oauth_error(401, "invalid_token", description, {"WWW-Authenticate": challenge})


# --- authorization responses (RFC 6749 §4.1.2, RFC 9207 iss) ---------------------------


def _issuer() -> str:
    return current_app.config["ISSUER"]


def error_location(redirect_uri: str, error: str, description: str, state: str | None) -> str:
    params = [("error", error), ("error_description", description)]
    if state is not None:
        params.append(("state", state))
    params.append(("iss", _issuer()))
    return add_params_to_uri(redirect_uri, params)


def success_location(redirect_uri: str, code: str, state: str | None) -> str:
    params = [("code", code)]
    if state is not None:
        params.append(("state", state))
    params.append(("iss", _issuer()))
    return add_params_to_uri(redirect_uri, params)
