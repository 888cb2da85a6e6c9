"""RP-Initiated and Back-Channel Logout end to end over real HTTP: gunicorn (two workers),
Authlib's requests client as the relying party, a `requests` session as the browser, and a
local HTTP server as the relying party's back-channel endpoint (issue 11)."""

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from tests.live import serve
from tests.logout_helpers import Receiver, verify_logout_token
from tests.oauth_helpers import decode_jwt_unverified, make_client
from tests.test_e2e_http import browser_sign_in_and_approve

CALLBACK = "http://127.0.0.1:8765/callback"
SIGNED_OUT = "http://127.0.0.1:8765/signed-out"


def test_rp_initiated_and_backchannel_logout_live(app, auth, database_url, tmp_path):
    auth.create_user()
    with Receiver() as receiver:
        client_id, secret = make_client(
            app,
            name="E2E App",
            redirect_uris=[CALLBACK],
            metadata={
                "post_logout_redirect_uris": [SIGNED_OUT],
                "backchannel_logout_uri": receiver.url,
                "backchannel_logout_session_required": True,
                "logout_revokes_tokens": True,
            },
        )
        settings = {"SECRET_KEY": app.config["SECRET_KEY"], "FETCH_ALLOW_PRIVATE_ADDRESSES": "true"}
        with serve(database_url, tmp_path, workers=2, **settings) as base:
            _logout_flow(base, client_id, secret, receiver)


def _logout_flow(base: str, client_id: str, secret: str, receiver: Receiver) -> None:
    metadata = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
    assert metadata["end_session_endpoint"] == base + "/oauth/logout"
    assert metadata["backchannel_logout_supported"] is True
    oauth = OAuth2Session(
        client_id, secret, scope="openid email", redirect_uri=CALLBACK,
        code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic",
    )  # fmt: skip
    verifier = secrets.token_urlsafe(48)
    authorize_url, _ = oauth.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce="n1"
    )
    browser = requests.Session()
    callback = browser_sign_in_and_approve(browser, authorize_url)
    token = oauth.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    sid = decode_jwt_unverified(token["id_token"])[1]["sid"]
    assert browser.get(base + "/settings/profile", allow_redirects=False, timeout=10).ok

    state = secrets.token_urlsafe(12)
    logout_url = add_params_to_uri(
        metadata["end_session_endpoint"],
        [
            ("id_token_hint", token["id_token"]),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", state),
        ],
    )
    response = browser.get(logout_url, allow_redirects=False, timeout=10)
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == SIGNED_OUT
    assert parse_qs(location.query) == {"state": [state]}
    profile = browser.get(base + "/settings/profile", allow_redirects=False, timeout=10)
    assert profile.status_code == 302 and "/login" in profile.headers["Location"]

    # the back-channel: one logout token for this session, signed with a published key
    assert len(receiver.received) == 1
    jwks = requests.get(metadata["jwks_uri"], timeout=10).json()
    claims = verify_logout_token(receiver.tokens()[0], jwks)
    assert claims["aud"] == client_id and claims["sid"] == sid and claims["iss"] == base

    # the client registered logout_revokes_tokens: its refresh token is gone
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"
