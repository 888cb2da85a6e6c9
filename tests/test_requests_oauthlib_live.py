"""requests-oauthlib, the other widely used Python OAuth client, against a live server (issue 11):
authorization code with its own PKCE, the OIDC ``claims`` parameter, UserInfo, refresh, then
RP-initiated logout; and client credentials with its BackendApplicationClient."""

from __future__ import annotations

import json
import secrets
from urllib.parse import parse_qs, urlsplit

import requests
from joserfc import jwt as rfc_jwt
from joserfc.jwk import KeySet
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from tests.m2m_helpers import API, setup_m2m
from tests.oauth_helpers import make_client
from tests.test_e2e_http import CALLBACK, browser_sign_in_and_approve

SIGNED_OUT = "http://127.0.0.1:8765/signed-out"


def test_code_flow_claims_refresh_and_logout(app, live_server, auth, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the live server is plain http
    auth.create_user(name="Alice")
    metadata_fields = {"post_logout_redirect_uris": [SIGNED_OUT]}
    client_id, secret = make_client(
        app, name="E2E App", redirect_uris=[CALLBACK], metadata=metadata_fields
    )
    base = live_server.url
    discovery = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
    assert discovery["claims_parameter_supported"] is True

    rp = OAuth2Session(client_id, redirect_uri=CALLBACK, scope=["openid", "email"], pkce="S256")
    claims_request = {"id_token": {"name": {"essential": True}}}
    nonce = secrets.token_urlsafe(8)
    url, state = rp.authorization_url(
        discovery["authorization_endpoint"], nonce=nonce, claims=json.dumps(claims_request)
    )
    assert "code_challenge=" in url  # requests-oauthlib's own PKCE
    browser = requests.Session()
    callback = browser_sign_in_and_approve(browser, url)
    token = rp.fetch_token(
        discovery["token_endpoint"], authorization_response=callback, client_secret=secret
    )
    assert token["refresh_token"] and token["id_token"]

    jwks = KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json())
    id_token = rfc_jwt.decode(token["id_token"], jwks, algorithms=["RS256"])  # OIDC's default
    assert id_token.claims["nonce"] == nonce and id_token.claims["name"] == "Alice"
    assert id_token.claims["sid"]
    assert rp.get(discovery["userinfo_endpoint"]).json()["email"] == "alice@example.com"

    refreshed = rp.refresh_token(discovery["token_endpoint"], auth=(client_id, secret))
    assert refreshed["refresh_token"] != token["refresh_token"]

    logout = browser.get(
        discovery["end_session_endpoint"],
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": state,
        },
        allow_redirects=False,
    )
    assert logout.status_code in (302, 303)
    location = logout.headers["Location"]
    assert location.startswith(SIGNED_OUT) and parse_qs(urlsplit(location).query)["state"] == [
        state
    ]
    page = browser.get(base + "/settings/profile", allow_redirects=False)
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_client_credentials_with_a_backend_application_client(app, live_server, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    client_id, secret = setup_m2m(app)
    service = OAuth2Session(client=BackendApplicationClient(client_id=client_id))
    discovery = requests.get(
        live_server.url + "/.well-known/oauth-authorization-server", timeout=10
    ).json()
    token = service.fetch_token(
        discovery["token_endpoint"], client_id=client_id, client_secret=secret, audience=API
    )
    jwks = KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json())
    claims = rfc_jwt.decode(token["access_token"], jwks, algorithms=["ES256", "RS256"]).claims
    assert claims["aud"] == API and claims["gty"] == "client-credentials"
