"""Failed client authentication at the token, revocation and introspection endpoints.

A client presenting valid credentials is never refused because someone else guessed wrong:
the request runs first, and only a failed client authentication (401) is counted, per IP and
per claimed ``client_id``. Once either is over ``CLIENT_AUTH_RATE_LIMIT`` a failure answers
429 ``slow_down`` with ``Retry-After`` instead of 401. Successes cost no limit lookup at all.
"""

from __future__ import annotations

import functools

from flask import current_app, make_response, request

from oauth.protocol.responses import basic_client_id, oauth_error
from oauth.ratelimit import client_ip, throttle


def _claimed_client_id() -> str:
    try:
        client_id = basic_client_id()
    except ValueError:
        client_id = None  # the view answered invalid_client; count it under the body's id
    return str(client_id or request.form.get("client_id") or "-")[:128]


def limit_failed_client_auth(view):
    """Answer 429 to the failures of a client or IP that failed too often; count failures."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        response = make_response(view(*args, **kwargs))
        if response.status_code != 401:
            return response
        counter = throttle()
        limit = current_app.config["CLIENT_AUTH_RATE_LIMIT"]
        keys = (f"client-auth/ip/{client_ip()}", f"client-auth/client/{_claimed_client_id()}")
        wait = counter.retry_after(limit, *keys)
        if wait is None:
            counter.hit(limit, *keys)
            return response
        return oauth_error(
            429, "slow_down", "Too many failed client authentications; try again later.",
            {"Retry-After": str(wait)},
        )  # fmt: skip

    return wrapper
