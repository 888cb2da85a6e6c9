"""TOTP second factor (issue 10): enrolment, the second sign-in step, replay, recovery codes,
limits, disabling. Real codes computed with pyotp from the secret the page shows."""

from __future__ import annotations

import base64
import json

import pyotp
import pytest

from oauth.accounts import mfa
from oauth.storage.models import AuditEvent, RecoveryCode, TotpFactor, User
from tests.conftest import csrf_token_from
from tests.mfa_helpers import code_at, enrol, recovery_codes_from, second_step, secret_from


def signed_in(client) -> bool:
    return client.get("/settings/profile").status_code == 200


@pytest.fixture
def enrolled(client, auth):
    auth.create_user()
    auth.login()
    secret, codes = enrol(client)
    auth.logout()
    return secret, codes


def test_enrolment_page_shows_qr_code_and_secret_and_needs_a_right_code(app, client, auth):
    auth.create_user()
    auth.login()
    page = client.get("/settings/security")
    html = page.get_data(as_text=True)
    assert "Set up an authenticator app" in html
    setup = client.post("/settings/security/totp", data={"csrf_token": csrf_token_from(html)})
    html = setup.get_data(as_text=True)
    assert setup.headers["Cache-Control"] == "no-store"
    secret = secret_from(html)
    assert len(secret) == 32  # 160 bits of base32
    qr = html.split('<img src="', 1)[1].split('"', 1)[0]
    assert qr.startswith("data:image/svg+xml")
    assert 'autocomplete="one-time-code"' in html and 'inputmode="numeric"' in html
    token = csrf_token_from(html)
    wrong = client.post(
        "/settings/security/totp/confirm", data={"csrf_token": token, "code": "000000"}
    )
    assert wrong.status_code == 400
    assert "not right" in wrong.get_data(as_text=True)
    with app.app_context():
        row = TotpFactor.get()
        assert row.confirmed_at is None
        assert secret not in row.secret_sealed and row.secret_sealed.startswith("kek1.")
    # A reload shows the same pending secret; a right code turns it on.
    assert secret_from(client.get("/settings/security/totp").get_data(as_text=True)) == secret
    done = client.post(
        "/settings/security/totp/confirm", data={"csrf_token": token, "code": code_at(secret)}
    )
    assert done.status_code == 200
    codes = recovery_codes_from(done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    with app.app_context():
        assert TotpFactor.get().confirmed_at is not None
        hashes = [r.code_hash for r in RecoveryCode.select()]
        assert len(hashes) == 10 and not any(c in h for c in codes for h in hashes)
        assert AuditEvent.get_or_none(AuditEvent.event_type == "mfa.totp.enabled") is not None
    page = client.get("/settings/security").get_data(as_text=True)
    assert "An authenticator app is on" in page and "10 recovery codes left" in page


def test_sign_in_asks_for_the_second_step_and_signs_in_nobody_before(client, auth, enrolled):
    secret, _ = enrolled
    response = auth.login(next="/settings/apps")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/mfa?next=/settings/apps")
    assert not signed_in(client)
    page = client.get("/login/mfa?next=/settings/apps")
    html = page.get_data(as_text=True)
    assert 'name="code"' in html and 'autocomplete="one-time-code"' in html
    assert 'inputmode="numeric"' in html and '<label for="code">' in html
    wrong = second_step(client, "123456" if code_at(secret) != "123456" else "654321")
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    assert not signed_in(client)
    done = second_step(client, code_at(secret), next_path="/settings/apps")
    assert done.status_code == 302 and done.headers["Location"] == "/settings/apps"
    assert signed_in(client)


def test_a_code_is_refused_when_replayed_inside_its_window(app, client, auth, enrolled):
    secret, _ = enrolled
    code = code_at(secret)
    auth.login()
    assert second_step(client, code).status_code == 302
    auth.logout()
    auth.login()
    replay = second_step(client, code)
    assert replay.status_code == 200 and "already used" in replay.get_data(as_text=True)
    assert not signed_in(client)
    # The next step's code (inside the window) still works: only used steps are refused.
    assert second_step(client, code_at(secret, +1)).status_code == 302
    # And an older step than the last used one is refused too.
    auth.logout()
    auth.login()
    assert second_step(client, code_at(secret)).status_code == 200
    assert not signed_in(client)


def test_a_recovery_code_signs_in_once(app, client, auth, enrolled):
    _, codes = enrolled
    auth.login()
    done = second_step(client, codes[0].upper().replace("-", " "))  # typed loosely
    assert done.status_code == 302
    assert "recovery code: 9 left" in client.get("/settings/security").get_data(as_text=True)
    auth.logout()
    auth.login()
    again = second_step(client, codes[0])
    assert again.status_code == 200 and not signed_in(client)
    assert second_step(client, codes[1]).status_code == 302
    with app.app_context():
        assert RecoveryCode.select().where(RecoveryCode.used_at.is_null(False)).count() == 2
        events = AuditEvent.select().where(AuditEvent.event_type == "mfa.recovery_code.used")
        assert events.count() == 2


def test_the_half_done_sign_in_is_short_lived(make_app, auth):
    app = make_app(SECOND_STEP_TTL=0)
    client = app.test_client()
    auth.client, auth.app = client, app
    auth.create_user()
    auth.login()
    secret, _ = enrol(client)
    auth.logout()
    auth.login()
    late = client.get("/login/mfa")
    assert late.status_code == 302 and late.headers["Location"].startswith("/login")
    assert not signed_in(client)
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    post = client.post("/login/mfa", data={"csrf_token": token, "code": code_at(secret)})
    assert post.status_code == 302 and not signed_in(client)


def test_the_second_step_is_bound_to_the_browser(app, client, auth, enrolled):
    secret, _ = enrolled
    auth.login()
    other = app.test_client()  # another browser: no half-done sign-in there
    page = other.get("/login/mfa")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    token = csrf_token_from(other.get("/login").get_data(as_text=True))
    other.post("/login/mfa", data={"csrf_token": token, "code": code_at(secret)})
    assert not signed_in(other)


def test_wrong_codes_hit_the_password_limits(make_app, auth):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute", RATELIMIT_STORAGE_URI="memory://")
    client = app.test_client()
    auth.client, auth.app = client, app
    auth.create_user()
    auth.login()
    secret, _ = enrol(client)
    auth.logout()
    auth.login()
    wrong = "000000" if code_at(secret) != "000000" else "111111"
    for _ in range(3):
        assert second_step(client, wrong).status_code == 200
    limited = second_step(client, code_at(secret))  # even the right code waits
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert not signed_in(client)


def test_disabling_needs_the_password_or_a_code(app, client, auth, enrolled):
    secret, _ = enrolled
    auth.login()
    second_step(client, code_at(secret))
    token = csrf_token_from(client.get("/settings/security").get_data(as_text=True))
    url = "/settings/security/totp/disable"
    assert client.post(url, data={"csrf_token": token}).status_code == 302
    client.post(url, data={"csrf_token": token, "password": "wrong password"})
    with app.app_context():
        assert TotpFactor.select().count() == 1
    assert client.post(url, data={"code": "x"}).status_code == 400  # no CSRF token
    done = client.post(url, data={"csrf_token": token, "password": "correct horse"})
    assert done.status_code == 302
    with app.app_context():
        assert TotpFactor.select().count() == 0 and RecoveryCode.select().count() == 0
        assert AuditEvent.get_or_none(AuditEvent.event_type == "mfa.totp.disabled")
    auth.logout()
    response = auth.login()
    assert response.headers["Location"] == "/" and signed_in(client)


def test_new_recovery_codes_with_a_totp_code(app, client, auth, enrolled):
    secret, old = enrolled
    auth.login()
    assert second_step(client, code_at(secret)).status_code == 302
    token = csrf_token_from(client.get("/settings/security").get_data(as_text=True))
    fresh = client.post(
        "/settings/security/recovery-codes",
        data={"csrf_token": token, "code": code_at(secret, +1)},
    )
    assert fresh.status_code == 200
    codes = recovery_codes_from(fresh.get_data(as_text=True))
    assert len(codes) == 10 and not set(codes) & set(old)
    auth.logout()
    auth.login()
    assert second_step(client, old[2]).status_code == 200
    assert second_step(client, codes[2]).status_code == 302


def test_secret_is_sealed_and_bound_to_its_user(app, client, auth, enrolled):
    secret, _ = enrolled
    with app.app_context():
        row = TotpFactor.get()
        mallory = User.create(email="mallory@example.com")
        TotpFactor.update(user=mallory.id).where(TotpFactor.id == row.id).execute()
        # Copied onto another user, the sealed secret does not open: no code is accepted.
        assert mfa.verify(mallory, pyotp.TOTP(secret).now()) is None
        blob = base64.urlsafe_b64decode(row.secret_sealed.split(".")[2] + "==")
        assert secret.encode() not in blob
        assert json.dumps(row.secret_sealed).find(secret) == -1
