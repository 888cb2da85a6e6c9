"""Client ID Metadata Documents (MCP 2025-11-25, draft-ietf-oauth-client-id-metadata-document).

A ``client_id`` that is an ``https://`` URL names a JSON document the client hosts there: its
``client_name``, ``redirect_uris``, ``logo_uri``, ``grant_types``... The document is fetched
(``oauth.outbound``: https only, public addresses only, no redirects, bounded size and time),
checked (its ``client_id`` must be the URL, exactly; a public client: no secret, auth method
``none``), and kept as a ``Client`` row (``registration_type = "metadata_document"``) until its
HTTP caching headers say it is stale (``metadata_expires_at``, bounded below and above). The
row is what consents, codes and tokens refer to, like any client's.

Only an authorization request fetches (``resolve``), and never inside a write transaction; the
token, revocation and introspection endpoints use the stored row. ``needs_fetch`` tells the web
layer that a request would fetch, so it can rate-limit fetches per IP and per host first.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import peewee
from flask import current_app

from oauth import audit, outbound
from oauth.registry import client_rules, clients
from oauth.registry.cache import invalidates
from oauth.storage.db import database, for_update, write_transaction
from oauth.storage.models import Client, utcnow

REGISTRATION_TYPE = "metadata_document"
MAX_URL_LENGTH = 255  # the client_id column (migration 0019)
MAX_DOCUMENT_BYTES = 16 * 1024  # a metadata document is a few hundred bytes
USER_AGENT = "Portcullis (client metadata fetcher)"
FETCH_TIMEOUT = 5.0  # seconds, the whole fetch: resolution, connection, TLS, answer
MIN_CACHE_SECONDS = 60  # even "no-store": the document is not fetched on every request
MAX_CACHE_SECONDS = 24 * 3600  # a changed or withdrawn document is seen within a day
DEFAULT_CACHE_SECONDS = 3600  # no caching headers at all
ALLOWED_GRANT_TYPES = ("authorization_code", "refresh_token")
_DOT_SEGMENT = re.compile(r"(^|/)\.\.?(/|$)")


class MetadataDocumentError(Exception):
    """A client_id URL or its document that cannot be used; the message is safe to show."""


def enabled() -> bool:
    return bool(current_app.config["CLIENT_ID_METADATA_DOCUMENTS"])


def is_document_url(value: Any) -> bool:
    """Whether this client_id is meant as a metadata document URL (it starts with https://)."""
    return isinstance(value, str) and value[:8].lower() == "https://"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a client_id (the draft's section 3 rules), or None."""
    if len(url) > MAX_URL_LENGTH:
        return f"a client_id URL may have at most {MAX_URL_LENGTH} characters"
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        return "the client_id URL contains spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a malformed port
    except ValueError:
        return "the client_id URL is malformed"
    if parts.scheme != "https" or not parts.hostname:
        return "a client_id URL must be an https URL"
    if parts.username is not None or parts.password is not None:
        return "a client_id URL must not contain a user name or password"
    if "#" in url:
        return "a client_id URL must not contain a fragment"
    if parts.path in ("", "/"):
        return "a client_id URL must have a path"
    if _DOT_SEGMENT.search(parts.path):
        return "a client_id URL must not contain . or .. path segments"
    return None


def _is_fresh(client: Client) -> bool:
    return client.metadata_expires_at is not None and client.metadata_expires_at > utcnow()


def needs_fetch(client_id: Any) -> str | None:
    """The host that resolving ``client_id`` would fetch from now, or None (no fetch)."""
    if not is_document_url(client_id) or not enabled() or url_problem(client_id):
        return None
    client = clients.get_client(client_id)
    if client is not None and (client.registration_type != REGISTRATION_TYPE or _is_fresh(client)):
        return None
    return urlsplit(client_id).hostname


def resolve(client_id: Any) -> Client | None:
    """The client an authorization request names: a registered one, or for an https URL the
    client its metadata document describes (fetched when not cached). None when unknown.

    Raises MetadataDocumentError when the URL or its document cannot be used.
    """
    if not is_document_url(client_id):
        return clients.get_client(client_id)
    if not enabled():
        raise MetadataDocumentError("This server does not accept URLs as client_id.")
    problem = url_problem(client_id)
    if problem:
        raise MetadataDocumentError(problem[0].upper() + problem[1:] + ".")
    client = clients.get_client(client_id)
    if client is not None and (client.registration_type != REGISTRATION_TYPE or _is_fresh(client)):
        return client
    if database.transaction_depth() > 0:
        raise RuntimeError("a metadata document is never fetched inside a transaction")
    answer = fetch(client_id)
    fields = parse(client_id, answer.body)
    expires = utcnow() + dt.timedelta(seconds=cache_seconds(answer.headers))
    try:
        return _store(client_id, fields, expires)
    except peewee.IntegrityError:  # another worker stored it first: update that row
        return _store(client_id, fields, expires)


def fetch(client_id: str) -> outbound.Response:
    """GET the document (the caller holds no transaction); its 200 answer, else an error."""
    host = urlsplit(client_id).hostname
    try:
        answer = outbound.request(
            "GET",
            client_id,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=FETCH_TIMEOUT,
            max_bytes=MAX_DOCUMENT_BYTES,
            allow_private=bool(current_app.config["FETCH_ALLOW_PRIVATE_ADDRESSES"]),
        )
        if 300 <= answer.status < 400:
            problem = f"{host} answered a redirect ({answer.status}); redirects are not followed"
        elif answer.status != 200:
            problem = f"{host} answered status {answer.status}"
        else:
            return answer
    except outbound.OutboundError as error:
        problem = str(error)
    raise MetadataDocumentError(f"The client metadata document was not fetched: {problem}.")


def cache_seconds(headers, now: dt.datetime | None = None) -> int:
    """How long a fetched document is used, from Cache-Control or Expires, within bounds."""
    directives: dict[str, str] = {}
    for part in (headers.get("Cache-Control") or "").split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip().lower()] = value.strip().strip('"')
    seconds: float = DEFAULT_CACHE_SECONDS
    if "no-store" in directives or "no-cache" in directives:
        seconds = 0
    elif "max-age" in directives:
        seconds = int(directives["max-age"]) if directives["max-age"].isdigit() else 0
    elif headers.get("Expires"):
        try:
            expires = parsedate_to_datetime(headers["Expires"])
            now = now or dt.datetime.now(dt.UTC)
            seconds = (expires - now).total_seconds() if expires.tzinfo else 0
        except (TypeError, ValueError):
            seconds = 0  # RFC 9111 §5.3: an invalid Expires means already expired
    return int(min(max(seconds, MIN_CACHE_SECONDS), MAX_CACHE_SECONDS))


def _refuse(message: str) -> MetadataDocumentError:
    return MetadataDocumentError(f"The client metadata document is invalid: {message}.")


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse(url: str, body: bytes) -> dict[str, Any]:
    """The client fields a metadata document describes, checked like a registration."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeError, ValueError):
        raise _refuse("it is not JSON") from None
    if not isinstance(document, dict):
        raise _refuse("it is not a JSON object")
    if document.get("client_id") != url:
        raise _refuse("its client_id is not the URL it was fetched from")
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise _refuse("a metadata document client has no client secret")
    if document.get("token_endpoint_auth_method", "none") != "none":
        raise _refuse("token_endpoint_auth_method must be 'none' (a public client)")
    if document.get("response_types", ["code"]) != ["code"]:
        raise _refuse("response_types must be ['code']")
    try:
        fields = _client_fields(url, document)
    except clients.ClientError as error:
        raise _refuse(error.message) from None
    return fields


def _client_fields(url: str, document: dict) -> dict[str, Any]:
    grant_types = client_rules.clean_grant_types(
        document.get("grant_types", ["authorization_code"])
    )
    extra = sorted(set(grant_types) - set(ALLOWED_GRANT_TYPES))
    if extra:
        raise clients.ClientError(f"grant type {extra[0]!r} is not for a public client")
    redirect_uris = client_rules.clean_redirect_uris(document.get("redirect_uris"))
    if not redirect_uris:
        raise clients.ClientError("redirect_uris is required")
    client_rules.check_combination(redirect_uris, grant_types, "none")
    return {
        "name": client_rules.clean_name(document.get("client_name") or urlsplit(url).hostname),
        "client_uri": client_rules.clean_web_uri(document.get("client_uri"), "client_uri"),
        "logo_uri": client_rules.clean_web_uri(document.get("logo_uri"), "logo_uri"),
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
    }


@invalidates
def _store(url: str, fields: dict[str, Any], expires: dt.datetime) -> Client:
    """Insert or refresh the client row of a fetched document (audited when it changed)."""
    now = utcnow()
    with write_transaction():
        client = for_update(Client.select().where(Client.client_id == url)).first()
        if client is None:
            client = Client(
                client_id=url,
                client_secret_hash=None,
                token_endpoint_auth_method="none",  # noqa: S106  # public: not a password
                registration_type=REGISTRATION_TYPE,
                metadata={},
                created_at=now,
                updated_at=now,
                metadata_expires_at=expires,
                **fields,
            )
            client.save(force_insert=True)
            audit.record(
                "client.created",
                client_id=url,
                name=client.name,
                client_type="public",
                registration_type=REGISTRATION_TYPE,
                redirect_uris=client.redirect_uris,
                grant_types=client.grant_types,
            )
            return client
        changed = sorted(name for name, value in fields.items() if getattr(client, name) != value)
        for name, value in fields.items():
            setattr(client, name, value)
        client.metadata_expires_at = expires
        if changed:
            client.updated_at = now
            audit.record("client.updated", client_id=url, fields=changed, source=REGISTRATION_TYPE)
        client.save()
    return client


def host_of(client: Client) -> str | None:
    """The host that vouches for a metadata document client (shown as "unverified"), else None."""
    if client.registration_type != REGISTRATION_TYPE:
        return None
    return urlsplit(client.client_id).hostname
