"""Mail: queued in the database in the transaction of the change that causes it, sent after
the commit by a background thread of the worker, retried with back-off when the server fails.

- ``queue(kind, to, ...)`` inserts a ``MailOutbox`` row (call it inside the change's write
  transaction); when the transaction commits, this worker's sender thread wakes up. A mail
  is never sent while a database write lock is held, and a page never waits for SMTP.
- A mail that carries a link gets its single-use token when it is sent (``account_tokens``):
  no secret waits in the outbox, and a retry mints a fresh link (the older one dies).
- Failures are audited (``mail.failed``, ``mail.gave_up``), retried with exponential back-off
  (30 s doubling to 6 h, ten attempts) by any worker that serves a request later, by
  ``flask mail retry`` or ``flask mail worker``, and summed up in ``/healthz``.
- Bodies come from ``templates/mail/<kind>.txt`` (which sets ``subject``) and ``.html``;
  operators override them from ``instance/templates/mail/``. Links are built from ISSUER.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from urllib.parse import urlencode, urlsplit

import peewee
from flask import Flask, current_app, request

from oauth import audit, metrics
from oauth.accounts import account_tokens, mail_transport
from oauth.accounts.mail_transport import MailError, Message
from oauth.storage.db import database, write_transaction
from oauth.storage.deliveries import MailOutbox
from oauth.storage.models import User, utcnow

log = logging.getLogger(__name__)

EXTENSION = "portcullis.mail"
MAX_ATTEMPTS = 10
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 6 * 3600
POLL_SECONDS = 30  # how often a worker that serves requests looks for mail due again
BATCH = 20

# kind -> (the link's token purpose and path, or None)
KINDS: dict[str, tuple[str, str] | None] = {
    "verify_email": (account_tokens.VERIFY_EMAIL, "/verify-email"),
    "change_email": (account_tokens.CHANGE_EMAIL, "/verify-email"),
    "password_reset": (account_tokens.PASSWORD_RESET, "/reset-password"),
    "password_changed": None,
    "email_changed": None,
    "signup_exists": None,
    "test": None,
}


def queue(kind: str, to: str, *, user_id: str | None = None, **context) -> None:
    """Queue one mail; it is sent once the caller's transaction commits."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    MailOutbox.create(kind=kind, to_address=to, user_id=user_id, context=context)
    dispatcher = current_app.extensions.get(EXTENSION)
    if dispatcher is not None:
        database.after_commit(dispatcher.wake)


# --- sending -------------------------------------------------------------------------------


def deliver_due(limit: int = BATCH) -> dict[str, int]:
    """Try every mail that is due (up to ``limit``); returns how many were sent, failed, dropped."""
    now = utcnow()
    ids = [
        row.id
        for row in MailOutbox.select(MailOutbox.id)
        .where((MailOutbox.status == "pending") & (MailOutbox.next_attempt_at <= now))
        .order_by(MailOutbox.next_attempt_at, MailOutbox.id)
        .limit(limit)
    ]
    counts = {"sent": 0, "failed": 0, "dropped": 0}
    for row_id in ids:
        outcome = deliver_one(row_id)
        if outcome:
            counts[outcome] += 1
    if ids and random.random() < 0.05:  # housekeeping now and then, not security
        purge_old()
    return counts


def deliver_one(row_id: int) -> str | None:
    """Send one queued mail if this sender wins it: "sent", "failed", "dropped" or None."""
    if not _claim(row_id):
        return None
    row = MailOutbox.get_by_id(row_id)
    try:
        message = prepare(row)
        if message is None:
            _finish(row, "dropped")
            return "dropped"
        config = current_app.config
        mail = mail_transport.build(message, config["MAIL_FROM"], _issuer_host())
        mail_transport.send(str(config["MAIL_URL"]), mail, float(config["MAIL_TIMEOUT"]))
    except MailError as error:
        _failed(row, str(error))
        return "failed"
    except Exception as error:  # a broken template or link: reported like a failing server
        log.exception("mail %s (%s) could not be prepared", row.id, row.kind)
        _failed(row, f"{type(error).__name__}: {error}"[:300])
        return "failed"
    _finish(row, "sent")
    return "sent"


def _claim(row_id: int) -> bool:
    """Take the mail for one attempt: it is not due again until the lease has passed."""
    now = utcnow()
    lease = dt.timedelta(seconds=3 * float(current_app.config["MAIL_TIMEOUT"]) + 30)
    with write_transaction():
        taken = (
            MailOutbox.update(attempts=MailOutbox.attempts + 1, next_attempt_at=now + lease)
            .where(
                (MailOutbox.id == row_id)
                & (MailOutbox.status == "pending")
                & (MailOutbox.next_attempt_at <= now)
            )
            .execute()
        )
    return taken == 1


def _finish(row: MailOutbox, status: str) -> None:
    with write_transaction():
        MailOutbox.update(status=status, sent_at=utcnow() if status == "sent" else None).where(
            MailOutbox.id == row.id
        ).execute()
    if status == "sent":
        metrics.MAIL.labels("sent").inc()
        log.info("mail %s (%s) sent to %s", row.id, row.kind, row.to_address)


def retry_delay(attempts: int) -> int:
    """Seconds before attempt ``attempts + 1``: 30 s, doubling, at most 6 hours."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)


def _failed(row: MailOutbox, error: str) -> None:
    attempts = MailOutbox.get_by_id(row.id).attempts
    gave_up = attempts >= MAX_ATTEMPTS
    metrics.MAIL.labels("failed").inc()
    retry_at = utcnow() + dt.timedelta(seconds=retry_delay(attempts))
    log.warning(
        "mail %s (%s) to %s failed (attempt %s%s): %s",
        row.id,
        row.kind,
        row.to_address,
        attempts,
        ", giving up" if gave_up else f", retry at {retry_at:%H:%M:%S} UTC",
        error,
    )
    with write_transaction():
        MailOutbox.update(
            status="failed" if gave_up else "pending",
            next_attempt_at=retry_at,
            last_error=error[:500],
        ).where(MailOutbox.id == row.id).execute()
        details = {"mail_id": row.id, "kind": row.kind, "to": row.to_address, "attempt": attempts}
        if gave_up:
            audit.record("mail.gave_up", user_id=row.user_id, error=error[:300], **details)
        else:
            retry = retry_at.isoformat(timespec="seconds") + "Z"
            audit.record(
                "mail.failed", user_id=row.user_id, error=error[:300], retry_at=retry, **details
            )


def retry_now(include_failed: bool = False) -> int:
    """Make every waiting mail due now (and, with ``include_failed``, the given-up ones)."""
    with write_transaction():
        waiting = MailOutbox.update(next_attempt_at=utcnow()).where(MailOutbox.status == "pending")
        count = waiting.execute()
        if include_failed:
            count += (
                MailOutbox.update(status="pending", next_attempt_at=utcnow(), attempts=0)
                .where(MailOutbox.status == "failed")
                .execute()
            )
        return count


def forget_recipient(user_id: str, email: str) -> None:
    """A deleted account's mails go, sent or not (in the deletion's transaction)."""
    MailOutbox.delete().where(
        (MailOutbox.user_id == user_id) | (MailOutbox.to_address == email)
    ).execute()


def purge_old(days: int = 7) -> None:
    """Forget sent and dropped mails after a week (the audit log keeps the failures)."""
    cutoff = utcnow() - dt.timedelta(days=days)
    with write_transaction():
        MailOutbox.delete().where(
            MailOutbox.status.in_(["sent", "dropped"]) & (MailOutbox.created_at < cutoff)
        ).execute()
    account_tokens.purge_expired()


# --- rendering -----------------------------------------------------------------------------


def _issuer_host() -> str:
    return urlsplit(current_app.config["ISSUER"]).hostname or "localhost"


def link(path: str, **params) -> str:
    """An absolute URL on this server, built from ISSUER (never from a request's Host)."""
    query = f"?{urlencode(params)}" if params else ""
    return f"{current_app.config['ISSUER']}{path}{query}"


def _recipient(row: MailOutbox) -> User | None:
    """The account a link mail is for, or None when it must not be sent (dropped)."""
    if row.user_id:
        user = User.get_or_none(User.id == row.user_id)
    else:
        user = User.get_or_none(User.email == row.to_address)
    if user is None or user.disabled:
        return None
    if row.kind == "verify_email" and (user.email != row.to_address or user.email_verified):
        return None
    if row.kind == "change_email" and User.get_or_none(User.email == row.to_address):
        return None  # the address was taken meanwhile: the link could only fail
    return user


def prepare(row: MailOutbox) -> Message | None:
    """Render the mail (minting its link token), or None when it is no longer wanted."""
    context = {
        "issuer": current_app.config["ISSUER"],
        "login_url": link("/login"),
        "forgot_password_url": link("/forgot-password"),
        "settings_url": link("/settings/security"),
        "to": row.to_address,
        "user": User.get_or_none(User.id == row.user_id) if row.user_id else None,
        **(row.context or {}),
    }
    target = KINDS[row.kind]
    if target is not None:
        user = _recipient(row)
        if user is None:
            return None
        purpose, path = target
        ttl = (
            account_tokens.PASSWORD_RESET_TTL
            if purpose == account_tokens.PASSWORD_RESET
            else int(current_app.config["EMAIL_VERIFICATION_TTL"])
        )
        fingerprint = (
            account_tokens.password_fingerprint(user)
            if purpose == account_tokens.PASSWORD_RESET
            else ""
        )
        token = account_tokens.issue(
            user,
            purpose,
            row.to_address,
            ttl,
            fingerprint=fingerprint,
            context={"next": context.get("next")} if context.get("next") else None,
        )
        context |= {"user": user, "link": link(path, token=token), "valid_hours": ttl / 3600}
    return render(row.kind, row.to_address, context)


def render(kind: str, to: str, context: dict) -> Message:
    """Subject and text from ``mail/<kind>.txt`` (it sets ``subject``), HTML from ``.html``."""
    env = current_app.jinja_env
    text_module = env.get_template(f"mail/{kind}.txt").make_module(context)
    subject = str(getattr(text_module, "subject", "") or "Message from Portcullis")
    html = env.get_template(f"mail/{kind}.html").render(context | {"subject": subject})
    return Message(to=to, subject=subject, text=str(text_module).strip() + "\n", html=html)


# --- the sender thread and health ------------------------------------------------------------


class Dispatcher:
    """This worker's sender: a thread that runs while there is mail due, woken by commits
    that queued mail and, every POLL_SECONDS at most, by requests when mail is due again."""

    def __init__(self, app: Flask):
        self.app = app
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False
        self._next_poll = 0.0

    def wake(self) -> None:
        with self._lock:
            self._again = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="portcullis-mail", daemon=True
                )
                self._thread.start()

    def poll(self) -> None:
        """Cheap and rare: wake the sender when a retry has come due."""
        now = time.monotonic()
        if now < self._next_poll:
            return
        self._next_poll = now + POLL_SECONDS
        due = MailOutbox.select(MailOutbox.id).where(
            (MailOutbox.status == "pending") & (MailOutbox.next_attempt_at <= utcnow())
        )
        if due.limit(1).exists():
            self.wake()

    def join(self, timeout: float = 10) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False
            with self.app.app_context():
                try:
                    while any(deliver_due().values()):
                        pass
                except Exception:  # a database hiccup must not kill the worker's sender for good
                    log.exception("mail sender failed; mail stays queued for the next attempt")
                finally:
                    if not database.is_closed():
                        database.close()


def health() -> dict:
    """What /healthz shows about mail: queued, failing (retrying), given up in the last day."""
    pending = MailOutbox.select().where(MailOutbox.status == "pending")
    failing = pending.where(MailOutbox.last_error != "")
    failed = MailOutbox.select().where(
        (MailOutbox.status == "failed") & (MailOutbox.created_at > utcnow() - dt.timedelta(days=1))
    )
    summary = {
        "status": "ok",
        "transport": urlsplit(str(current_app.config["MAIL_URL"])).scheme,
        "pending": pending.count(),
        "failing": failing.count(),
        "failed": failed.count(),
    }
    if summary["failing"] or summary["failed"]:
        latest = (
            MailOutbox.select(MailOutbox.last_error)
            .where((MailOutbox.last_error != "") & MailOutbox.status.in_(["pending", "failed"]))
            .order_by(MailOutbox.id.desc())
            .first()
        )
        summary |= {"status": "failing", "last_error": latest.last_error if latest else ""}
    return summary


def init_app(app: Flask) -> None:
    dispatcher = app.extensions[EXTENSION] = Dispatcher(app)

    @app.before_request
    def _retry_due_mail():
        if (request.endpoint or "").startswith("health."):
            return  # the probes answer about the database themselves
        try:
            dispatcher.poll()
        except peewee.DatabaseError as error:  # the page itself will meet the problem, or not
            log.warning("mail: cannot look for due mail: %s", type(error).__name__)
