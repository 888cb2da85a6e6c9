"""Limits on password and second-factor checks: slow the guesser, never lock out the owner.

Every check of a secret a person knows (sign-in, the current password on the settings page,
a second factor) runs through ``guarded``. Only failures count, under three keys:

- the account from this IP (``LOGIN_RATE_LIMIT``, stepped windows: a growing back-off);
- this IP over every account (``LOGIN_IP_RATE_LIMIT``: one address spraying many accounts);
- the account from browsers it has never signed in from (``LOGIN_ACCOUNT_RATE_LIMIT``:
  guesses spread over many addresses).

A browser that signed in to the account before carries a device cookie (OWASP "Slow Down
Online Guessing Attacks with Device Cookies"): it is held only to its own counter under
``LOGIN_RATE_LIMIT``, so the owner still signs in while the account is under attack. The
cookie is signed with the secret key and names the account only by an HMAC of its email.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, g, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from oauth.accounts.users import normalise_email
from oauth.ratelimit import client_ip, throttle
from oauth.security import random_token

T = TypeVar("T")

DEVICE_COOKIE = "portcullis_device"
DEVICE_COOKIE_DAYS = 365
MAX_ACCOUNTS_PER_DEVICE = 5


class Throttled(Exception):
    """Too many failed checks: answer 429 and ask to wait ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="portcullis-device")


def _account_tag(email: str) -> str:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, b"device:" + normalise_email(email).encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def _device_entries() -> dict[str, str]:
    """{account tag: device nonce} from this browser's valid device cookie."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return {}
    try:
        entries = _serializer().loads(raw, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadSignature:
        return {}
    if not isinstance(entries, dict):
        return {}
    return {str(k): str(v) for k, v in entries.items()}


class Attempt:
    """One check of a secret for one account, under the keys that apply to this browser."""

    def __init__(self, email: str):
        self.tag = _account_tag(email)
        self.device = _device_entries().get(self.tag)
        config = current_app.config
        ip = client_ip()
        if self.device:
            self.keys = [(config["LOGIN_RATE_LIMIT"], f"pw/device/{self.device}")]
        else:
            self.keys = [
                (config["LOGIN_RATE_LIMIT"], f"pw/account-ip/{self.tag}/{ip}"),
                (config["LOGIN_IP_RATE_LIMIT"], f"pw/ip/{ip}"),
                (config["LOGIN_ACCOUNT_RATE_LIMIT"], f"pw/account/{self.tag}"),
            ]

    def retry_after(self) -> int | None:
        counter = throttle()
        waits = [counter.retry_after(limit, key) for limit, key in self.keys]
        return max((w for w in waits if w is not None), default=None)

    def failed(self) -> None:
        counter = throttle()
        for limit, key in self.keys:
            counter.hit(limit, key)

    def succeeded(self) -> None:
        """The owner is back: forget this browser's failures and remember the browser."""
        limit, key = self.keys[0]
        throttle().clear(limit, key)
        if not self.device:
            g.portcullis_new_device = self.tag


def guarded(email: str, check: Callable[[], T]) -> T:
    """Run one password or second-factor ``check`` for ``email`` under the limits.

    Raises ``Throttled`` (without running the check) while a limit holds; a falsy result of
    ``check`` counts as a failure.
    """
    attempt = Attempt(email)
    wait = attempt.retry_after()
    if wait is not None:
        raise Throttled(wait)
    result = check()
    if result:
        attempt.succeeded()
    else:
        attempt.failed()
    return result


def _set_device_cookie(response):
    tag = g.pop("portcullis_new_device", None)
    if tag is None:
        return response
    entries = _device_entries()
    entries.pop(tag, None)
    entries[tag] = random_token(16)
    entries = dict(list(entries.items())[-MAX_ACCOUNTS_PER_DEVICE:])
    response.set_cookie(
        DEVICE_COOKIE,
        _serializer().dumps(entries),
        max_age=DEVICE_COOKIE_DAYS * 86400,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return response


def init_app(app: Flask) -> None:
    app.after_request(_set_device_cookie)
