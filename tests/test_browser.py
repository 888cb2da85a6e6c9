"""Real browser tests: Debian's Chromium driven by Playwright against the live server.

They are about the pages, so they run on SQLite only. Screenshots of every page visited land
in ``test-artifacts/``. Without /usr/bin/chromium they skip, unless
``PORTCULLIS_REQUIRE_BROWSER=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from oauth.accounts import users as accounts
from oauth.storage.models import Client, Consent, SigningKey
from tests.oauth_helpers import make_client, pkce_pair

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path):
    """SQLite only (overrides the conftest fixture that also runs PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'portcullis-browser.db'}"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (make browser installs it)"
        if os.environ.get("PORTCULLIS_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


class Shots:
    """Full-page screenshots, numbered in the order the pages were visited."""

    def __init__(self, page, folder: Path, prefix: str):
        self.page = page
        self.folder = folder
        self.prefix = prefix
        self.count = 0

    def __call__(self, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.prefix}-{self.count:02}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign_in(page, base: str, email: str, shot: Shots | None = None) -> None:
    if shot is None:
        page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    if shot is not None:
        shot("login")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()


def test_user_authorizes_an_app_then_revokes_it(app, live_server, page, artifacts_dir):
    base = live_server.url
    shot = Shots(page, artifacts_dir, "user-apps")
    with app.app_context():
        accounts.create_user("alice@example.com", PASSWORD, name="Alice")
    redirect_uri = f"http://127.0.0.1:{unused_port()}/callback"
    client_id, secret = make_client(
        app,
        name="Photo Printer",
        redirect_uris=[redirect_uri],
        client_uri="https://photos.example",
    )
    # Nothing listens on the callback port: answer it in the browser and read the code there.
    page.route(
        lambda url: url.startswith(redirect_uri),
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<h1>Back at the app</h1>"
        ),
    )
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": "browser-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto(f"{base}/oauth/authorize?{urlencode(params)}")
    assert urlsplit(page.url).path == "/login"
    sign_in(page, base, "alice@example.com", shot)

    assert urlsplit(page.url).path == "/oauth/consent"
    assert page.get_by_role(
        "heading", name="Photo Printer wants to access your account"
    ).is_visible()
    assert page.get_by_text("See your email address").is_visible()
    shot("consent")
    with page.expect_request(lambda request: request.url.startswith(redirect_uri)) as callback:
        page.get_by_role("button", name="Allow").click()
    answer = {k: v[0] for k, v in parse_qs(urlsplit(callback.value.url).query).items()}
    assert answer["state"] == "browser-state" and answer["iss"] == base
    page.wait_for_load_state()
    shot("callback")

    tokens = requests.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(client_id, secret),
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    access_token = tokens.json()["access_token"]

    page.goto(f"{base}/settings/apps")
    card = page.locator(".app-card", has_text="Photo Printer")
    assert card.is_visible()
    assert card.get_by_text("See your name, picture and username").is_visible()
    assert card.get_by_role("link", name="https://photos.example").is_visible()
    shot("settings-apps-before-revoke")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: still readable
    shot("settings-apps-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    card.get_by_role("button", name="Revoke access for Photo Printer").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == "/settings/apps"
    assert page.get_by_text("Access for Photo Printer was revoked.").is_visible()
    assert page.locator(".app-card").count() == 0
    assert page.get_by_text("You have not authorized any applications.").is_visible()
    shot("settings-apps-after-revoke")

    with app.app_context():
        assert Consent.select().count() == 0
    userinfo = requests.get(
        f"{base}/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    assert userinfo.status_code == 401

    page.goto(f"{base}/settings/security")
    assert page.get_by_role("button", name="Sign out of other sessions").is_visible()
    shot("settings-security")


def test_admin_creates_a_client_and_rotates_the_signing_key(app, live_server, page, artifacts_dir):
    base = live_server.url
    shot = Shots(page, artifacts_dir, "admin")
    with app.app_context():
        accounts.create_user("root@example.com", PASSWORD, name="Root", is_admin=True)
        # A current key of each algorithm exists; the page rotates the RS256 one.
        [old_key] = list(SigningKey.select().where(SigningKey.alg == "RS256"))
    make_client(app, name="Self-registered tool", registration_type="dynamic")

    page.goto(f"{base}/admin/")
    assert urlsplit(page.url).path == "/login"
    sign_in(page, base, "root@example.com", shot)
    assert urlsplit(page.url).path == "/admin/"
    assert page.get_by_role("heading", name="Administration").is_visible()
    shot("overview")

    page.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Clients"
    ).click()
    page.wait_for_load_state()
    assert page.get_by_text("Self-registered tool").is_visible()
    shot("clients")

    page.get_by_role("link", name="New client").click()
    page.wait_for_load_state()
    page.get_by_label("Name").fill("Billing Portal")
    page.get_by_label("Redirect URIs").fill("https://billing.example/cb\nhttp://127.0.0.1/cb")
    page.get_by_label("Site (client_uri)").fill("https://billing.example")
    shot("client-new")
    page.get_by_role("button", name="Create client").click()
    page.wait_for_load_state()

    assert page.get_by_role("heading", name="Client Billing Portal created").is_visible()
    secret = page.locator("#client-secret").inner_text().strip()
    client_id = page.locator("#client-id").inner_text().strip()
    assert len(secret) >= 43
    assert page.get_by_text("It is shown only this once").is_visible()
    shot("client-secret")
    with app.app_context():
        created = Client.get_by_id(client_id)
        assert created.check_client_secret(secret)
        assert created.name == "Billing Portal"

    page.get_by_role("link", name="Done").click()
    page.wait_for_load_state()
    assert page.get_by_role("link", name="Billing Portal").is_visible()
    assert secret not in page.content()  # shown once, never again
    shot("clients-after-create")

    # Rotate the secret with a grace period: its confirm page, then both secrets work.
    page.goto(f"{base}/admin/clients/{client_id}")
    page.get_by_role("link", name="Rotate secret…").click()
    page.get_by_label("Grace period for the old secret").select_option(label="1 hour")
    shot("client-rotate-secret")
    page.get_by_role("button", name="Rotate secret").click()
    page.wait_for_load_state()
    rotated = page.locator("#client-secret").inner_text().strip()
    assert page.get_by_text("The old secret keeps working until").is_visible()
    with app.app_context():
        row = Client.get_by_id(client_id)
        assert row.check_client_secret(rotated) and row.check_client_secret(secret)
    page.goto(f"{base}/admin/clients/{client_id}")
    assert page.locator("#previous-secret").is_visible()
    shot("client-edit")

    page.goto(f"{base}/admin/keys")
    assert page.locator("code", has_text=old_key.kid).is_visible()
    shot("keys")
    page.get_by_label("Algorithm").first.select_option("RS256")
    page.get_by_role("button", name="Rotate signing key").click()
    page.wait_for_load_state()
    assert page.get_by_text("is now the signing key").is_visible()
    shot("keys-after-rotate")
    with app.app_context():
        states = {k.kid: (k.state, k.alg) for k in SigningKey.select()}
    assert states[old_key.kid] == ("previous", old_key.alg)
    [current] = [
        kid for kid, (state, alg) in states.items() if (state, alg) == ("current", "RS256")
    ]
    assert sorted(alg for state, alg in states.values() if state == "current") == ["ES256", "RS256"]
    jwks = requests.get(f"{base}/.well-known/jwks.json", timeout=10).json()
    assert {key["kid"] for key in jwks["keys"]} >= {current, old_key.kid}

    for name, path in [
        ("users", "/admin/users"),
        ("apis", "/admin/apis"),
        ("plugins", "/admin/plugins"),
        ("audit", "/admin/audit"),
    ]:
        page.goto(f"{base}{path}")
        shot(name)
        if name == "users":
            page.get_by_role("link", name="root@example.com").click()
            page.wait_for_load_state()
            assert page.get_by_label("app_metadata (JSON object)").is_visible()
            shot("user-edit")
    assert page.get_by_role("link", name="key.rotated").first.is_visible()

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: tables scroll sideways
    page.goto(f"{base}/admin/keys")
    shot("keys-phone")
