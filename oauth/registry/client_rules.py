"""What a client's metadata may be: names, redirect URIs, grant types, auth methods, web URIs,
and the RFC 7591 error code of each refusal. The registry (clients.py) and the metadata
documents (metadata_documents.py) both clean with these."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from oauth.redirect_uris import LOOPBACK_HOSTS, redirect_uri_problem
from oauth.registry import logout_settings

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
REGISTRATION_TYPES = ("manual", "dynamic")
MAX_NAME_LENGTH = 200
MAX_REDIRECT_URIS = 20
MAX_URI_LENGTH = 2048
ID_TOKEN_ALGS = ("ES256", "RS256")  # tokens/jose.py SUPPORTED_ALGS (a test keeps them equal)
MAX_CLIENT_ID_LENGTH = 255  # a UUID, or a metadata document URL (metadata_documents.py)


class ClientError(Exception):
    """Refused client metadata. ``error`` is the RFC 7591 error code, ``message`` is safe to show."""

    def __init__(self, message: str, error: str = "invalid_client_metadata") -> None:
        super().__init__(message)
        self.message = message
        self.error = error

    def __str__(self) -> str:
        return self.message


def metadata_error(message: str) -> ClientError:
    return ClientError(message, "invalid_client_metadata")


def redirect_error(message: str) -> ClientError:
    return ClientError(message, "invalid_redirect_uri")


def clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise metadata_error("client name is required")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise metadata_error(f"client name is longer than {MAX_NAME_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise metadata_error("client name contains control characters")
    return name


def _string_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    # A bare string is iterable too: refuse it rather than registering its characters.
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise ClientError(f"{what} must be a list of strings", _error_code_for(what))
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise ClientError(f"{what} must be a list of strings", _error_code_for(what))
    return list(dict.fromkeys(items))  # de-duplicated, order kept


def _error_code_for(what: str) -> str:
    return "invalid_redirect_uri" if what == "redirect_uris" else "invalid_client_metadata"


def clean_redirect_uris(uris: Any) -> list[str]:
    uris = _string_list(uris, "redirect_uris")
    for uri in uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise redirect_error(problem)
    if len(uris) > MAX_REDIRECT_URIS:
        raise redirect_error(f"at most {MAX_REDIRECT_URIS} redirect URIs may be registered")
    return uris


def clean_grant_types(grant_types: Any) -> list[str]:
    grant_types = _string_list(grant_types, "grant_types")
    if not grant_types:
        raise metadata_error("at least one grant type is required")
    for grant_type in grant_types:
        if grant_type not in GRANT_TYPES:
            raise metadata_error(
                f"unsupported grant type {grant_type!r} (supported: {', '.join(GRANT_TYPES)})"
            )
    return grant_types


def clean_auth_method(method: Any) -> str:
    if method not in AUTH_METHODS:
        raise metadata_error(
            f"unsupported token_endpoint_auth_method {method!r} "
            f"(supported: {', '.join(AUTH_METHODS)})"
        )
    return method


def clean_web_uri(value: Any, field: str) -> str:
    """``client_uri``/``logo_uri``: empty, or an absolute https URL (http only on loopback)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise metadata_error(f"{field} must be a string")
    if len(value) > MAX_URI_LENGTH:
        raise metadata_error(f"{field} is longer than {MAX_URI_LENGTH} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
        raise metadata_error(f"{field} contains spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  # raises ValueError for a malformed port
    except ValueError:
        raise metadata_error(f"{field} {value!r} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise metadata_error(f"{field} {value!r} must be an absolute https URL")
    if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise metadata_error(f"{field} {value!r} must use https (http only for loopback)")
    if "#" in value:
        raise metadata_error(f"{field} {value!r} must not contain a fragment")
    if "*" in parts.netloc:
        raise metadata_error(f"{field} {value!r} must not contain wildcards")
    return value


def clean_metadata(metadata: Any, public: bool = False) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise metadata_error("metadata must be a JSON object")
    alg = metadata.get("id_token_signed_response_alg")
    if alg is not None and alg not in ID_TOKEN_ALGS:
        raise metadata_error(
            f"unsupported id_token_signed_response_alg {alg!r} (use {' or '.join(ID_TOKEN_ALGS)})"
        )
    if metadata.get("require_pkce", True) is not True and (
        metadata["require_pkce"] is not False or public
    ):
        raise metadata_error("require_pkce=false is only for confidential clients")
    try:
        # Round-trip so what is stored is exactly what will be read back (and not aliased).
        metadata = json.loads(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError):
        raise metadata_error("metadata must be JSON-serialisable") from None
    try:
        return logout_settings.clean(metadata)
    except logout_settings.LogoutSettingsError as error:
        raise metadata_error(str(error)) from None


def check_combination(redirect_uris: list[str], grant_types: list[str], method: str) -> None:
    if "authorization_code" in grant_types and not redirect_uris:
        raise redirect_error("the authorization_code grant needs at least one redirect URI")
    if "refresh_token" in grant_types and "authorization_code" not in grant_types:
        raise metadata_error("the refresh_token grant needs the authorization_code grant")
    if method == "none" and "client_credentials" in grant_types:
        raise metadata_error("a public client cannot use the client_credentials grant")


def auth_method_for(public: bool, requested: str | None) -> str:
    if requested is None:
        requested = "none" if public else "client_secret_basic"
    method = clean_auth_method(requested)
    if public and method != "none":
        raise metadata_error(f"a public client cannot use {method}; use 'none'")
    if not public and method == "none":
        raise metadata_error("a confidential client needs a secret-based auth method")
    return method
