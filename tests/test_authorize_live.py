"""Issue 9 item 4 over real HTTP (gunicorn, four workers): anonymous requests store nothing,
and a request at the length limits survives the trip through the sign-in page."""

import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from oauth.storage.models import AuthorizationRequest
from tests.live import csrf, serve
from tests.oauth_helpers import make_client, pkce_pair

CALLBACK = "http://127.0.0.1:8765/callback"


def test_long_request_through_sign_in_and_no_anonymous_rows(app, auth, database_url, tmp_path):
    auth.create_user()
    # One deployment: the workers share the test app's secret key (signing keys are
    # encrypted under a key derived from it).
    with serve(database_url, tmp_path, SECRET_KEY=app.config["SECRET_KEY"]) as base:
        _long_request_through_sign_in(app, base)


def _long_request_through_sign_in(app, gunicorn: str) -> None:
    client_id, _ = make_client(app, name="Live App", redirect_uris=[CALLBACK])
    _, challenge = pkce_pair()
    state = secrets.token_urlsafe(1536)  # 2048 characters: the limit
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
        "scope": "openid email profile", "state": state, "nonce": "n" * 512,
        "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    url = gunicorn + "/oauth/authorize?" + urlencode(params)
    browser = requests.Session()
    for _ in range(20):
        anonymous = requests.get(url, allow_redirects=False, timeout=10)
        assert anonymous.status_code == 302 and "/login?" in anonymous.headers["Location"]
    with app.app_context():
        assert AuthorizationRequest.select().count() == 0

    page = browser.get(url, timeout=10)
    assert page.status_code == 200 and urlsplit(page.url).path == "/login"
    next_path = re.search(r'name="next"[^>]*value="([^"]+)"', page.text).group(1)
    response = browser.post(
        gunicorn + "/login",
        data={
            "email": "alice@example.com", "password": "correct horse",
            "csrf_token": csrf(page.text), "next": next_path.replace("&amp;", "&"),
        },
        timeout=10,
    )  # fmt: skip
    assert "/oauth/consent" in response.url, response.url
    approved = browser.post(
        response.url,
        data={"csrf_token": csrf(response.text), "decision": "approve"},
        allow_redirects=False,
        timeout=10,
    )
    location = approved.headers["Location"]
    assert location.startswith(CALLBACK)
    result = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert result["state"] == state and result["code"]
    with app.app_context():
        assert AuthorizationRequest.select().count() == 1
