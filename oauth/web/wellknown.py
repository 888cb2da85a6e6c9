"""Discovery (RFC 8414 / OpenID Connect Discovery) and the JWKS.

Both are served from bytes serialised once per version of the document (per key generation
for the JWKS, per configuration for discovery) with a strong ``ETag`` (a hash of the bytes)
and ``Cache-Control: public``; ``If-None-Match`` with that ETag is answered 304, no body.
A key rotated in this worker changes the JWKS (and its ETag) at once; other workers follow
within ``KEYS_REFRESH_SECONDS``, when their key cache reloads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request
from werkzeug.http import parse_etags

from oauth import logs
from oauth.scopes import supported_scopes
from oauth.tokens import keys
from oauth.tokens.jose import SUPPORTED_ALGS
from oauth.web import issuer_host
from oauth.web.headers import security_headers

bp = Blueprint("wellknown", __name__)

CACHE = f"public, max-age={keys.JWKS_MAX_AGE}"
CLAIMS_SUPPORTED = [
    "sub", "aud", "iss", "exp", "iat", "auth_time", "nonce", "at_hash", "email",
    "email_verified", "phone_number", "phone_number_verified", "name", "picture",
    "preferred_username", "updated_at", "sid", "acr",
]  # fmt: skip


def metadata() -> dict:
    issuer = current_app.config["ISSUER"]
    views = current_app.view_functions
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(supported_scopes()),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": current_app.extensions.get(
            "portcullis.grant_types", ["authorization_code", "refresh_token"]
        ),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_supported": CLAIMS_SUPPORTED,
        "acr_values_supported": ["aal1", "aal2"],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": bool(
            current_app.config["CLIENT_ID_METADATA_DOCUMENTS"]
        ),
    }
    if "api.revoke" in views:
        document["revocation_endpoint"] = f"{issuer}/oauth/revoke"
        document["revocation_endpoint_auth_methods_supported"] = document[
            "token_endpoint_auth_methods_supported"
        ]
    if "api.introspect" in views:
        document["introspection_endpoint"] = f"{issuer}/oauth/introspect"
        document["introspection_endpoint_auth_methods_supported"] = [
            "client_secret_basic",
            "client_secret_post",
        ]
    if "logout.end_session" in views:
        document["end_session_endpoint"] = f"{issuer}/oauth/logout"
        document["backchannel_logout_supported"] = True
        document["backchannel_logout_session_supported"] = True
        document["frontchannel_logout_supported"] = False
    if "api.register" in views and current_app.config["ALLOW_DYNAMIC_REGISTRATION"]:
        document["registration_endpoint"] = f"{issuer}/oauth/register"
    return document


EXTENSION = "portcullis.wellknown"


@dataclass(frozen=True)
class Document:
    """A document as served: the bytes, their ETag, and what they were made from."""

    source: object  # compared with the current source: the bytes are reused while equal
    body: bytes
    etag: str  # strong, unquoted


def document(name: str, source: object, payload) -> Document:
    """The served form of ``payload(source)``, serialised again only when ``source`` changed."""
    cache = current_app.extensions.setdefault(EXTENSION, {})
    known = cache.get(name)
    if known is not None and (known.source is source or known.source == source):
        return known
    body = (current_app.json.dumps(payload(source), separators=(",", ":")) + "\n").encode()
    made = Document(source, body, hashlib.sha256(body).hexdigest()[:40])
    cache[name] = made  # one assignment: other threads see the old or the new document
    return made


def _headers(doc: Document) -> dict[str, str]:
    return {"Cache-Control": CACHE, "Access-Control-Allow-Origin": "*", "ETag": f'"{doc.etag}"'}


def _not_modified(if_none_match: str | None, doc: Document) -> bool:
    # RFC 9110 §13.1.2: If-None-Match uses the weak comparison
    return bool(if_none_match) and parse_etags(if_none_match).contains_weak(doc.etag)


def _serve(doc: Document) -> Response:
    headers = _headers(doc)
    if _not_modified(request.headers.get("If-None-Match"), doc):
        return Response(status=304, headers=headers)
    return Response(doc.body, mimetype="application/json", headers=headers)


def discovery_document() -> Document:
    return document("discovery", metadata(), dict)


def jwks_document() -> Document:
    return document("jwks", keys.published_jwks(), _jwk_set)


@bp.route("/.well-known/openid-configuration")
@bp.route("/.well-known/oauth-authorization-server")
def discovery():
    return _serve(discovery_document())


def _jwk_set(published: tuple[dict, ...]) -> dict:
    return {"keys": list(published)}


@bp.route("/.well-known/jwks.json")
def jwks():
    return _serve(jwks_document())


# --- the lane: the same documents without Flask's request machinery ----------------------

LANE_PATHS = {
    "/.well-known/openid-configuration": discovery_document,
    "/.well-known/oauth-authorization-server": discovery_document,
    "/.well-known/jwks.json": jwks_document,
}


class DocumentLane:
    """WSGI middleware (inside the request instruments, like the token lane): a GET or HEAD
    of a well-known document, with or without a query string (the view ignores it too), is
    answered from its bytes here, with the headers the view sends and every response's
    security headers; anything else goes on to Flask.

    Answering HEAD and queries here also keeps ``Vary: Cookie`` off them: on Flask's path
    flask-login's after-request hook reads the session, and Flask then adds the header,
    which makes shared caches keep one copy per cookie of a public document."""

    def __init__(self, app, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ, start_response):
        made = LANE_PATHS.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        if made is None or method not in ("GET", "HEAD"):
            return self.wsgi_app(environ, start_response)
        issuer_host.check_environ(self.app, environ)
        with self.app.app_context():
            doc = made()
        logs.note_endpoint(f"wellknown.{made.__name__.removesuffix('_document')}")
        headers = [*_headers(doc).items(), *security_headers(self.app.config)]
        if _not_modified(environ.get("HTTP_IF_NONE_MATCH"), doc):
            start_response("304 Not Modified", headers)
            return []
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(doc.body)))]
        start_response("200 OK", headers)
        return [doc.body] if method == "GET" else []
