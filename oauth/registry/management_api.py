"""The built-in API ``{ISSUER}/api/v1``: the management REST API (oauth/api) accepts
client-credentials tokens for it only. It exists without manual set-up (ensured at start-up
when ``MANAGEMENT_API`` is on), so ``flask apis grant CLIENT ISSUER/api/v1 --scope ...``
is all a machine client needs."""

from __future__ import annotations

from flask import current_app

from oauth.registry import apis
from oauth.storage.models import Api

NAME = "Portcullis Management API"
PATH = "/api/v1"
# Its own lifetime: a short ACCESS_TOKEN_TTL for user tokens (tests use 3 s) must not stop start-up.
BUILTIN_TOKEN_TTL = 3600
SCOPES = {
    "clients:read": "Read OAuth clients",
    "clients:write": "Create, change, delete OAuth clients and rotate their secrets",
    "apis:read": "Read APIs and client grants",
    "apis:write": "Create, change, delete APIs and client grants",
    "users:read": "Read user accounts",
    "users:write": "Create, change, disable, delete user accounts and reset their MFA",
    "keys:read": "Read the public part of signing keys",
    "keys:write": "Add, rotate and revoke signing keys",
    "consents:read": "Read the consents users gave applications",
    "consents:write": "Revoke consents",
    "audit:read": "Read the audit log",
}


def identifier() -> str:
    """This server's management API identifier: the ``aud`` its tokens must have."""
    return current_app.config["ISSUER"] + PATH


def is_management_api(api: Api) -> bool:
    return api.identifier == identifier()


def ensure() -> Api:
    """The built-in API, created or given its missing scopes when needed (idempotent, and
    safe when several workers start at once). Scopes an admin added are kept."""
    wanted = identifier()
    api = apis.get_api(wanted)
    if api is None:
        try:
            return apis.create_api(wanted, NAME, list(SCOPES.items()), token_ttl=BUILTIN_TOKEN_TTL)
        except apis.ApiError:
            api = apis.get_api(wanted)  # another worker created it meanwhile
            if api is None:
                raise
    missing = [(value, text) for value, text in SCOPES.items() if value not in api.scope_values]
    if missing:
        apis.update_api(api, scopes=[*api.scopes, *missing])
    return api
