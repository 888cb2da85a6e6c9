"""Enrol TOTP through the real pages and compute real codes with pyotp from the secret."""

from __future__ import annotations

import re
import time

import pyotp

from tests.conftest import csrf_token_from


def secret_from(html: str) -> str:
    match = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', html)
    assert match, "no TOTP secret on the page"
    return match.group(1).replace(" ", "")


def code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


STEP = 30  # seconds of a TOTP step
STEP_MARGIN = 3.0  # seconds a code may take to reach the server (a browser, a loaded machine)


def previous_step_code(secret: str) -> str:
    """The code of the step before now, so that a sign-in later in this step still has a
    fresh one; computed early enough in the step that it is still within the server's window
    (one step either side) when it arrives: near a step's end, wait for the next one."""
    left = STEP - time.time() % STEP
    if left < STEP_MARGIN:
        time.sleep(left + 0.05)
    return code_at(secret, -1)


def recovery_codes_from(html: str) -> list[str]:
    block = html.split('id="recovery-codes"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r"<code>([a-z2-7-]+)</code>", block)


def enrol(browser, *, next_path: str | None = None) -> tuple[str, list[str]]:
    """As the signed-in user: start, scan (read the secret), confirm with a real code."""
    page = browser.get("/settings/security")
    assert page.status_code == 200
    data = {"csrf_token": csrf_token_from(page.get_data(as_text=True))}
    if next_path:
        data["next"] = next_path
    setup = browser.post("/settings/security/totp", data=data)
    assert setup.status_code == 200, setup.get_data(as_text=True)
    html = setup.get_data(as_text=True)
    secret = secret_from(html)
    # The code of the previous step: a later sign-in in the same step still has a fresh one.
    confirm = {"csrf_token": csrf_token_from(html), "code": previous_step_code(secret)}
    if next_path:
        confirm["next"] = next_path
    done = browser.post("/settings/security/totp/confirm", data=confirm)
    assert done.status_code == 200, done.get_data(as_text=True)
    codes = recovery_codes_from(done.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


def second_step(browser, code: str, next_path: str | None = None):
    page = browser.get("/login/mfa" + (f"?next={next_path}" if next_path else ""))
    data = {"csrf_token": csrf_token_from(page.get_data(as_text=True)), "code": code}
    if next_path:
        data["next"] = next_path
    return browser.post("/login/mfa", data=data)
