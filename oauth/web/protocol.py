"""RFC 7009 revocation, RFC 7662 introspection, RFC 7591/7592 dynamic client registration."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from oauth.protocol.endpoints import IntrospectionEndpoint, RevocationEndpoint
from oauth.protocol.server import authorization_server
from oauth.ratelimit import limit_failed_client_auth, limiter
from oauth.registry import clients
from oauth.registry.clients import ClientError
from oauth.security import matches_hash, random_token, sha256_hex
from oauth.storage.db import write_transaction
from oauth.storage.models import Client
from oauth.web.api import _bearer_challenge, bp, oauth_error

DEFAULT_CLIENT_NAME = "Unnamed app"
DEFAULT_AUTH_METHOD = "client_secret_basic"  # RFC 7591 §2
# client_credentials is refused: machine access needs a client grant made by an admin.
SELF_SERVICE_GRANT_TYPES = ("authorization_code", "refresh_token")
# Metadata we keep (in Client.metadata) and echo back, but never act on.
EXTRA_FIELDS = ("scope", "contacts", "software_id", "software_version")
MAX_EXTRA_LENGTH = 2000
MAX_CONTACTS = 10
REGISTRATION_TOKEN_BYTES = 32  # 256 bits
_NO_HASH = "0" * 64


# --- RFC 7009 / RFC 7662 ---------------------------------------------------------------------


@bp.route("/revoke", methods=["POST"])
@limit_failed_client_auth
def revoke():
    with write_transaction():
        return authorization_server().create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)


@bp.route("/introspect", methods=["POST"])
@limit_failed_client_auth
def introspect():
    with write_transaction():
        return authorization_server().create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)


# --- RFC 7591 / RFC 7592 ---------------------------------------------------------------------


def _registration_limit() -> str:
    return current_app.config.get("REGISTRATION_RATE_LIMIT", "10 per hour")


def _registration_disabled() -> bool:
    return not current_app.config["ALLOW_DYNAMIC_REGISTRATION"]


def _disabled():
    return oauth_error(403, "access_denied", "Dynamic client registration is disabled.")


def _no_store(payload: dict, status: int):
    response = jsonify(payload)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _json_body() -> dict:
    if request.mimetype != "application/json":
        raise ClientError("The request body must be JSON (application/json).")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ClientError("The request body must be a JSON object.")
    return body


def _plain_string(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_EXTRA_LENGTH:
        raise ClientError(f"{field} must be a string of at most {MAX_EXTRA_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ClientError(f"{field} contains control characters")
    return value


def _extra_metadata(body: dict) -> dict:
    extras: dict[str, Any] = {}
    for field in ("scope", "software_id", "software_version"):
        if body.get(field) is not None:
            extras[field] = _plain_string(body[field], field)
    contacts = body.get("contacts")
    if contacts is not None:
        if not isinstance(contacts, list) or len(contacts) > MAX_CONTACTS:
            raise ClientError(f"contacts must be a list of at most {MAX_CONTACTS} strings")
        extras["contacts"] = [_plain_string(contact, "contacts") for contact in contacts]
    return extras


def _client_fields(body: dict, *, default_method: str = DEFAULT_AUTH_METHOD) -> dict[str, Any]:
    """RFC 7591 metadata -> keyword arguments of ``clients.create_client``/``update_client``."""
    grant_types = body.get("grant_types")
    if grant_types is None:
        grant_types = list(clients.DEFAULT_GRANT_TYPES)
    if isinstance(grant_types, list):
        for grant_type in grant_types:
            if grant_type not in SELF_SERVICE_GRANT_TYPES:
                raise ClientError(
                    f"grant type {grant_type!r} cannot be registered here "
                    f"(allowed: {', '.join(SELF_SERVICE_GRANT_TYPES)})"
                )
    response_types = body.get("response_types")
    if response_types is not None and (
        not isinstance(response_types, list) or set(response_types) != {"code"}
    ):
        raise ClientError('response_types must be ["code"]')
    method = body.get("token_endpoint_auth_method")
    if method is None:
        method = default_method
    name = body.get("client_name")
    return {
        "name": DEFAULT_CLIENT_NAME if name is None or name == "" else name,
        "redirect_uris": body.get("redirect_uris") or [],
        "grant_types": grant_types,
        "token_endpoint_auth_method": method,
        "client_uri": body.get("client_uri") or "",
        "logo_uri": body.get("logo_uri") or "",
        "metadata": _extra_metadata(body),
    }


def _client_document(client: Client, *, secret: str | None = None, token: str | None = None):
    info = clients.client_info(client, secret)
    for field in EXTRA_FIELDS:
        if field in (client.metadata or {}):
            info[field] = client.metadata[field]
    info["registration_client_uri"] = (
        f"{current_app.config['ISSUER']}/oauth/register/{client.client_id}"
    )
    if token is not None:
        info["registration_access_token"] = token
    return info


@bp.route("/register", methods=["POST"])
@limiter.limit(_registration_limit, exempt_when=_registration_disabled)
def register():
    """RFC 7591: a client registers itself; its credentials are shown once."""
    if _registration_disabled():
        return _disabled()
    token = random_token(REGISTRATION_TOKEN_BYTES)
    try:
        fields = _client_fields(_json_body())
        public = fields["token_endpoint_auth_method"] == "none"
        with write_transaction():
            client, secret = clients.create_client(
                fields.pop("name"), public=public, registration_type="dynamic", **fields
            )
            Client.update(registration_access_token_hash=sha256_hex(token)).where(
                Client.client_id == client.client_id
            ).execute()
    except ClientError as error:
        return oauth_error(400, error.error, error.message)
    return _no_store(_client_document(client, secret=secret, token=token), 201)


def _registration_token() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _authorized_client(client_id: str, token: str | None) -> Client | None:
    """The dynamic client this registration access token manages, else None."""
    client = clients.get_client(client_id)
    stored = None
    if client is not None and client.registration_type == "dynamic":
        stored = client.registration_access_token_hash
    # Compare even without a stored hash, so the answer does not depend on the client existing.
    matches = matches_hash(token or "", stored or _NO_HASH)
    return client if token and stored and matches else None


def _invalid_token(token: str | None):
    description = "The registration access token is missing or invalid."
    challenge = _bearer_challenge("invalid_token", description) if token else _bearer_challenge()
    return oauth_error(401, "invalid_token", description, {"WWW-Authenticate": challenge})


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
def client_configuration(client_id: str):
    """RFC 7592: read, replace or delete a dynamically registered client."""
    if _registration_disabled():
        return _disabled()
    token = _registration_token()
    client = _authorized_client(client_id, token)
    if client is None:
        return _invalid_token(token)
    if request.method == "GET":
        return _no_store(_client_document(client, token=token), 200)
    if request.method == "DELETE":
        with write_transaction():
            clients.delete_client(client)  # audited by the client service
        response = Response(status=204)
        response.headers["Cache-Control"] = "no-store"
        return response
    try:
        _update(client, _json_body())
    except ClientError as error:
        return oauth_error(400, error.error, error.message)
    return _no_store(_client_document(client, token=token), 200)


def _update(client: Client, body: dict) -> None:
    if body.get("client_id") != client.client_id:
        raise ClientError("client_id must be the id of the client being updated")
    secret = body.get("client_secret")
    if secret is not None and not (isinstance(secret, str) and client.check_client_secret(secret)):
        raise ClientError("client_secret does not match")
    # An omitted auth method keeps the current one: the type (public/confidential) is fixed.
    fields = _client_fields(body, default_method=client.token_endpoint_auth_method)
    kept = {k: v for k, v in (client.metadata or {}).items() if k not in EXTRA_FIELDS}
    fields["metadata"] = {**kept, **fields["metadata"]}
    with write_transaction():
        clients.update_client(client, **fields)  # audited by the client service
