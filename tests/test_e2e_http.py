"""The whole flow over real HTTP, with Authlib's OAuth client playing the third-party app
and a `requests` session playing the user's browser. The ID token is verified independently
(joserfc) against the published JWKS, as a relying party would."""

import re
import secrets
from urllib.parse import urljoin

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt as rfc_jwt
from joserfc.jwk import KeySet

from tests.oauth_helpers import make_client

CALLBACK = "http://127.0.0.1:8765/callback"


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def browser_sign_in_and_approve(browser: requests.Session, authorize_url: str) -> str:
    """Return the callback URL the browser lands on after login + consent."""
    response = browser.get(authorize_url, allow_redirects=True)
    assert response.url.split("?")[0].endswith("/login"), response.url
    response = browser.post(
        response.url,
        data={
            "email": "alice@example.com",
            "password": "correct horse",
            "csrf_token": csrf(response.text),
            "next": re.search(r'name="next"[^>]*value="([^"]+)"', response.text)
            .group(1)
            .replace("&amp;", "&"),
        },
        allow_redirects=True,
    )
    assert "/oauth/consent" in response.url, response.url
    assert "E2E App" in response.text
    response = browser.post(
        response.url,
        data={"csrf_token": csrf(response.text), "decision": "approve"},
        allow_redirects=False,
    )
    assert response.status_code == 302
    return urljoin(response.url, response.headers["Location"])


def test_third_party_app_full_flow(app, live_server, auth):
    auth.create_user(name="Alice")
    client_id, secret = make_client(app, name="E2E App", redirect_uris=[CALLBACK])
    base = live_server.url
    metadata = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()

    oauth = OAuth2Session(
        client_id, secret, scope="openid email profile", redirect_uri=CALLBACK,
        code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic",
    )  # fmt: skip
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(8)
    authorize_url, state = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = browser_sign_in_and_approve(requests.Session(), authorize_url)
    assert callback.startswith(CALLBACK)
    assert f"state={state}" in callback and "iss=" in callback

    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer" and token["refresh_token"] and token["id_token"]

    # the relying party verifies the ID token with the published keys
    jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    id_token = rfc_jwt.decode(token["id_token"], jwks, algorithms=["ES256", "RS256"])
    claims = id_token.claims
    assert claims["iss"] == base and claims["aud"] == client_id and claims["nonce"] == nonce
    access = rfc_jwt.decode(token["access_token"], jwks, algorithms=["ES256", "RS256"])
    assert access.header["typ"] == "at+jwt" and access.claims["client_id"] == client_id

    userinfo = oauth.get(metadata["userinfo_endpoint"]).json()
    assert userinfo == {
        "sub": claims["sub"], "email": "alice@example.com", "email_verified": False,
        "name": "Alice", "picture": "", "preferred_username": "alice@example.com",
        "updated_at": userinfo["updated_at"],
    }  # fmt: skip

    refreshed = oauth.refresh_token(
        metadata["token_endpoint"], refresh_token=token["refresh_token"]
    )
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert oauth.get(metadata["userinfo_endpoint"]).status_code == 200


def test_public_client_with_client_secret_post_less_flow(app, live_server, auth):
    auth.create_user()
    client_id, _ = make_client(
        app, name="E2E App", redirect_uris=["http://127.0.0.1/callback"], public=True
    )
    oauth = OAuth2Session(
        client_id, scope="openid email", redirect_uri="http://127.0.0.1:8765/callback",
        code_challenge_method="S256", token_endpoint_auth_method="none",
    )  # fmt: skip
    verifier = secrets.token_urlsafe(48)
    url, _ = oauth.create_authorization_url(
        live_server.url + "/oauth/authorize", code_verifier=verifier
    )
    callback = browser_sign_in_and_approve(requests.Session(), url)  # loopback: any port matches
    token = oauth.fetch_token(
        live_server.url + "/oauth/token", authorization_response=callback, code_verifier=verifier
    )
    assert token["access_token"] and token["refresh_token"]
