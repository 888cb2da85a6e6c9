"""POST /oauth/token: the authorization code exchange and the token shapes."""

import base64
import datetime as dt
import time

import pytest

from oauth.protocol.grants import s256
from oauth.registry import apis
from oauth.storage.models import AuthorizationRequest, OAuthSession, RefreshToken, utcnow
from oauth.tokens import keys
from tests.oauth_helpers import REDIRECT, Flow, decode_jwt_unverified, make_client


@pytest.fixture
def flow(app, client):
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user(name="Alice Liddell", phone="+15550001")
    flow.auth.login()
    return flow


def error_of(response):
    return response.status_code, response.get_json()["error"]


def test_code_exchange_returns_every_token(flow, app):
    tokens = flow.tokens(nonce="n-123")
    assert set(tokens) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "id_token",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "openid email profile"
    assert len(tokens["refresh_token"]) >= 43


def test_token_response_is_not_cached(flow):
    code, _ = flow.get_code()
    response = flow.exchange(code)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"].startswith("application/json")


def test_access_token_is_an_rfc9068_jwt_with_the_contract_claims(flow, app):
    tokens = flow.tokens()
    header, claims = decode_jwt_unverified(tokens["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES256" and header["kid"]
    expected = {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
        "session_id",
        "email",
        "email_verified",
        "phone",
        "role",
        "aal",
        "amr",
        "app_metadata",
        "user_metadata",
        "is_anonymous",
    }
    assert expected <= set(claims)
    assert claims["iss"] == app.config["ISSUER"]
    assert claims["aud"] == "authenticated"
    assert claims["client_id"] == flow.client_id
    assert claims["role"] == "authenticated"
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is False  # a resource server must not trust it blindly
    assert claims["exp"] - claims["iat"] == 3600
    with app.app_context():
        assert keys.verify_jwt(tokens["access_token"], typ="at+jwt")["sub"] == claims["sub"]


def test_id_token_claims(flow, app):
    tokens = flow.tokens(nonce="n-xyz", scope="openid email profile phone")
    header, claims = decode_jwt_unverified(tokens["id_token"])
    assert header["kid"]
    assert claims["aud"] == flow.client_id
    assert claims["nonce"] == "n-xyz"
    assert claims["iss"] == app.config["ISSUER"]
    assert abs(claims["auth_time"] - time.time()) < 60
    from oauth.tokens.jose import at_hash

    assert claims["at_hash"] == at_hash(tokens["access_token"])
    assert claims["email"] == "alice@example.com" and claims["email_verified"] is False
    assert claims["name"] == "Alice Liddell"
    assert claims["phone_number"] == "+15550001"
    assert "updated_at" in claims and "preferred_username" in claims


def test_no_id_token_without_openid(flow):
    tokens = flow.tokens(scope="email")
    assert "id_token" not in tokens
    _, claims = decode_jwt_unverified(tokens["access_token"])
    assert claims["scope"] == "email"


def test_default_scope(flow):
    tokens = flow.tokens(scope=None)
    assert tokens["scope"] == "email"


def register_api(app, identifier="https://api.example.com", name="Example API"):
    with app.app_context():
        apis.create_api(identifier, name)


def test_resource_becomes_the_audience(flow, app):
    register_api(app)
    tokens = flow.tokens(resource="https://api.example.com")
    _, claims = decode_jwt_unverified(tokens["access_token"])
    assert claims["aud"] == "https://api.example.com"


def test_wrong_or_missing_verifier(flow):
    code, _ = flow.get_code()
    assert error_of(flow.exchange(code, verifier="x" * 50)) == (400, "invalid_grant")
    assert error_of(flow.exchange(code, verifier="")) == (400, "invalid_grant")
    # the code is still usable by the legitimate client
    assert flow.exchange(code).status_code == 200


def test_plain_challenge_equal_to_verifier_is_not_accepted(flow):
    code, _ = flow.get_code(code_challenge=flow.verifier)  # as if plain had been used
    assert error_of(flow.exchange(code)) == (400, "invalid_grant")
    assert s256(flow.verifier) != flow.verifier


def test_replayed_code_is_refused_and_revokes_its_tokens(flow, app):
    code, _ = flow.get_code()
    first = flow.exchange(code).get_json()
    assert error_of(flow.exchange(code)) == (400, "invalid_grant")
    assert flow.userinfo(first["access_token"]).status_code == 401
    assert error_of(flow.refresh(first["refresh_token"])) == (400, "invalid_grant")
    with app.app_context():
        assert OAuthSession.get().revoked_reason == "code_replay"
        assert RefreshToken.select().count() == 0


def test_code_is_bound_to_its_client(flow, app):
    other_id, other_secret = make_client(app, name="Other")
    code, _ = flow.get_code()
    other = Flow(app, flow.browser, client_id=other_id, secret=other_secret)
    other.verifier = flow.verifier
    assert error_of(other.exchange(code)) == (400, "invalid_grant")
    assert flow.exchange(code).status_code == 200


def test_code_is_bound_to_its_redirect_uri(flow):
    code, _ = flow.get_code()
    assert error_of(flow.exchange(code, redirect_uri="https://app.example/other")) == (
        400,
        "invalid_grant",
    )
    assert error_of(flow.exchange(code, redirect_uri=None)) == (400, "invalid_grant")
    assert flow.exchange(code).status_code == 200


def test_redirect_uri_may_be_omitted_when_it_was_omitted(flow):
    code, _ = flow.get_code(redirect_uri=None, scope="email")  # OAuth only: openid needs it
    assert flow.exchange(code, redirect_uri=None).status_code == 200


def test_expired_code(flow, app):
    code, _ = flow.get_code()
    with app.app_context():
        AuthorizationRequest.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    assert error_of(flow.exchange(code)) == (400, "invalid_grant")


def test_unknown_code(flow):
    assert error_of(flow.exchange("nope")) == (400, "invalid_grant")
    assert error_of(flow.exchange("a\x00b")) == (400, "invalid_grant")


def test_client_authentication(flow):
    code, _ = flow.get_code()
    assert flow.exchange(code, auth="post").status_code == 200  # registered basic, post accepted
    code, _ = flow.get_code()
    good_secret = flow.secret
    flow.secret = "wrong-secret"
    response = flow.exchange(code)
    assert error_of(response) == (401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    response = flow.exchange(code, auth="post")
    assert error_of(response) == (401, "invalid_client")
    assert "WWW-Authenticate" in response.headers
    flow.secret = None  # a confidential client acting public
    assert error_of(flow.exchange(code)) == (401, "invalid_client")
    flow.secret = good_secret
    assert flow.exchange(code).status_code == 200


def test_public_client_sends_only_its_id(app, client):
    client_id, secret = make_client(app, public=True)
    assert secret is None
    flow = Flow(app, client, client_id=client_id)
    flow.auth.create_user()
    flow.auth.login()
    code, _ = flow.get_code()
    assert error_of(flow.exchange(code, auth="none-at-all")) == (401, "invalid_client")
    tokens = flow.exchange(code).get_json()
    assert tokens["refresh_token"]


def test_client_without_refresh_grant_gets_no_refresh_token(app, client):
    client_id, secret = make_client(app, grant_types=["authorization_code"])
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    tokens = flow.tokens()
    assert "refresh_token" not in tokens


def test_grant_type_errors(flow):
    assert error_of(flow.token_request({"grant_type": "password", "username": "x"})) == (
        400, "unsupported_grant_type")  # fmt: skip
    assert error_of(flow.token_request({})) == (400, "invalid_request")
    assert error_of(flow.token_request({"grant_type": "authorization_code"})) == (
        400,
        "invalid_request",
    )


def test_token_endpoint_only_accepts_post(flow):
    response = flow.browser.get("/oauth/token")
    assert response.status_code == 405
    assert response.get_json()["error"] == "invalid_request"


def test_disabled_user_cannot_redeem_a_code(flow, app):
    code, _ = flow.get_code()
    from oauth.storage.models import User

    with app.app_context():
        User.update(disabled=True).execute()
    assert error_of(flow.exchange(code)) == (400, "invalid_grant")


def test_resource_at_token_must_match(flow, app):
    register_api(app)
    register_api(app, "https://other.example.com", "Other API")
    code, _ = flow.get_code(resource="https://api.example.com")
    assert error_of(flow.exchange(code, resource="https://other.example.com")) == (
        400,
        "invalid_target",
    )


def test_state_reaches_the_client_untouched(flow):
    _, result = flow.get_code(state="a b&c=d/é")
    assert result["state"] == "a b&c=d/é"
    assert REDIRECT


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_basic_credentials_that_are_not_utf8_are_invalid_client(client, path):
    """They were a 500 before anything checked them (issue 9, hostile input)."""
    credentials = base64.b64encode(b"\xff\xfe:\xff").decode()
    response = client.post(
        path,
        data={"grant_type": "client_credentials", "token": "x"},
        headers={"Authorization": f"Basic {credentials}"},
    )
    assert (response.status_code, response.get_json()["error"]) == (401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
