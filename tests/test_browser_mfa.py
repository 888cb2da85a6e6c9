"""The two-factor pages in Chromium, driven by the keyboard: enrol with the key shown as text,
then sign in with the password and a TOTP code computed with pyotp (issue 10)."""

from __future__ import annotations

import pyotp
import pytest

from oauth.accounts import mfa
from oauth.accounts import users as accounts
from tests import test_browser as shared
from tests.mfa_helpers import previous_step_code
from tests.test_browser import PASSWORD, Shots

# The browser module's fixtures (SQLite only, one Chromium per module, a page per test).
database_url = shared.database_url
browser = shared.browser
page = shared.page

pytestmark = pytest.mark.browser


def test_enrol_and_sign_in_with_a_code_by_keyboard(app, live_server, page, artifacts_dir):
    base = live_server.url
    shot = Shots(page, artifacts_dir, "mfa")
    with app.app_context():
        accounts.create_user("kim@example.com", PASSWORD)
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("kim@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/settings/profile")
    page.goto(f"{base}/settings/security")
    button = page.get_by_role("button", name="Set up an authenticator app")
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/settings/security/totp")
    qr = page.get_by_role("img", name="QR code")
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    shot("setup")
    field = page.get_by_label("Code from the app")
    assert field.get_attribute("autocomplete") == "one-time-code"
    assert field.get_attribute("inputmode") == "numeric"
    assert page.evaluate("document.activeElement.id") == field.get_attribute("id")
    page.keyboard.type(previous_step_code(secret))
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Save your recovery codes").wait_for()
    assert page.locator("#recovery-codes li").count() == 10
    shot("recovery-codes")
    page.get_by_role("link", name="I saved them, continue").click()
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_load_state()

    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("kim@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/login/mfa**")
    code_field = page.get_by_label("Code from your authenticator app")
    assert code_field.get_attribute("autocomplete") == "one-time-code"
    assert page.evaluate("document.activeElement.name") == "code"  # autofocus
    shot("second-step")
    page.keyboard.type(pyotp.TOTP(secret).now())
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/settings/profile")
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Security")


def test_the_recovery_code_form_opens_by_keyboard(app, live_server, page):
    base = live_server.url
    with app.app_context():
        user = accounts.create_user("lee@example.com", PASSWORD)
        from_app_codes = _enrol_directly(user)
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill("lee@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/login/mfa**")
    page.locator("summary").focus()
    page.keyboard.press("Enter")
    recovery = page.get_by_label("Recovery code")
    assert recovery.is_visible() and recovery.get_attribute("inputmode") is None
    recovery.focus()
    page.keyboard.type(from_app_codes[0])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/settings/profile")
    assert page.get_by_text("You used a recovery code: 9 left.").is_visible()


def _enrol_directly(user) -> list[str]:
    secret = mfa.start_enrolment(user)
    return mfa.confirm_enrolment(user, pyotp.TOTP(secret).now())
