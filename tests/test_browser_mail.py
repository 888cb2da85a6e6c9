"""The mailed-link pages in a real browser, driven from the keyboard only: forgot password ->
the mail (a real SMTP server) -> reset -> sign in; sign-up -> confirm the address."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from oauth.accounts import users as accounts
from oauth.storage.models import User
from tests import test_browser
from tests.mail_helpers import link_in, wait_for_sender
from tests.test_browser import PASSWORD, Shots

# The browser, its pages and the SQLite-only database of the other browser tests.
browser, page, database_url = test_browser.browser, test_browser.page, test_browser.database_url

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def server(smtp):
    return smtp()


@pytest.fixture
def app(make_app, server):
    return make_app(MAIL_URL=server.url)


def press_tab_until(page, selector: str, limit: int = 30) -> None:
    """Move the keyboard focus to ``selector`` with Tab, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_forgot_and_reset_password_with_the_keyboard(app, server, live_server, page, artifacts_dir):
    base = live_server.url
    shot = Shots(page, artifacts_dir, "password-reset")
    with app.app_context():
        accounts.create_user("alice@example.com", PASSWORD, name="Alice")
    page.goto(f"{base}/login")
    press_tab_until(page, "a[href='/forgot-password']")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert urlsplit(page.url).path == "/forgot-password"
    page.get_by_label("Email").focus()
    page.keyboard.type("alice@example.com")
    shot("forgot")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", name="Check your mail").is_visible()
    shot("check-mail")

    (message,) = server.inbox.wait_for(1)
    link = link_in(message, "/reset-password")
    assert link.startswith(base)
    page.goto(link)
    assert page.get_by_role("heading", name="Choose a new password").is_visible()
    assert page.evaluate("document.activeElement.name") == "password"  # autofocus
    page.keyboard.type("short")
    press_tab_until(page, "[name=password_confirm]")
    page.keyboard.type("mismatch")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_text("Password must be at least").is_visible()
    shot("reset-errors")
    page.get_by_label("New password", exact=True).fill("a much better password")
    page.get_by_label("Confirm new password").fill("a much better password")
    with page.expect_navigation():
        page.get_by_label("Confirm new password").press("Enter")
    assert urlsplit(page.url).path == "/login"
    assert page.get_by_text("Your password was changed").is_visible()
    shot("reset-done")
    page.get_by_label("Password").fill("a much better password")
    with page.expect_navigation():
        page.get_by_label("Password").press("Enter")
    assert urlsplit(page.url).path == "/settings/profile"


def test_sign_up_then_confirm_the_address(app, server, live_server, page, artifacts_dir):
    base = live_server.url
    shot = Shots(page, artifacts_dir, "verify-email")
    page.goto(f"{base}/signup")
    page.get_by_label("Email").fill("bob@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_label("Password", exact=True).press("Enter")
    assert page.get_by_text("not confirmed").is_visible()
    shot("profile-unconfirmed")

    (message,) = server.inbox.wait_for(1)
    page.goto(link_in(message, "/verify-email"))
    assert page.get_by_role("heading", name="Confirm your email address").is_visible()
    shot("confirm")
    press_tab_until(page, "button[type=submit].primary")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_text("bob@example.com is confirmed").is_visible()
    wait_for_sender(app)
    with app.app_context():
        assert User.get(User.email == "bob@example.com").email_verified
