"""Protocol endpoints that answer clients in JSON (RFC 6749 error shapes, no CSRF, no cookies)."""

from __future__ import annotations

import contextlib

from flask import Blueprint, jsonify, request

from oauth.plugins.hookspecs import TokenDenied
from oauth.plugins.host import PluginError
from oauth.plugins.host import host as plugin_host
from oauth.protocol.server import authorization_server
from oauth.ratelimit import limit_failed_client_auth
from oauth.storage.db import write_transaction
from oauth.tokens.claims import userinfo_claims
from oauth.tokens.jose import InvalidTokenError
from oauth.tokens.verify import verify_access_token

bp = Blueprint("api", __name__, url_prefix="/oauth")

JSON_PATHS = (
    "/oauth/token",
    "/oauth/userinfo",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/register",
)


@bp.after_request
def _cors(response):
    """Browser apps (SPAs with PKCE) call these endpoints cross-origin. No cookies are involved:
    clients authenticate with their own credentials or bearer tokens, so any origin may call."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def oauth_error(status: int, error: str, description: str, headers: dict | None = None):
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.route("/token", methods=["POST"])
@limit_failed_client_auth
def token():
    # One transaction: a refused or failing plugin rolls everything back (no code consumed,
    # no refresh token rotated); OAuth errors are answers, and what they recorded is kept.
    # client_credentials writes only its audit row, last: it needs no lock for its reads.
    machine = request.form.get("grant_type") == "client_credentials"
    try:
        with contextlib.nullcontext() if machine else write_transaction():
            return authorization_server().create_token_response()
    except TokenDenied as denial:
        return oauth_error(denial.status_code, denial.error, denial.description)
    except PluginError as failure:
        return oauth_error(500, "server_error", failure.description)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("access_token")
    return None


def _bearer_challenge(
    error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    parts = ['Bearer realm="portcullis"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return ", ".join(parts)


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    token = bearer_token()
    if not token:
        return oauth_error(
            401, "invalid_token", "Missing bearer token.", {"WWW-Authenticate": _bearer_challenge()}
        )
    try:
        verified = verify_access_token(token)
    except InvalidTokenError:
        description = "The access token is invalid, expired or revoked."
        return oauth_error(
            401, "invalid_token", description,
            {"WWW-Authenticate": _bearer_challenge("invalid_token", description)},
        )  # fmt: skip
    if verified.user is None or "openid" not in verified.scopes:
        description = "UserInfo needs a user access token with the openid scope."
        return oauth_error(
            403, "insufficient_scope", description,
            {"WWW-Authenticate": _bearer_challenge("insufficient_scope", description, "openid")},
        )  # fmt: skip
    try:
        claims = plugin_host().userinfo_claims(
            userinfo_claims(verified.user, verified.scopes), verified.user, verified.scopes
        )
    except PluginError as failure:
        return oauth_error(500, "server_error", failure.description)
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response
