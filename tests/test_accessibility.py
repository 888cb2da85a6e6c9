"""Every page passes axe-core and is usable with the keyboard alone (issue 10), in Chromium.

axe-core is vendored, one file with its licence (MPL-2.0): tests/vendor/axe-core/. Each page
gets it injected by Playwright; violations of serious or critical impact fail the test, named
with their rule, help text and the elements concerned. Pages of parts not merged yet (the mail
pages, the second step of sign-in) are checked as soon as their route exists.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from oauth.accounts import users as accounts
from oauth.registry import apis
from oauth.storage.models import User
from tests.mfa_helpers import previous_step_code
from tests.oauth_helpers import make_client, pkce_pair
from tests.test_browser import PASSWORD, browser, database_url, sign_in, unused_port  # noqa: F401  # fixtures

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

pytestmark = pytest.mark.browser


@pytest.fixture(params=["light", "dark"])
def page(browser, request):  # noqa: F811  # this module's page: both colour schemes
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, bypass_csp=True, color_scheme=request.param
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page now, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{urlsplit(page.url).path}: {v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


def check(page, url: str | None = None) -> list[str]:
    if url is not None:
        page.goto(url)
    page.wait_for_load_state()
    return violations(page)


def routes(app) -> set[str]:
    return {rule.rule for rule in app.url_map.iter_rules()}


def test_the_pages_a_user_sees_pass_axe(app, live_server, page):
    base = live_server.url
    with app.app_context():
        accounts.create_user("alice@example.com", PASSWORD, name="Alice")
    redirect_uri = f"http://127.0.0.1:{unused_port()}/callback"
    client_id, _ = make_client(app, name="Photo Printer", redirect_uris=[redirect_uri])
    page.route(
        lambda url: url.startswith(redirect_uri),
        lambda route: route.fulfill(status=200, content_type="text/html", body="<p>app</p>"),
    )
    found = []
    found += check(page, f"{base}/signup")
    page.get_by_role("button", name="Create account").click()  # every error at once
    found += check(page)
    found += check(page, f"{base}/login")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    found += check(page)  # the failed sign-in's message
    mail_pages = ("/forgot-password", "/reset-password?token=no", "/verify-email?token=no")
    for path in mail_pages:
        if path.partition("?")[0] in routes(app):
            found += check(page, base + path)
    if "/forgot-password" in routes(app):
        page.goto(f"{base}/forgot-password")
        page.get_by_label("Email").fill("alice@example.com")
        page.get_by_role("button", name="Send the link").click()  # the answer page
        found += check(page)
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto(f"{base}/oauth/authorize?{urlencode(params)}")
    assert page.get_by_text("to continue to Photo Printer").is_visible()
    found += check(page)
    sign_in(page, base, "alice@example.com", shot=lambda name: None)  # on this page
    assert urlsplit(page.url).path == "/oauth/consent"
    found += check(page)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(lambda url: url.startswith(redirect_uri))
    assert page.get_by_text("app").is_visible()
    for path in ("/settings/profile", "/settings/apps", "/settings/security"):
        found += check(page, base + path)
    page.get_by_role("button", name="Delete my account").click()  # its errors
    found += check(page)
    found += check(page, f"{base}/oauth/authorize?client_id=nobody")  # an error page
    assert not found, "\n".join(found)


def test_the_admin_pages_pass_axe(app, live_server, page):
    base = live_server.url
    with app.app_context():
        accounts.create_user("root@example.com", PASSWORD, name="Root", is_admin=True)
        accounts.create_user("alice@example.com", PASSWORD, name="Alice")
        alice = User.get(User.email == "alice@example.com").id
        api = apis.create_api("https://api.example", "Example API", ["read:things"])
    client_id, _ = make_client(app, name="Photo Printer")
    sign_in(page, base, "root@example.com")
    found = []
    for path in (
        "/admin/",
        "/admin/clients",
        "/admin/clients/new",
        f"/admin/clients/{client_id}",
        f"/admin/clients/{client_id}/delete",
        "/admin/users",
        f"/admin/users/{alice}",
        f"/admin/users/{alice}/delete",
        "/admin/keys",
        "/admin/plugins",
        "/admin/apis",
        f"/admin/apis/{api.id}",
        "/admin/audit",
    ):
        found += check(page, base + path)
    page.goto(f"{base}/admin/clients/new")
    page.get_by_role("button", name="Create client").click()  # a form with errors
    found += check(page)
    assert not found, "\n".join(found)


def tab_to(page, name: str, limit: int = 40) -> None:
    """Press Tab until the focused element's accessible text is ``name``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; const l = e.labels && e.labels[0];"
            " return (l ? l.innerText : (e.innerText || e.value || '')).trim(); }"
        )
        if focused == name:
            return
    raise AssertionError(f"{name!r} cannot be reached with Tab on {page.url}")


def test_sign_up_sign_in_and_account_deletion_work_with_the_keyboard_alone(app, live_server, page):
    base = live_server.url
    page.goto(f"{base}/signup")
    tab_to(page, "Email")
    page.keyboard.type("kim@example.com")
    tab_to(page, "Password")
    page.keyboard.type(PASSWORD)
    tab_to(page, "Create account")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_text("Welcome! Your account is ready.").is_visible()
    page.goto(f"{base}/settings/security")
    tab_to(page, "Delete my account")  # the heading is not focusable: this is the button
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_text("Tick the box to confirm.").is_visible()
    with app.app_context():
        assert User.select().where(User.email == "kim@example.com").exists()
    page.get_by_role("checkbox").focus()  # back at the form, as a keyboard user would be
    tab_to(page, "Your password")
    page.keyboard.type(PASSWORD)
    tab_to(page, "I understand that my account and everything in it is deleted for good.")
    page.keyboard.press("Space")
    tab_to(page, "Delete my account")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_text("Your account was deleted.").is_visible()
    with app.app_context():
        assert not User.select().where(User.email == "kim@example.com").exists()


def test_the_two_factor_pages_pass_axe(app, live_server, page):
    base = live_server.url
    with app.app_context():
        accounts.create_user("kim@example.com", PASSWORD)
    sign_in(page, base, "kim@example.com")
    found = check(page, f"{base}/settings/security")
    page.get_by_role("button", name="Set up an authenticator app").click()
    page.wait_for_url(f"{base}/settings/security/totp")
    found += check(page)  # the QR code and the key
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.get_by_label("Code from the app").fill(previous_step_code(secret))
    page.get_by_role("button", name="Turn on").click()
    page.get_by_role("heading", name="Save your recovery codes").wait_for()
    found += check(page)
    found += check(page, f"{base}/settings/security")  # factor on: the deletion asks a code
    assert page.get_by_label("Code from your authenticator app, or a recovery code").is_visible()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_load_state()
    sign_in(page, base, "kim@example.com")
    page.wait_for_url(f"{base}/login/mfa**")
    found += check(page)
    assert not found, "\n".join(found)
