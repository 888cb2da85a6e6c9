"""POST /oauth/revoke (RFC 7009): refresh tokens end their session, access tokens are denylisted."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from oauth.registry import apis, clients, resource_servers
from oauth.storage.models import AuditEvent, OAuthSession, RefreshToken, RevokedAccessToken, utcnow
from oauth.tokens import keys
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client
from tests.oauth_helpers import basic_auth_header as basic

API = "https://api.example/"


@pytest.fixture
def app(make_app):
    """User tokens are for API unless they name another resource."""
    return make_app(DEFAULT_AUDIENCE=API)


@pytest.fixture
def resource_server(app):
    """The confidential client API's server introspects tokens as."""
    credentials = make_client(app, name="Resource Server")
    with app.app_context():
        api = apis.create_api(API, "Example API")
        resource_servers.set_resource_server(api, clients.get_client(credentials[0]))
    return credentials


def revoke(flow: Flow, token: str | None, hint: str | None = None, *, auth: str = "basic"):
    data = {}
    if token is not None:
        data["token"] = token
    if hint is not None:
        data["token_type_hint"] = hint
    headers = {}
    if auth == "basic" and flow.secret:
        headers = basic(flow.client_id, flow.secret)
    elif auth == "post" and flow.secret:
        data.update(client_id=flow.client_id, client_secret=flow.secret)
    elif auth != "none-at-all":
        data["client_id"] = flow.client_id
    return flow.browser.post("/oauth/revoke", data=data, headers=headers)


def active(flow: Flow, resource_server, token: str) -> bool:
    response = flow.browser.post(
        "/oauth/introspect", data={"token": token}, headers=basic(*resource_server)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["active"]


def test_revoking_a_refresh_token_ends_its_session(flow, app, resource_server):
    tokens = flow.tokens()
    assert active(flow, resource_server, tokens["access_token"])
    response = revoke(flow, tokens["refresh_token"])
    assert response.status_code == 200
    assert response.get_data() == b""
    assert response.headers["Cache-Control"] == "no-store"
    refreshed = flow.refresh(tokens["refresh_token"])
    assert (refreshed.status_code, refreshed.get_json()["error"]) == (400, "invalid_grant")
    assert not active(flow, resource_server, tokens["access_token"])
    assert not active(flow, (flow.client_id, flow.secret), tokens["refresh_token"])
    assert flow.userinfo(tokens["access_token"]).status_code == 401
    with app.app_context():
        session = OAuthSession.get()
        assert session.revoked_reason == "revoked_by_client"
        assert RefreshToken.select().count() == 0
        event = AuditEvent.get(AuditEvent.event_type == "token.revoked")
        assert event.client_id == flow.client_id and event.user_id == session.user_id
        assert event.details == {"token_type": "refresh_token"}
        assert tokens["refresh_token"] not in str(event.details)


def test_revoking_an_access_token_denylists_only_that_token(flow, app, resource_server):
    tokens = flow.tokens()
    assert revoke(flow, tokens["access_token"]).status_code == 200
    assert not active(flow, resource_server, tokens["access_token"])
    assert flow.userinfo(tokens["access_token"]).status_code == 401
    # the session lives on: the refresh token still works and mints live access tokens
    refreshed = flow.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    fresh = refreshed.get_json()["access_token"]
    assert active(flow, resource_server, fresh)
    assert flow.userinfo(fresh).status_code == 200
    _, claims = decode_jwt_unverified(tokens["access_token"])
    with app.app_context():
        row = RevokedAccessToken.get()
        assert row.jti == claims["jti"]
        expected = dt.datetime.fromtimestamp(claims["exp"], dt.UTC).replace(tzinfo=None)
        assert row.expires_at == expected
        assert OAuthSession.get().revoked_at is None
        event = AuditEvent.get(AuditEvent.event_type == "token.revoked")
        assert event.details == {"token_type": "access_token"}
        assert event.user_id == claims["sub"]


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "something_else"])
def test_hints_only_order_the_search(flow, resource_server, hint):
    tokens = flow.tokens()
    assert revoke(flow, tokens["access_token"], hint).status_code == 200
    assert not active(flow, resource_server, tokens["access_token"])
    assert revoke(flow, tokens["refresh_token"], hint).status_code == 200
    assert flow.refresh(tokens["refresh_token"]).status_code == 400


def test_another_clients_tokens_are_untouched(flow, app, resource_server):
    tokens = flow.tokens()
    other_id, other_secret = make_client(app, name="Other")
    other = Flow(app, flow.browser, client_id=other_id, secret=other_secret)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        response = revoke(other, token)
        assert response.status_code == 200 and response.get_data() == b""
    assert active(flow, resource_server, tokens["access_token"])
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    with app.app_context():
        assert RevokedAccessToken.select().count() == 0
        assert OAuthSession.get().revoked_at is None
        assert not AuditEvent.select().where(AuditEvent.event_type == "token.revoked").exists()


@pytest.mark.parametrize("token", ["nope", "a.b.c", "x" * 20000, "a\x00b", "é"])
def test_unknown_tokens_answer_200(flow, token):
    response = revoke(flow, token)
    assert response.status_code == 200
    assert response.get_data() == b""


def test_missing_token_is_invalid_request(flow):
    response = revoke(flow, None)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert revoke(flow, "").get_json()["error"] == "invalid_request"


def test_client_authentication(flow):
    tokens = flow.tokens()
    assert revoke(flow, "nope", auth="post").status_code == 200
    good = flow.secret
    flow.secret = "wrong"
    response = revoke(flow, tokens["access_token"])
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    flow.secret = None  # a confidential client may not identify with its client_id alone
    assert revoke(flow, tokens["access_token"]).status_code == 401
    assert revoke(flow, tokens["access_token"], auth="none-at-all").status_code == 401
    flow.secret = good
    assert flow.userinfo(tokens["access_token"]).status_code == 200


def test_public_client_revokes_with_its_client_id(app, client, resource_server):
    client_id, _ = make_client(app, public=True)
    flow = Flow(app, client, client_id=client_id)
    flow.auth.create_user()
    flow.auth.login()
    tokens = flow.tokens()
    assert revoke(flow, tokens["access_token"], auth="none-at-all").status_code == 401
    assert revoke(flow, tokens["access_token"]).status_code == 200
    assert not active(flow, resource_server, tokens["access_token"])
    assert revoke(flow, tokens["refresh_token"]).status_code == 200
    assert flow.refresh(tokens["refresh_token"]).status_code == 400


def test_expired_access_token_needs_no_action(flow, app):
    now = int(time.time())
    with app.app_context():
        expired = keys.sign_jwt(
            {
                "iss": app.config["ISSUER"],
                "sub": "someone",
                "client_id": flow.client_id,
                "jti": "expired-jti",
                "iat": now - 7200,
                "exp": now - 3600,
            },
            typ="at+jwt",
        )
    assert revoke(flow, expired).status_code == 200
    with app.app_context():
        assert RevokedAccessToken.select().count() == 0


def test_revoking_twice_keeps_one_row_and_old_rows_are_cleaned(flow, app):
    tokens = flow.tokens()
    with app.app_context():
        RevokedAccessToken.create(jti="long-gone", expires_at=utcnow() - dt.timedelta(hours=1))
    assert revoke(flow, tokens["access_token"]).status_code == 200
    assert revoke(flow, tokens["access_token"]).status_code == 200
    _, claims = decode_jwt_unverified(tokens["access_token"])
    with app.app_context():
        assert [row.jti for row in RevokedAccessToken.select()] == [claims["jti"]]


def test_revoke_only_accepts_post(flow):
    response = flow.browser.get("/oauth/revoke")
    assert response.status_code == 405
    assert response.get_json()["error"] == "invalid_request"
