"""Passkeys in a real browser: Chromium (Playwright) with the DevTools protocol's virtual
authenticator (CTAP2, internal, resident keys, user verification) against a live gunicorn.
Register a passkey, sign out, sign in without a password; sign in with the password and the
passkey as second factor; the tokens say how (amr, aal, acr)."""

from __future__ import annotations

import http.server
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from oauth.accounts import passkeys
from oauth.accounts import users as accounts
from tests.live import serve
from tests.oauth_helpers import decode_jwt_unverified, make_client, pkce_pair
from tests.test_browser import PASSWORD, browser  # noqa: F401  # the browser fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path):
    """SQLite only (overrides the conftest fixture that also runs PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'portcullis-passkeys.db'}"


def gunicorn(app, database_url: str, folder):
    """Two workers on ``localhost`` (WebAuthn refuses IP addresses as relying party ids);
    Chromium may try either address for localhost, so [::1] is bound too."""
    return serve(
        database_url, folder, workers=2, host="localhost", binds=("[::1]",),
        SECRET_KEY=app.config["SECRET_KEY"], LOGIN_RATE_LIMIT=None,
    )  # fmt: skip


class _Callback(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # http.server's name
        body = b"<!doctype html><title>App</title><h1>Back at the app</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def redirect_uri():
    """A real app callback (a redirect straight from /oauth/authorize is not routed by Playwright)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/callback"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def page(browser):  # noqa: F811  # the fixture imported above
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def virtual_authenticator(page) -> tuple[object, str]:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def sign_in_with_password(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/login"


def tokens_through_the_browser(page, base: str, client_id: str, secret: str, redirect_uri: str):
    """An authorization in the signed-in browser, then the code exchanged: (access, id) claims."""
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with page.expect_request(lambda request: request.url.startswith(redirect_uri)) as callback:
        page.goto(f"{base}/oauth/authorize?{urlencode(params)}")
        if urlsplit(page.url).path == "/oauth/consent":
            page.get_by_role("button", name="Allow").click()
    code = parse_qs(urlsplit(callback.value.url).query)["code"][0]
    page.get_by_role("heading", name="Back at the app").wait_for()
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    answer = requests.post(
        f"{base}/oauth/token",
        data={**data, "code_verifier": verifier},
        auth=(client_id, secret),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return (
        decode_jwt_unverified(answer.json()["access_token"])[1],
        decode_jwt_unverified(answer.json()["id_token"])[1],
    )


def test_register_a_passkey_then_sign_in_with_it(app, page, database_url, tmp_path, redirect_uri):
    with app.app_context():
        accounts.create_user("alice@example.com", PASSWORD, name="Alice")
    client_id, secret = make_client(app, name="Photo Printer", redirect_uris=[redirect_uri])
    with gunicorn(app, database_url, tmp_path) as base:
        cdp, authenticator_id = virtual_authenticator(page)
        sign_in_with_password(page, base)
        page.goto(f"{base}/settings/security")
        form = page.locator("#passkey-register")
        form.get_by_label("Passkey name").fill("This laptop")
        form.get_by_label("Confirm with your password").fill(PASSWORD)
        form.get_by_role("button", name="Add a passkey").click()
        page.get_by_text("Passkey “This laptop” added.").wait_for()
        assert page.get_by_role("button", name="Remove passkey This laptop").is_visible()
        stored = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
        [credential] = stored["credentials"]
        assert credential["isResidentCredential"]
        with app.app_context():
            [row] = passkeys.WebAuthnCredential.select()
            assert row.name == "This laptop" and row.transports == ["internal"]
        sign_out(page)

        # Without a password: the passkey alone (user verified) is aal2.
        page.get_by_role("button", name="Sign in with a passkey").click()
        page.wait_for_url(f"{base}/settings/profile")
        access, id_token = tokens_through_the_browser(page, base, client_id, secret, redirect_uri)
        assert [entry["method"] for entry in access["amr"]] == ["webauthn"]
        assert access["aal"] == "aal2" and id_token["acr"] == "aal2"
        page.goto(f"{base}/settings/profile")
        sign_out(page)

        # The password, then the passkey as the second step at /login/mfa.
        sign_in_with_password(page, base)
        assert urlsplit(page.url).path == "/login/mfa"
        page.get_by_role("button", name="Use a passkey").click()
        page.wait_for_url(f"{base}/settings/profile")
        access, id_token = tokens_through_the_browser(page, base, client_id, secret, redirect_uri)
        assert [entry["method"] for entry in access["amr"]] == ["pwd", "webauthn"]
        assert access["aal"] == "aal2" and id_token["acr"] == "aal2"
        with app.app_context():
            assert passkeys.WebAuthnCredential.get().sign_count >= 2
