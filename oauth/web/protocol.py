"""The protocol blueprint: endpoints that answer clients in JSON (token, userinfo, revoke,
introspect, register). RFC 6749 error shapes; no CSRF and no cookies: clients authenticate
with their own credentials or bearer tokens."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from oauth import metrics
from oauth.plugins.host import PluginError
from oauth.protocol import registration
from oauth.protocol import userinfo as userinfo_protocol
from oauth.protocol.endpoints import IntrospectionEndpoint, RevocationEndpoint
from oauth.protocol.responses import (
    HOOK_ERRORS,
    basic_client_id,
    bearer_token,
    hook_error,
    invalid_token,
    no_store,
    oauth_error,
)
from oauth.protocol.server import authorization_server
from oauth.ratelimit.clients import limit_failed_client_auth
from oauth.ratelimit.requests import limit_per_ip
from oauth.registry.clients import ClientError
from oauth.storage.db import write_transaction

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/oauth")


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


CLIENT_AUTH_ENDPOINTS = ("api.token", "api.revoke", "api.introspect")


@bp.before_request
def _one_client_per_request():
    """Credentials of one client in the header and another ``client_id`` in the body is
    ``invalid_request`` (DESIGN.md), never an answer for the header's client."""
    if request.endpoint not in CLIENT_AUTH_ENDPOINTS or request.method != "POST":
        return None
    try:
        header_id = basic_client_id()
    except ValueError:  # e.g. credentials that are not UTF-8
        return oauth_error(
            401, "invalid_client", "Malformed client credentials.",
            {"WWW-Authenticate": 'Basic realm="portcullis"'},
        )  # fmt: skip
    body_id = request.form.get("client_id")
    if header_id and body_id is not None and body_id != header_id:
        return oauth_error(
            400, "invalid_request", "client_id differs from the client of the Authorization header."
        )
    return None


def _hook_error(error: Exception):
    status, body = hook_error(error)
    return oauth_error(status, body["error"], body["error_description"])


@bp.route("/token", methods=["POST"])
@limit_failed_client_auth
def token():
    # No transaction here: each grant runs its plugin hooks first, with no lock held, then
    # writes in one short transaction of its own (protocol/grants.py). A refused or failing
    # plugin therefore leaves nothing consumed and no refresh token rotated.
    try:
        response = authorization_server().create_token_response()
    except HOOK_ERRORS as error:
        return _hook_error(error)
    if response.status_code == 200:
        metrics.count_token(request.form.get("grant_type"))
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    # The lean lane (web/resource_lane.py) answers the plain GET through the same two calls.
    try:
        verified = userinfo_protocol.user_token(bearer_token())
    except userinfo_protocol.Refusal as refusal:
        return oauth_error(refusal.status, refusal.error, refusal.description, refusal.headers)
    try:
        claims = userinfo_protocol.claims(verified)
    except PluginError as failure:
        return _hook_error(failure)
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- RFC 7009 / RFC 7662 ---------------------------------------------------------------------


@bp.route("/revoke", methods=["POST"])
@limit_failed_client_auth
def revoke():
    with write_transaction():
        return authorization_server().create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)


@bp.route("/introspect", methods=["POST"])
@limit_failed_client_auth
def introspect():
    # Reads only: no write transaction (on SQLite a BEGIN IMMEDIATE would queue every
    # introspection behind the token endpoint's writes).
    return authorization_server().create_endpoint_response(IntrospectionEndpoint.ENDPOINT_NAME)


# --- RFC 7591 / RFC 7592 ---------------------------------------------------------------------


def _registration_disabled() -> bool:
    return not registration.enabled()


def _disabled():
    return oauth_error(403, "access_denied", "Dynamic client registration is disabled.")


def _json_body() -> dict:
    if request.mimetype != "application/json":
        raise ClientError("The request body must be JSON (application/json).")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes: not a client document
        body = None
    if not isinstance(body, dict):
        raise ClientError("The request body must be a JSON object.")
    return body


@bp.route("/register", methods=["POST"])
@limit_per_ip("REGISTRATION_RATE_LIMIT", when=registration.enabled)
def register():
    """RFC 7591: a client registers itself; its credentials are shown once."""
    if _registration_disabled():
        return _disabled()
    try:
        return no_store(registration.register(_json_body()), 201)
    except ClientError as error:
        return oauth_error(400, error.error, error.message)


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
def client_configuration(client_id: str):
    """RFC 7592: read, replace or delete a dynamically registered client."""
    if _registration_disabled():
        return _disabled()
    token = bearer_token(form=False)
    client = registration.authorized_client(client_id, token)
    if client is None:
        return invalid_token(
            "The registration access token is missing or invalid.", presented=bool(token)
        )
    if request.method == "DELETE":
        registration.delete(client)
        response = Response(status=204)
        response.headers["Cache-Control"] = "no-store"
        return response
    if request.method == "PUT":
        try:
            registration.update(client, _json_body())
        except ClientError as error:
            return oauth_error(400, error.error, error.message)
    return no_store(registration.client_document(client, token=token), 200)
