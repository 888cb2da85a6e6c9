"""Bounds on what anyone may make the authorization endpoint keep (issue 9 item 4).

- Every parameter the server reads has a length limit (``PARAM_LIMITS``, in UTF-8 bytes).
- A request is stored only for a signed-in user. An anonymous browser is sent to sign in
  with the request itself in ``next`` (``resume_query``), under a signed arrival time
  (``arrival``), so a sign-in made on the way satisfies ``prompt=login`` and ``max_age``.
- Stored requests expire after ``AUTHORIZATION_TTL``; each new one purges the expired ones
  (unanswered at once; answered a day later, for code replay detection), and one user keeps
  at most ``MAX_PENDING_PER_USER`` unanswered requests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from urllib.parse import urlencode

from flask import current_app
from werkzeug.datastructures import MultiDict

from oauth.registry.clients import get_client
from oauth.security import lookup_key
from oauth.storage.models import AuthorizationRequest, Client, User, utcnow

PARAM_LIMITS = {
    "response_type": 64, "client_id": 2048, "redirect_uri": 2048, "scope": 1024,
    "state": 2048, "nonce": 512, "code_challenge": 128, "code_challenge_method": 16,
    "prompt": 64, "max_age": 10, "login_hint": 320, "resource": 2048, "response_mode": 32,
    "ui_locales": 256, "claims_locales": 256, "acr_values": 512, "display": 32,
    "id_token_hint": 8192, "claims": 4096,
}  # fmt: skip
# What the server uses, and so what the sign-in redirect carries back.
CARRIED = (
    "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
    "code_challenge_method", "prompt", "max_age", "login_hint", "resource", "response_mode",
    "acr_values",
    "claims", "id_token_hint",
)  # fmt: skip
ARRIVED = "portcullis_arrived"  # "<unix time>.<HMAC>" added to the sign-in redirect's request
MAX_PENDING_PER_USER = 20
ANSWERED_KEPT = dt.timedelta(days=1)


def too_long(args: MultiDict) -> str | None:
    """The first parameter over its limit, or None."""
    for name, limit in PARAM_LIMITS.items():
        for value in args.getlist(name):
            if len(value.encode("utf-8", "surrogatepass")) > limit:
                return name
    return None


def _carried(args: MultiDict) -> list[tuple[str, str]]:
    return [(name, value) for name in CARRIED for value in args.getlist(name)]


def _signature(arrived: int, params: list[tuple[str, str]]) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    message = f"portcullis-authorize-arrived\n{arrived}\n{urlencode(params)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def resume_query(args: MultiDict, arrived: dt.datetime) -> str:
    """The query string of /oauth/authorize that resumes this request after sign-in."""
    params = _carried(args)
    stamp = int(arrived.replace(tzinfo=dt.UTC).timestamp())
    return urlencode([*params, (ARRIVED, f"{stamp}.{_signature(stamp, params)}")])


def arrival(args: MultiDict) -> dt.datetime:
    """When the request first arrived: now, or the signed time a sign-in redirect carried
    (unless it is forged, from another request, or older than AUTHORIZATION_TTL)."""
    now = time.time()
    stamp, _, signature = (args.get(ARRIVED) or "")[:80].partition(".")
    ttl = int(current_app.config["AUTHORIZATION_TTL"])
    if (
        stamp.isascii()
        and stamp.isdigit()
        and now - ttl <= int(stamp) <= now
        and hmac.compare_digest(signature.encode(), _signature(int(stamp), _carried(args)).encode())
    ):
        now = int(stamp)
    return dt.datetime.fromtimestamp(now, dt.UTC).replace(tzinfo=None)


def store(row: AuthorizationRequest, user: User) -> None:
    """Save a validated request for the signed-in ``user`` (in the caller's transaction),
    purging expired requests and the user's oldest unanswered ones beyond the bound."""
    purge_expired_requests()
    row.user = user
    row.save(force_insert=True)
    beyond = (
        AuthorizationRequest.select(AuthorizationRequest.id)
        .where((AuthorizationRequest.user == user) & (AuthorizationRequest.status == "pending"))
        .order_by(AuthorizationRequest.created_at.desc(), AuthorizationRequest.id)
        .offset(MAX_PENDING_PER_USER)
    )
    stale = [request.id for request in beyond]
    if stale:
        AuthorizationRequest.delete().where(AuthorizationRequest.id.in_(stale)).execute()


def purge_expired_requests() -> int:
    """Forget expired requests: unanswered or denied ones at once, approved or consumed ones
    (whose code may still be replayed) a day after they expired."""
    now = utcnow()
    return (
        AuthorizationRequest.delete()
        .where(
            (AuthorizationRequest.expires_at < now - ANSWERED_KEPT)
            | (
                (AuthorizationRequest.expires_at < now)
                & AuthorizationRequest.status.in_(("pending", "denied"))
            )
        )
        .execute()
    )


def requesting_client(args: MultiDict, user: User | None) -> Client | None:
    """The registered client of the authorization request a sign-in page's ``next`` resumes:
    ``args`` is that URL's query, an anonymous request's own parameters (``client_id``) or a
    stored one's ``authorization_id`` (only the signed-in user's own, still pending). Nothing
    is fetched: a client not yet known here is simply not named."""
    authorization_id = lookup_key(args.get("authorization_id"))
    if authorization_id:
        if user is None:
            return None
        row = AuthorizationRequest.get_or_none(
            (AuthorizationRequest.id == authorization_id)
            & (AuthorizationRequest.user == user.id)
            & (AuthorizationRequest.status == "pending")
        )
        return get_client(row.client_id) if row is not None else None
    return get_client(args.get("client_id"))
