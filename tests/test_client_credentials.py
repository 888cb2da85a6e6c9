"""grant_type=client_credentials for registered APIs, with Auth0's hook reproduced end to end."""

import shutil
from pathlib import Path

import pytest

from oauth import audit
from oauth.storage.models import AuditEvent
from oauth.tokens import keys
from tests.m2m_helpers import API, cc_token, setup_m2m
from tests.oauth_helpers import basic_auth_header, decode_jwt_unverified, make_client

ROOT = Path(__file__).resolve().parent.parent


def error_of(response):
    return response.status_code, response.get_json()["error"]


def test_machine_token_claims(app, client):
    client_id, secret = setup_m2m(app)
    response = cc_token(client, client_id, secret, audience=API)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "scope",
    }  # no refresh, no ID token
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "read:things write:things"  # no scope asked: every granted scope
    header, claims = decode_jwt_unverified(body["access_token"])
    assert header["typ"] == "at+jwt" and header["kid"]
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "gty"}
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["aud"] == API and claims["gty"] == "client-credentials"
    with app.app_context():
        assert keys.verify_jwt(body["access_token"], typ="at+jwt")["aud"] == API
        audit.flush_spool()  # the event is spooled, not yet in the table
        (event,) = AuditEvent.select().where(AuditEvent.event_type == "token.issued")
        assert event.client_id == client_id and event.ip == "127.0.0.1"
        assert event.details == {
            "grant_type": "client_credentials",
            "audience": API,
            "jti": claims["jti"],  # one event names one token a client received
        }


def test_resource_is_an_alias_of_audience(app, client):
    client_id, secret = setup_m2m(app)
    assert cc_token(client, client_id, secret, resource=API).status_code == 200
    assert error_of(
        cc_token(client, client_id, secret, resource=API, audience="https://other")
    ) == (400, "invalid_target")


def test_requested_subset_of_scopes(app, client):
    client_id, secret = setup_m2m(app)
    body = cc_token(client, client_id, secret, audience=API, scope="read:things").get_json()
    assert body["scope"] == "read:things"


def test_scope_outside_the_grant_is_invalid_scope(app, client):
    client_id, secret = setup_m2m(app, granted=["read:things"])
    assert error_of(cc_token(client, client_id, secret, audience=API, scope="read:things write:things")) == (
        400, "invalid_scope")  # fmt: skip


def test_unknown_or_ungranted_api_is_invalid_target(app, client):
    client_id, secret = setup_m2m(app)
    assert error_of(cc_token(client, client_id, secret, audience="https://nope.example")) == (
        400,
        "invalid_target",
    )
    setup_m2m(
        app, identifier="https://billing.example", name="Other"
    )  # exists, not granted to our client
    assert error_of(cc_token(client, client_id, secret, audience="https://billing.example")) == (
        400,
        "invalid_target",
    )


def test_default_api(make_app):
    app = make_app(DEFAULT_API=API)
    client_id, secret = setup_m2m(app)
    http = app.test_client()
    body = cc_token(http, client_id, secret).get_json()
    assert decode_jwt_unverified(body["access_token"])[1]["aud"] == API


def test_no_audience_and_no_default(app, client):
    client_id, secret = setup_m2m(app)
    assert error_of(cc_token(client, client_id, secret)) == (400, "invalid_request")


def test_client_without_the_grant_type_is_unauthorized(app, client):
    client_id, secret = make_client(app)  # authorization_code + refresh_token
    assert error_of(cc_token(client, client_id, secret, audience=API)) == (
        400,
        "unauthorized_client",
    )


def test_bad_credentials_are_401(app, client):
    client_id, _ = setup_m2m(app)
    response = cc_token(client, client_id, "wrong", audience=API)
    assert error_of(response) == (401, "invalid_client")
    assert "WWW-Authenticate" in response.headers
    post = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "wrong",
            "audience": API,
        },
    )
    assert error_of(post) == (401, "invalid_client")


def test_public_client_cannot_use_client_credentials(app, client):
    client_id, _ = make_client(app, public=True)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "audience": API},
    )
    assert error_of(response) == (401, "invalid_client")


def test_client_secret_post_works(app, client):
    client_id, secret = setup_m2m(app)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": API,
        },
    )
    assert response.status_code == 200


def test_api_token_ttl(app, client):
    from oauth.registry import apis

    client_id, secret = setup_m2m(app)
    with app.app_context():
        apis.update_api(apis.get_api(API), token_ttl=86400)
    assert cc_token(client, client_id, secret, audience=API).get_json()["expires_in"] == 86400


def test_discovery_lists_client_credentials(client):
    assert (
        "client_credentials"
        in client.get("/.well-known/openid-configuration").get_json()["grant_types_supported"]
    )


@pytest.fixture
def auth0_example_app(make_app, tmp_path):
    """The shipped Auth0 example, installed the way users install it: copied into plugins/."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(ROOT / "plugins" / "examples" / "auth0_client_credentials.py", plugins)
    return make_app(PLUGINS_DIR=str(plugins))


def test_auth0_documentation_example_end_to_end(auth0_example_app):
    app = auth0_example_app
    client_id, secret = setup_m2m(app, scopes=["read:things"])
    response = cc_token(app.test_client(), client_id, secret, audience=API)
    assert response.status_code == 200
    body = response.get_json()
    assert "extra" in body["scope"].split()  # as Auth0 documents: "scope": "... extra"
    assert body["scope"] == "read:things extra"
    claims = decode_jwt_unverified(body["access_token"])[1]
    assert claims["https://foo.com/claim"] == "bar"
    assert claims["scope"] == "read:things extra"


def test_failed_client_authentication_is_rate_limited(make_app):
    app = make_app(CLIENT_AUTH_RATE_LIMIT="3 per minute")
    client_id, secret = setup_m2m(app)
    http = app.test_client()
    for _ in range(5):  # successes are never counted
        assert cc_token(http, client_id, secret, audience=API).status_code == 200
    codes = [cc_token(http, client_id, "wrong", audience=API).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    limited = cc_token(http, client_id, "wrong", audience=API)
    assert limited.get_json()["error"] == "slow_down" and int(limited.headers["Retry-After"]) > 0
    # The attacked client, presenting its real secret, is never refused for those failures,
    # and neither is another client from the same IP.
    assert cc_token(http, client_id, secret, audience=API).status_code == 200
    other_id, other_secret = setup_m2m(app, name="Other")
    assert cc_token(app.test_client(), other_id, other_secret, audience=API).status_code == 200
    assert cc_token(app.test_client(), other_id, "wrong", audience=API).status_code == 429


def test_client_auth_limits_can_be_switched_off(make_app):
    app = make_app(CLIENT_AUTH_RATE_LIMIT="1 per minute", RATELIMIT_ENABLED=False)
    client_id, secret = setup_m2m(app)
    http = app.test_client()
    assert [cc_token(http, client_id, "wrong", audience=API).status_code for _ in range(3)] == [
        401
    ] * 3


def test_auth0_documentation_example_over_http(auth0_example_app):
    """The same, as a machine client sees it: real HTTP against the running server."""
    import requests

    from tests.conftest import LiveServer

    app = auth0_example_app
    client_id, secret = setup_m2m(app, scopes=["read:things"])
    with LiveServer(app) as server:
        metadata = requests.get(
            server.url + "/.well-known/oauth-authorization-server", timeout=10
        ).json()
        assert "client_credentials" in metadata["grant_types_supported"]
        response = requests.post(
            metadata["token_endpoint"],
            data={"grant_type": "client_credentials", "audience": API},
            auth=(client_id, secret),
            timeout=10,
        )
        assert response.status_code == 200
        body = response.json()
        assert body["scope"].split() == ["read:things", "extra"]
        claims = decode_jwt_unverified(body["access_token"])[1]
        assert claims["https://foo.com/claim"] == "bar"
        jwks = requests.get(metadata["jwks_uri"], timeout=10).json()
        assert decode_jwt_unverified(body["access_token"])[0]["kid"] in {
            k["kid"] for k in jwks["keys"]
        }


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_credentials_of_one_client_with_another_client_id_are_invalid_request(app, path):
    """DESIGN.md: Basic credentials of client A with client_id=B in the body are refused."""
    a_id, a_secret = setup_m2m(app, name="A")
    b_id, _ = setup_m2m(app, name="B")
    http = app.test_client()
    data = {"grant_type": "client_credentials", "audience": API, "client_id": b_id, "token": "x"}
    response = http.post(path, data=data, headers=basic_auth_header(a_id, a_secret))
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_request")
    same = {**data, "client_id": a_id}
    assert http.post(path, data=same, headers=basic_auth_header(a_id, a_secret)).status_code == 200
