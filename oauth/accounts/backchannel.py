"""Back-Channel Logout 1.0: the outbox of logout tokens and their delivery.

A sign-out (of one browser session, of every session, or an app revoked on /settings/apps)
writes one ``BackchannelLogout`` row per client to notify, in the caller's transaction. After
that transaction commits the rows are delivered: at the end of the request that made them
(``after_this_request``: never while a transaction is open), else at once (CLI). Failures are
retried with exponential back-off on later requests (at most every ``RETRY_CHECK_SECONDS``
per worker, after the response is sent) and by ``flask backchannel deliver``. Every attempt is
audited; a row is deleted once delivered or after ``BACKCHANNEL_LOGOUT_MAX_ATTEMPTS``.
The logout token is signed afresh at each attempt (a new ``jti``, ``iat`` and ``exp``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from urllib.parse import urlencode

from flask import Flask, after_this_request, current_app, g, has_request_context

from oauth import audit, outbound
from oauth.registry import logout_settings
from oauth.storage.db import database, for_update, write_transaction
from oauth.storage.deliveries import BackchannelLogout
from oauth.storage.models import Client, OAuthSession, utcnow
from oauth.tokens import keys

log = logging.getLogger(__name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYP = "logout+jwt"
LOGOUT_TOKEN_TTL = 120  # seconds
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
RETRY_CHECK_SECONDS = 30
BATCH = 20
MAX_ANSWER_BYTES = 64 * 1024  # the answer is not used; a bigger one is a broken receiver
DELIVERY_HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Cache-Control": "no-store",
}


# --- enqueueing (in the caller's transaction) --------------------------------------------


def _enqueue(client: Client, sub: str, sid: str | None, reason: str) -> bool:
    if logout_settings.backchannel_logout_uri(client) is None:
        return False
    row = BackchannelLogout.create(
        client=client.client_id, sub=sub, sid=sid, reason=reason, next_attempt_at=utcnow()
    )
    if has_request_context():
        g.setdefault("_backchannel_ids", []).append(row.id)
    return True


def _after_commit() -> None:
    database.after_commit(deliver_soon)


def browser_sessions_ended(user_id: str, sids: list[str], reason: str) -> int:
    """Notify every client with an OAuth session begun in one of these browser sessions."""
    sids = [sid for sid in sids if sid]
    if not sids:
        return 0
    pairs = (
        OAuthSession.select(OAuthSession.client, OAuthSession.browser_sid)
        .where((OAuthSession.user == user_id) & OAuthSession.browser_sid.in_(sids))
        .distinct()
        .tuples()
    )
    queued = 0
    for client_id, sid in list(pairs):
        client = Client.get_or_none(Client.client_id == client_id)
        if client is not None and _enqueue(client, user_id, sid, reason):
            queued += 1
    if queued:
        _after_commit()
    return queued


def app_revoked(user_id: str, client: Client) -> int:
    """The user revoked ``client``: one token per browser session it began in (``sub`` alone
    when there is none)."""
    sids = (
        OAuthSession.select(OAuthSession.browser_sid)
        .where(
            (OAuthSession.user == user_id)
            & (OAuthSession.client == client.client_id)
            & OAuthSession.browser_sid.is_null(False)
        )
        .distinct()
        .tuples()
    )
    queued = sum(_enqueue(client, user_id, sid, "app_revoked") for (sid,) in list(sids))
    if not queued and _enqueue(client, user_id, None, "app_revoked"):
        queued = 1
    if queued:
        _after_commit()
    return queued


# --- scheduling ----------------------------------------------------------------------------


def _deliver_safely(limit: int = 0, ids: list[str] | None = None) -> None:
    """``deliver_due`` where a failure must not spoil what already happened (the sign-out)."""
    try:
        deliver_due(limit or BATCH, ids=ids)
    except Exception:  # the rows stay queued for the retries
        log.exception("back-channel logout delivery failed")


def deliver_soon() -> None:
    """Deliver once no transaction is open: what this request queued, at its end (older
    backlog is left to the retries); outside a request everything due, now."""
    if has_request_context():
        if not g.get("_backchannel_scheduled"):
            g._backchannel_scheduled = True

            @after_this_request
            def _deliver(response):
                ids = g.pop("_backchannel_ids", [])
                if ids:
                    _deliver_safely(len(ids), ids)
                return response

        return
    if database.transaction_depth() == 0:
        _deliver_safely()


def _retry_later_requests(response):
    """After a response is sent, now and then, retry deliveries that are due (per worker)."""
    app = current_app._get_current_object()
    state = app.extensions.setdefault("portcullis.backchannel", {"checked": 0.0})
    now = time.monotonic()
    if now - state["checked"] < RETRY_CHECK_SECONDS or g.get("_backchannel_scheduled"):
        return response
    state["checked"] = now

    def retry() -> None:
        with app.app_context():  # its teardown gives the connection back
            _deliver_safely()

    response.call_on_close(retry)
    return response


def init_app(app: Flask) -> None:
    app.after_request(_retry_later_requests)


# --- delivery (no transaction open) --------------------------------------------------------


def _claim(limit: int, ids: list[str] | None) -> list[BackchannelLogout]:
    """Lease the due rows (so another worker does not send them too) and return them."""
    now = utcnow()
    due = BackchannelLogout.next_attempt_at <= now
    if ids is not None:
        due &= BackchannelLogout.id.in_(ids)
    if not BackchannelLogout.select().where(due).exists():
        return []  # the common case: a read, no write lock
    with write_transaction():
        rows = list(
            for_update(
                BackchannelLogout.select()
                .where(due)
                .order_by(BackchannelLogout.next_attempt_at)
                .limit(limit)
            )
        )
        # long enough for every one of them to time out in turn
        seconds = float(current_app.config["BACKCHANNEL_LOGOUT_TIMEOUT"]) * (len(rows) + 1) + 30
        lease = now + dt.timedelta(seconds=seconds)
        if rows:
            BackchannelLogout.update(next_attempt_at=lease).where(
                BackchannelLogout.id.in_([row.id for row in rows])
            ).execute()
    return rows


def logout_token(client: Client, sub: str, sid: str | None) -> str:
    now = int(time.time())
    claims = {
        "iss": current_app.config["ISSUER"],
        "aud": client.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": str(uuid.uuid4()),
        "sub": sub,
        "events": {EVENT: {}},
    }
    if sid:
        claims["sid"] = sid
    return keys.sign_jwt(claims, typ=LOGOUT_TOKEN_TYP)


def _attempt(row: BackchannelLogout, client: Client) -> str | None:
    """One delivery; None when it succeeded, else why not."""
    uri = logout_settings.backchannel_logout_uri(client)
    if uri is None:
        return "the client no longer has a backchannel_logout_uri"
    body = urlencode({"logout_token": logout_token(client, row.sub, row.sid)}).encode()
    config = current_app.config
    try:
        answer = outbound.request(
            "POST",
            uri,
            body=body,
            headers=DELIVERY_HEADERS,
            timeout=float(config["BACKCHANNEL_LOGOUT_TIMEOUT"]),
            max_bytes=MAX_ANSWER_BYTES,
            https_only=False,  # logout_settings decides which schemes a client may register
            allow_private=bool(config["FETCH_ALLOW_PRIVATE_ADDRESSES"]),
        )
    except outbound.OutboundError as error:  # its message names no token: safe to audit
        return str(error)
    return None if 200 <= answer.status < 300 else f"answered status {answer.status}"


def _record(row: BackchannelLogout, error: str | None) -> str:
    attempt = row.attempts + 1
    details = {"attempt": attempt, "sid": row.sid, "reason": row.reason}
    with write_transaction():
        if error is None:
            outcome = "delivered"
            BackchannelLogout.delete().where(BackchannelLogout.id == row.id).execute()
        elif attempt >= int(current_app.config["BACKCHANNEL_LOGOUT_MAX_ATTEMPTS"]):
            outcome = "abandoned"
            BackchannelLogout.delete().where(BackchannelLogout.id == row.id).execute()
        else:
            outcome = "failed"
            delay = min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS)
            BackchannelLogout.update(
                attempts=attempt,
                last_error=error[:500],
                next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
            ).where(BackchannelLogout.id == row.id).execute()
            details["retry_in"] = delay
        if error is not None:
            details["error"] = error[:200]
        audit.record(
            f"backchannel_logout.{outcome}", user_id=row.sub, client_id=row.client_id, **details
        )
    return outcome


def deliver_due(limit: int = BATCH, *, ids: list[str] | None = None) -> dict[str, int]:
    """Send the due logout tokens (at most ``limit``; only ``ids`` if given); counts by outcome."""
    counts = {"delivered": 0, "failed": 0, "abandoned": 0}
    for row in _claim(limit, ids):
        client = Client.get_or_none(Client.client_id == row.client_id)
        if client is None:
            continue  # deleted meanwhile: its rows went with it
        counts[_record(row, _attempt(row, client))] += 1
    return counts


def pending_count() -> int:
    return BackchannelLogout.select().count()
