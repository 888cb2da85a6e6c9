"""POST /oauth/introspect (RFC 7662): what is live, for authenticated confidential clients
(who may see which token: tests/test_introspection_access.py)."""

from __future__ import annotations

import datetime as dt
import functools
import time

import pytest

from oauth.registry import apis, clients, resource_servers
from oauth.storage.models import OAuthSession, RevokedAccessToken, User, utcnow
from oauth.tokens import keys, refresh
from tests.oauth_helpers import basic_auth_header as basic
from tests.oauth_helpers import decode_jwt_unverified, make_client

ACCESS_FIELDS = {
    "active",
    "scope",
    "client_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "token_type",
    "jti",
    "username",
}


API = "https://api.example/"


@pytest.fixture
def api(app):
    """The API the user tokens are for (only a registered API is a user-token audience)."""
    with app.app_context():
        return apis.create_api(API, "Example API")


@pytest.fixture
def resource_server(app, api):
    """The client an API's server authenticates as: it may introspect tokens for the API."""
    credentials = make_client(app, name="Resource Server")
    with app.app_context():
        resource_servers.set_resource_server(api, clients.get_client(credentials[0]))
    return credentials


@pytest.fixture
def flow(flow, api):
    """The signed-in user's app, asking for tokens for the API by default."""
    flow.tokens = functools.partial(flow.tokens, resource=API)
    return flow


def introspect(browser, credentials, token: str | None, hint: str | None = None, auth="basic"):
    data = {} if token is None else {"token": token}
    if hint:
        data["token_type_hint"] = hint
    headers = {}
    if auth == "basic":
        headers = basic(*credentials)
    elif auth == "post":
        data.update(client_id=credentials[0], client_secret=credentials[1])
    return browser.post("/oauth/introspect", data=data, headers=headers)


def body(browser, credentials, token: str, hint: str | None = None) -> dict:
    response = introspect(browser, credentials, token, hint)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def test_live_access_token(flow, app, resource_server):
    issued = flow.tokens(scope="openid email")
    _, claims = decode_jwt_unverified(issued["access_token"])
    result = body(flow.browser, resource_server, issued["access_token"])
    assert set(result) == ACCESS_FIELDS
    assert result["active"] is True
    assert result["token_type"] == "Bearer"
    assert result["scope"] == "openid email"
    assert result["client_id"] == flow.client_id
    assert result["username"] == "alice@example.com"
    assert result["iss"] == app.config["ISSUER"]
    for name in ("sub", "aud", "exp", "iat", "jti"):
        assert result[name] == claims[name]


def owner(flow) -> tuple[str, str]:
    return flow.client_id, flow.secret


def test_live_refresh_token(flow, app):
    issued = flow.tokens(scope="openid email")
    result = body(flow.browser, owner(flow), issued["refresh_token"])
    assert result["active"] is True
    assert result["token_type"] == "refresh_token"
    assert result["scope"] == "openid email"
    assert result["client_id"] == flow.client_id
    assert result["iss"] == app.config["ISSUER"]
    assert result["username"] == "alice@example.com"
    assert "exp" not in result
    with app.app_context():
        assert result["sub"] == User.get().id


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "bogus"])
def test_a_wrong_hint_does_not_hide_a_token(flow, resource_server, hint):
    issued = flow.tokens()
    assert body(flow.browser, resource_server, issued["access_token"], hint)["active"] is True
    assert body(flow.browser, owner(flow), issued["refresh_token"], hint)["active"] is True


def test_the_owning_client_may_introspect_too(flow):
    issued = flow.tokens()
    credentials = (flow.client_id, flow.secret)
    assert body(flow.browser, credentials, issued["access_token"])["active"] is True
    response = introspect(flow.browser, credentials, issued["access_token"], auth="post")
    assert response.get_json()["active"] is True


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "x" * 20000, "a\x00b"])
def test_garbage_is_inactive(flow, resource_server, token):
    if token == "":
        response = introspect(flow.browser, resource_server, token)
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_request"
        return
    assert body(flow.browser, resource_server, token) == {"active": False}


def test_missing_token_is_invalid_request(flow, resource_server):
    response = introspect(flow.browser, resource_server, None)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_expired_or_forged_access_tokens_are_inactive(flow, app, resource_server):
    issued = flow.tokens()
    _, claims = decode_jwt_unverified(issued["access_token"])
    now = int(time.time())
    with app.app_context():
        expired = keys.sign_jwt({**claims, "iat": now - 7200, "exp": now - 3600}, typ="at+jwt")
        foreign = keys.sign_jwt({**claims, "iss": "https://evil.example"}, typ="at+jwt")
        not_an_access_token = keys.sign_jwt(claims, typ="JWT")
    tampered = issued["access_token"][:-4] + (
        "AAAA" if not issued["access_token"].endswith("AAAA") else "BBBB"
    )
    for token in (expired, foreign, not_an_access_token, tampered, issued["id_token"]):
        assert body(flow.browser, resource_server, token) == {"active": False}


def test_denylisted_access_token_is_inactive(flow, app, resource_server):
    issued = flow.tokens()
    _, claims = decode_jwt_unverified(issued["access_token"])
    with app.app_context():
        RevokedAccessToken.create(
            jti=claims["jti"], expires_at=utcnow() + dt.timedelta(seconds=3600)
        )
    assert body(flow.browser, resource_server, issued["access_token"]) == {"active": False}
    assert flow.userinfo(issued["access_token"]).status_code == 401
    assert body(flow.browser, owner(flow), issued["refresh_token"])["active"] is True


def test_revoked_session_makes_both_inactive(flow, app, resource_server):
    issued = flow.tokens()
    with app.app_context():
        refresh.revoke_session(OAuthSession.get(), "test")
    for token in (issued["access_token"], issued["refresh_token"]):
        assert body(flow.browser, owner(flow), token) == {"active": False}


def test_rotated_refresh_token_is_inactive(flow, resource_server):
    issued = flow.tokens()
    rotated = flow.refresh(issued["refresh_token"]).get_json()
    assert body(flow.browser, owner(flow), issued["refresh_token"]) == {"active": False}
    assert body(flow.browser, owner(flow), rotated["refresh_token"])["active"] is True


def test_disabled_or_deleted_user_makes_tokens_inactive(flow, app, resource_server):
    issued = flow.tokens()
    with app.app_context():
        User.update(disabled=True).execute()
    for token in (issued["access_token"], issued["refresh_token"]):
        assert body(flow.browser, owner(flow), token) == {"active": False}
    with app.app_context():
        User.update(disabled=False).execute()
    assert body(flow.browser, resource_server, issued["access_token"])["active"] is True
    with app.app_context():
        User.get().delete_instance(recursive=True)
    for token in (issued["access_token"], issued["refresh_token"]):
        assert body(flow.browser, owner(flow), token) == {"active": False}


def test_client_authentication_is_required(flow, app, resource_server):
    issued = flow.tokens()
    token = issued["access_token"]
    cases = [
        introspect(flow.browser, resource_server, token, auth="none"),
        introspect(flow.browser, (resource_server[0], "wrong"), token),
        introspect(flow.browser, (resource_server[0], "wrong"), token, auth="post"),
        introspect(flow.browser, ("no-such-client", "secret"), token),
    ]
    for response in cases:
        assert response.status_code == 401, response.get_data(as_text=True)
        assert response.get_json()["error"] == "invalid_client"
        assert "WWW-Authenticate" in response.headers
        assert "active" not in response.get_json()


def test_public_clients_may_not_introspect(flow, app):
    issued = flow.tokens()
    public_id, _ = make_client(app, public=True, name="SPA")
    by_id = flow.browser.post(
        "/oauth/introspect", data={"token": issued["access_token"], "client_id": public_id}
    )
    with_fake_secret = introspect(flow.browser, (public_id, "guess"), issued["access_token"])
    for response in (by_id, with_fake_secret):
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_client"
        assert "WWW-Authenticate" in response.headers


def test_introspect_only_accepts_post(flow):
    response = flow.browser.get("/oauth/introspect")
    assert response.status_code == 405
    assert response.get_json()["error"] == "invalid_request"
