"""Refresh token rotation, the reuse interval, reuse detection and concurrent refreshes."""

import datetime as dt
import threading

import pytest
import requests

from oauth.security import sha256_hex
from oauth.storage.models import OAuthSession, RefreshToken, utcnow
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client


def make_flow(app, client):
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    return flow


@pytest.fixture
def flow(app, client):
    return make_flow(app, client)


def error_of(response):
    return response.status_code, response.get_json()["error"]


def test_refresh_rotates(flow, app):
    first = flow.tokens()
    response = flow.refresh(first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    second = response.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert "id_token" in second  # openid was granted
    _, claims = decode_jwt_unverified(second["access_token"])
    assert claims["session_id"] == decode_jwt_unverified(first["access_token"])[1]["session_id"]
    with app.app_context():
        stored = [row.token_hash for row in RefreshToken.select()]
        assert sha256_hex(second["refresh_token"]) in stored
        assert second["refresh_token"] not in stored  # hashed at rest
    third = flow.refresh(second["refresh_token"]).get_json()
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])


def test_replay_within_the_interval_returns_the_current_pair(flow, app):
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).get_json()
    replay = flow.refresh(first["refresh_token"])
    assert replay.status_code == 200
    assert replay.get_json()["refresh_token"] == second["refresh_token"]
    # two steps behind still lands on the live token
    third = flow.refresh(second["refresh_token"]).get_json()
    assert (
        flow.refresh(first["refresh_token"]).get_json()["refresh_token"] == third["refresh_token"]
    )
    assert flow.refresh(third["refresh_token"]).status_code == 200
    with app.app_context():
        assert OAuthSession.get().revoked_at is None


def test_replay_after_the_interval_revokes_the_session(flow, app):
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).get_json()
    with app.app_context():
        RefreshToken.update(rotated_at=utcnow() - dt.timedelta(seconds=11)).where(
            RefreshToken.rotated_at.is_null(False)
        ).execute()
    assert error_of(flow.refresh(first["refresh_token"])) == (400, "invalid_grant")
    # the whole family is gone: the live refresh token and the access tokens
    assert error_of(flow.refresh(second["refresh_token"])) == (400, "invalid_grant")
    assert flow.userinfo(second["access_token"]).status_code == 401
    with app.app_context():
        assert OAuthSession.get().revoked_reason == "refresh_token_reuse"
    # the browser login is untouched
    assert flow.browser.get("/settings/profile").status_code == 200
    # and another authorization works as before
    assert flow.tokens()["access_token"]


def test_interval_zero_disables_the_grace_period(make_app):
    app = make_app(REFRESH_TOKEN_REUSE_INTERVAL=0)
    flow = make_flow(app, app.test_client())
    first = flow.tokens()
    second = flow.refresh(first["refresh_token"]).get_json()
    assert error_of(flow.refresh(first["refresh_token"])) == (400, "invalid_grant")
    assert error_of(flow.refresh(second["refresh_token"])) == (400, "invalid_grant")


def test_refresh_token_is_bound_to_its_client(flow, app):
    tokens = flow.tokens()
    other_id, other_secret = make_client(app, name="Other")
    other = Flow(app, flow.browser, client_id=other_id, secret=other_secret)
    assert error_of(other.refresh(tokens["refresh_token"])) == (400, "invalid_grant")
    assert flow.refresh(tokens["refresh_token"]).status_code == 200


def test_scope_can_be_narrowed_not_widened(flow):
    tokens = flow.tokens(scope="openid email profile")
    narrowed = flow.refresh(tokens["refresh_token"], scope="email").get_json()
    assert narrowed["scope"] == "email"
    assert "id_token" not in narrowed
    assert error_of(flow.refresh(narrowed["refresh_token"], scope="email phone")) == (
        400,
        "invalid_scope",
    )
    # the session keeps what was granted
    full = flow.refresh(narrowed["refresh_token"]).get_json()
    assert full["scope"] == "openid email profile"


def test_garbage_refresh_token(flow):
    assert error_of(flow.refresh("not-a-token")) == (400, "invalid_grant")
    assert error_of(flow.token_request({"grant_type": "refresh_token"})) == (400, "invalid_request")


def test_bad_client_secret_on_refresh(flow):
    tokens = flow.tokens()
    flow.secret = "wrong"
    assert error_of(flow.refresh(tokens["refresh_token"])) == (401, "invalid_client")


def test_concurrent_refreshes_never_mint_two_live_successors(flow, app):
    tokens = flow.tokens()
    from tests.conftest import LiveServer

    with LiveServer(app) as server:
        results, barrier = [], threading.Barrier(8)

        def refresh():
            barrier.wait()
            response = requests.post(
                server.url + "/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                auth=(flow.client_id, flow.secret),
                timeout=30,
            )
            results.append((response.status_code, response.json().get("refresh_token")))

        threads = [threading.Thread(target=refresh) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [status for status, _ in results] == [200] * 8
    assert len({token for _, token in results}) == 1  # everybody got the same successor
    with app.app_context():
        live = RefreshToken.select().where(RefreshToken.rotated_at.is_null()).count()
        assert live == 1
        assert RefreshToken.select().count() == 2


def _consent_last_used(app, flow):
    from oauth.storage.models import Consent

    with app.app_context():
        return Consent.get(Consent.client == flow.client_id).last_used_at


def test_tokens_touch_the_consents_last_use_at_most_once_a_minute(flow, app, monkeypatch):
    from oauth.storage import models

    first = flow.tokens()
    touched = _consent_last_used(app, flow)
    assert touched is not None  # the code exchange wrote "last used"
    second = flow.refresh(first["refresh_token"]).get_json()
    assert _consent_last_used(app, flow) == touched  # a refresh a moment later did not
    monkeypatch.setattr(models, "LAST_USED_EVERY", 0)  # as if the minute had passed
    assert flow.refresh(second["refresh_token"]).status_code == 200
    assert _consent_last_used(app, flow) > touched
