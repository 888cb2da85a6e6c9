"""Password reset by mail, with a real SMTP server: the same answer for any address, a
single-use hashed one-hour link, every session signed out, audited, the owner told."""

from __future__ import annotations

import datetime as dt
import re
import statistics
import time

import pytest

from oauth.security import sha256_hex
from oauth.storage.models import AccountToken, AuditEvent, MailOutbox, User
from tests.conftest import AuthActions, csrf_token_from
from tests.mail_helpers import link_in, text_of, token_of, wait_for_sender

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def server(smtp):
    return smtp()


@pytest.fixture
def app(make_app, server):
    return make_app(MAIL_URL=server.url)


def forgot(client, email):
    csrf = csrf_token_from(client.get("/forgot-password").get_data(as_text=True))
    return client.post("/forgot-password", data={"email": email, "csrf_token": csrf})


def reset_link(server, app, email="alice@example.com", index=-1) -> str:
    forgot(app.test_client(), email)
    messages = server.inbox.wait_for(len(server.inbox.messages) + 1)
    return link_in(messages[index], "/reset-password")


def reset(client, link, password="brand new password", confirm=None):
    token = token_of(link)
    page = client.get("/reset-password?token=" + token)
    if page.status_code != 200:
        return page
    data = {
        "token": token,
        "password": password,
        "csrf_token": csrf_token_from(page.get_data(as_text=True)),
    }
    if confirm is not None:
        data["password_confirm"] = confirm
    return client.post("/reset-password", data=data)


def test_the_login_page_links_to_it(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'href="/forgot-password"' in html and "Forgot your password?" in html


def test_the_same_answer_and_the_same_work_whether_or_not_the_account_exists(app, server):
    AuthActions(app.test_client(), app).create_user()

    def page(email):
        response = forgot(app.test_client(), email)
        body = re.sub(r'value="[^"]+"', "", response.get_data(as_text=True))
        return response.status_code, body.replace(email, "EMAIL")

    assert page("alice@example.com") == page("nobody@example.com")
    (message,) = server.inbox.wait_for(1)
    assert message["To"] == "alice@example.com"
    wait_for_sender(app)
    with app.app_context():
        rows = list(MailOutbox.select().order_by(MailOutbox.id))
    # one row queued for each request, no lookup of the account while the page waits
    assert [(r.kind, r.user_id) for r in rows] == [("password_reset", None)] * 2
    assert [r.status for r in rows] == ["sent", "dropped"]


def test_it_takes_the_same_time_whether_or_not_the_account_exists(make_app, server):
    app = make_app(MAIL_URL=server.url, RATELIMIT_ENABLED=False)
    AuthActions(app.test_client(), app).create_user()
    browser = app.test_client()
    csrf = csrf_token_from(browser.get("/forgot-password").get_data(as_text=True))

    def timed(email):
        started = time.perf_counter()
        browser.post("/forgot-password", data={"email": email, "csrf_token": csrf})
        return time.perf_counter() - started

    known, unknown = [], []
    for _ in range(12):
        known.append(timed("alice@example.com"))
        unknown.append(timed("nobody@example.com"))
    fast, slow = sorted([statistics.median(known), statistics.median(unknown)])
    assert slow < fast * 2 + 0.01, (known, unknown)


def test_a_reset_sets_the_password_signs_out_everywhere_and_tells_the_owner(app, server):
    elsewhere = app.test_client()
    AuthActions(elsewhere, app).create_user(name="Alice")
    AuthActions(elsewhere, app).login()
    assert elsewhere.get("/settings/profile").status_code == 200
    link = reset_link(server, app)

    browser = app.test_client()
    response = reset(browser, link, confirm="brand new password")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert elsewhere.get("/settings/profile").status_code == 302  # signed out
    auth = AuthActions(app.test_client(), app)
    assert auth.login(password="correct horse").status_code == 200  # the old one is refused
    assert auth.login(password="brand new password").status_code == 302

    notice = server.inbox.wait_for(2)[1]
    assert notice["Subject"] == "Your password was reset"
    text = text_of(notice)
    assert "signed out" in text and "If this was not you" in text and "/forgot-password" in text
    with app.app_context():
        (changed,) = AuditEvent.select().where(AuditEvent.event_type == "password.changed")
        assert changed.details["via"] == "reset"
        assert User.get(User.email == "alice@example.com").email_verified  # the link proved it


def test_the_link_is_single_use_hashed_and_valid_one_hour(app, server):
    AuthActions(app.test_client(), app).create_user()
    link = reset_link(server, app)
    with app.app_context():
        (token,) = AccountToken.select()
        assert token.token_hash == sha256_hex(token_of(link))
        assert token.expires_at - token.created_at == dt.timedelta(hours=1)
    assert reset(app.test_client(), link).status_code == 302
    again = reset(app.test_client(), link, password="another new password")
    assert again.status_code == 400 and "no longer works" in again.get_data(as_text=True)


def test_an_expired_link_is_refused(app, server):
    AuthActions(app.test_client(), app).create_user()
    link = reset_link(server, app)
    with app.app_context():
        AccountToken.update(expires_at=AccountToken.created_at).execute()
    assert reset(app.test_client(), link).status_code == 400


def test_a_newer_link_kills_the_older_one(app, server):
    AuthActions(app.test_client(), app).create_user()
    first = reset_link(server, app)
    second = reset_link(server, app)
    assert reset(app.test_client(), first).status_code == 400
    assert reset(app.test_client(), second).status_code == 302


def test_the_link_dies_when_the_password_changes(app, server):
    auth = AuthActions(app.test_client(), app)
    auth.create_user()
    link = reset_link(server, app)
    result = app.test_cli_runner().invoke(
        args=["users", "set-password", "alice@example.com", "--password", "changed by cli"]
    )
    assert result.exit_code == 0, result.output
    assert reset(app.test_client(), link).status_code == 400


def test_field_errors_leave_the_link_usable(app, server):
    AuthActions(app.test_client(), app).create_user()
    link = reset_link(server, app)
    browser = app.test_client()
    short = reset(browser, link, password="short")
    assert short.status_code == 400 and "at least" in short.get_data(as_text=True)
    mismatch = reset(browser, link, confirm="something else entirely")
    assert mismatch.status_code == 400 and "do not match" in mismatch.get_data(as_text=True)
    assert reset(browser, link).status_code == 302


def test_a_disabled_account_gets_no_link(app, server):
    AuthActions(app.test_client(), app).create_user()
    with app.app_context():
        User.update(disabled=True).execute()
    forgot(app.test_client(), "alice@example.com")
    wait_for_sender(app)
    assert server.inbox.messages == []


def test_limited_per_address_silently_and_per_ip_with_429(make_app, server):
    app = make_app(
        MAIL_URL=server.url, MAIL_ADDRESS_RATE_LIMIT="2 per hour", MAIL_IP_RATE_LIMIT="4 per hour"
    )
    AuthActions(app.test_client(), app).create_user()
    browser = app.test_client()
    answers = [forgot(browser, "alice@example.com").status_code for _ in range(3)]
    assert answers == [200, 200, 200]  # the third is not mailed, but says the same
    wait_for_sender(app)
    assert len(server.inbox.wait_for(2)) == 2
    assert forgot(browser, "bob@example.com").status_code == 200
    limited = forgot(browser, "carol@example.com")
    assert limited.status_code == 429 and limited.headers["Retry-After"]


def test_a_bad_address_is_a_field_error(client):
    csrf = csrf_token_from(client.get("/forgot-password").get_data(as_text=True))
    response = client.post("/forgot-password", data={"email": "not an address", "csrf_token": csrf})
    assert response.status_code == 400 and "not a valid email" in response.get_data(as_text=True)
    empty = client.post("/forgot-password", data={"email": "", "csrf_token": csrf})
    assert empty.status_code == 400 and 'aria-invalid="true"' in empty.get_data(as_text=True)
    assert client.post("/forgot-password", data={"email": "a@example.com"}).status_code == 400
