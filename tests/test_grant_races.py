"""What changes while a grant's hook runs is seen by its write transaction (issue 13).

A refresh rotation and a code exchange write in one conditional statement when nothing
changed since validation, and fall back to reading everything again under the lock when it
did. These tests change things in the middle of the request, while its (HTTP) hook is held,
over a live server, on SQLite and PostgreSQL: a revocation, a disabled user, an expired code.
"""

from __future__ import annotations

import datetime as dt

import requests

from oauth.accounts import admin
from oauth.storage.models import AuthorizationRequest, OAuthSession, RefreshToken, User, utcnow
from tests.conftest import LiveServer
from tests.test_http_hook_limits import Gate, run_during_slow_hook, user_flow


def _exchange(flow, code: str) -> dict:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier,
    }


def _tokens_through_the_gate(flow, gate: Gate) -> dict:
    gate.release.set()
    tokens = flow.tokens()
    gate.release.clear()
    gate.arrived.clear()
    return tokens


def _disable_the_user(app) -> None:
    with app.app_context():
        admin.disable_user(User.get(), actor_id=None)


def _live_refresh_tokens(app) -> int:
    with app.app_context():
        return RefreshToken.select().where(RefreshToken.rotated_at.is_null()).count()


def test_a_refresh_token_revoked_during_the_hook_gets_no_successor(make_app):
    gate = Gate()
    try:
        app = make_app(HTTP_HOOK_URL=gate.url, HTTP_HOOK_TIMEOUT=30)
        flow = user_flow(app)
        tokens = _tokens_through_the_gate(flow, gate)
        auth = (flow.client_id, flow.secret)
        with LiveServer(app) as server:

            def revoke():
                revoked = requests.post(
                    server.url + "/oauth/revoke",
                    data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
                    auth=auth,
                    timeout=10,
                )
                assert revoked.status_code == 200, revoked.text

            data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            response = run_during_slow_hook(server, gate, data, auth, revoke)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_grant"
        assert _live_refresh_tokens(app) == 0
        with app.app_context():
            assert OAuthSession.get().revoked_at is not None
    finally:
        gate.close()


def test_a_user_disabled_during_a_refresh_gets_no_successor(make_app):
    gate = Gate()
    try:
        app = make_app(HTTP_HOOK_URL=gate.url, HTTP_HOOK_TIMEOUT=30)
        flow = user_flow(app)
        tokens = _tokens_through_the_gate(flow, gate)
        with LiveServer(app) as server:
            data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            auth = (flow.client_id, flow.secret)
            response = run_during_slow_hook(
                server, gate, data, auth, lambda: _disable_the_user(app)
            )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_grant"
        assert _live_refresh_tokens(app) == 0
    finally:
        gate.close()


def test_a_user_disabled_during_a_code_exchange_gets_no_session(make_app):
    gate = Gate()
    try:
        app = make_app(HTTP_HOOK_URL=gate.url, HTTP_HOOK_TIMEOUT=30)
        flow = user_flow(app)
        with LiveServer(app) as server:
            code, _ = flow.get_code()
            auth = (flow.client_id, flow.secret)
            response = run_during_slow_hook(
                server, gate, _exchange(flow, code), auth, lambda: _disable_the_user(app)
            )
        assert response.status_code == 400, response.text
        assert response.json() == {
            "error": "invalid_grant",
            "error_description": "The user of this authorization code is not active.",
        }
        with app.app_context():
            assert OAuthSession.select().count() == 0  # the session insert was undone
            assert RefreshToken.select().count() == 0
            assert AuthorizationRequest.get().status == "approved"
    finally:
        gate.close()


def test_a_code_that_expires_during_the_hook_is_refused(make_app):
    gate = Gate()
    try:
        app = make_app(HTTP_HOOK_URL=gate.url, HTTP_HOOK_TIMEOUT=30)
        flow = user_flow(app)
        with LiveServer(app) as server:
            code, _ = flow.get_code()

            def expire():
                with app.app_context():
                    past = utcnow() - dt.timedelta(seconds=1)
                    AuthorizationRequest.update(expires_at=past).execute()

            auth = (flow.client_id, flow.secret)
            response = run_during_slow_hook(server, gate, _exchange(flow, code), auth, expire)
        assert response.status_code == 400, response.text
        assert response.json()["error_description"] == "The authorization code has expired."
        with app.app_context():
            assert OAuthSession.select().count() == 0
    finally:
        gate.close()


def test_an_unchanged_grant_still_goes_through_the_hook(make_app):
    """The fast path is the common one: a code and its refresh, the hook called for each."""
    gate = Gate()
    try:
        app = make_app(HTTP_HOOK_URL=gate.url, HTTP_HOOK_TIMEOUT=30)
        flow = user_flow(app)
        tokens = _tokens_through_the_gate(flow, gate)
        with LiveServer(app) as server:
            data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            auth = (flow.client_id, flow.secret)
            response = run_during_slow_hook(server, gate, data, auth, lambda: None)
        assert response.status_code == 200, response.text
        assert gate.calls == 2
        assert _live_refresh_tokens(app) == 1
        with app.app_context():
            old = RefreshToken.get(RefreshToken.rotated_at.is_null(False))
            new = RefreshToken.get(RefreshToken.rotated_at.is_null())
            assert new.parent_id == old.id and old.successor_ciphertext
    finally:
        gate.close()
