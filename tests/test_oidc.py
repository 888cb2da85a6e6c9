"""UserInfo, discovery and the JWKS."""

import pytest

from oauth.storage.models import OAuthSession, User, utcnow
from oauth.tokens import keys
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client


@pytest.fixture
def flow(app, client):
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user(name="Alice", phone="+15550001")
    flow.auth.login()
    return flow


def test_userinfo_releases_the_granted_scopes(flow):
    tokens = flow.tokens(scope="openid email")
    for method in ("GET", "POST"):
        response = flow.browser.open(
            "/oauth/userinfo",
            method=method,
            headers={"Authorization": "Bearer " + tokens["access_token"]},
        )
        assert response.status_code == 200
        body = response.get_json()
        assert set(body) == {"sub", "email", "email_verified"}
        assert body["email"] == "alice@example.com"
    full = flow.userinfo(flow.tokens(scope="openid email profile phone")["access_token"]).get_json()
    assert full["name"] == "Alice" and full["phone_number"] == "+15550001"


def test_userinfo_accepts_the_form_body_token(flow):
    tokens = flow.tokens()
    response = flow.browser.post("/oauth/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200


def test_userinfo_errors(flow, app):
    missing = flow.browser.get("/oauth/userinfo")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.get_json()["error"] == "invalid_token"
    garbage = flow.userinfo("not.a.token")
    assert garbage.status_code == 401
    assert 'error="invalid_token"' in garbage.headers["WWW-Authenticate"]
    no_openid = flow.userinfo(flow.tokens(scope="email")["access_token"])
    assert no_openid.status_code == 403
    assert no_openid.get_json()["error"] == "insufficient_scope"
    tokens = flow.tokens()
    _, claims = decode_jwt_unverified(tokens["access_token"])
    tampered = tokens["access_token"][:-4] + (
        "AAAA" if not tokens["access_token"].endswith("AAAA") else "BBBB"
    )
    assert flow.userinfo(tampered).status_code == 401
    with app.app_context():
        OAuthSession.update(revoked_at=utcnow()).where(
            OAuthSession.id == claims["session_id"]
        ).execute()
    assert flow.userinfo(tokens["access_token"]).status_code == 401


def test_userinfo_refuses_tokens_of_disabled_users(flow, app):
    tokens = flow.tokens()
    with app.app_context():
        User.update(disabled=True).execute()
    assert flow.userinfo(tokens["access_token"]).status_code == 401


def test_userinfo_refuses_id_tokens_and_foreign_issuers(flow, app):
    tokens = flow.tokens()
    assert flow.userinfo(tokens["id_token"]).status_code == 401
    with app.app_context():
        _, claims = decode_jwt_unverified(tokens["access_token"])
        forged = keys.sign_jwt({**claims, "iss": "https://evil.example"}, typ="at+jwt")
    assert flow.userinfo(forged).status_code == 401


def test_old_tokens_verify_after_key_rotation(flow, app):
    tokens = flow.tokens()
    with app.app_context():
        keys.rotate()
    assert flow.userinfo(tokens["access_token"]).status_code == 200
    fresh = flow.tokens()
    assert (
        decode_jwt_unverified(fresh["access_token"])[0]["kid"]
        != decode_jwt_unverified(tokens["access_token"])[0]["kid"]
    )
    jwks = flow.browser.get("/.well-known/jwks.json").get_json()
    assert len(jwks["keys"]) == 4  # ES256 and RS256 rotated together: current and previous


def test_discovery_documents(client, app):
    oidc = client.get("/.well-known/openid-configuration")
    oauth = client.get("/.well-known/oauth-authorization-server")
    assert oidc.status_code == oauth.status_code == 200
    assert oidc.get_json() == oauth.get_json()
    assert "max-age" in oidc.headers["Cache-Control"] and "public" in oidc.headers["Cache-Control"]
    doc = oidc.get_json()
    issuer = app.config["ISSUER"]
    assert doc["issuer"] == issuer
    assert doc["authorization_endpoint"] == issuer + "/oauth/authorize"
    assert doc["token_endpoint"] == issuer + "/oauth/token"
    assert doc["userinfo_endpoint"] == issuer + "/oauth/userinfo"
    assert doc["jwks_uri"] == issuer + "/.well-known/jwks.json"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert set(doc["id_token_signing_alg_values_supported"]) == {"ES256", "RS256"}
    assert {"openid", "email", "profile", "phone", "offline_access"} <= set(doc["scopes_supported"])
    assert {"authorization_code", "refresh_token"} <= set(doc["grant_types_supported"])
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert doc["response_types_supported"] == ["code"]
    assert "email_verified" in doc["claims_supported"]


def test_jwks(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "max-age" in response.headers["Cache-Control"]
    published = response.get_json()["keys"]
    assert sorted(key["alg"] for key in published) == ["ES256", "RS256"]  # one of each, always
    for key in published:
        assert key["use"] == "sig" and key["kid"]
        assert not {"d", "p", "q"} & set(key)


def test_protocol_endpoints_allow_browser_apps(client):
    preflight = client.options(
        "/oauth/token",
        headers={"Origin": "https://spa.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    response = client.post("/oauth/token", data={"grant_type": "refresh_token"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/.well-known/jwks.json").headers["Access-Control-Allow-Origin"] == "*"
