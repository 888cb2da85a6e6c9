"""Email verification (optional, required, off), re-sending, changing the address, and
``email_verified`` in ID tokens, UserInfo and access tokens: with a real SMTP server."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from oauth.security import sha256_hex
from oauth.storage.models import AccountToken, AuditEvent, MailOutbox, User
from tests.conftest import AuthActions, csrf_token_from
from tests.mail_helpers import link_in, text_of, token_of, wait_for_sender
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def server(smtp):
    return smtp()


def mail_app(make_app, server, **config):
    return make_app(MAIL_URL=server.url, **config)


def sign_up(client, email="new@example.com", password="correct horse", next=None):
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))
    data = {"email": email, "password": password, "csrf_token": token}
    if next:
        data["next"] = next
    return client.post("/signup", data=data)


def confirm(client, link: str):
    path = link.split("://", 1)[1].split("/", 1)[1]
    page = client.get("/" + path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(
        "/verify-email",
        data={"token": token_of(link), "csrf_token": csrf_token_from(page.get_data(as_text=True))},
    )


def verified(app, email="new@example.com") -> bool:
    with app.app_context():
        return User.get(User.email == email).email_verified


def claims(app, client) -> tuple[dict, dict, dict]:
    """(access token, ID token, UserInfo) claims of the browser's signed-in user."""
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    tokens = flow.tokens()
    access = decode_jwt_unverified(tokens["access_token"])[1]
    id_token = decode_jwt_unverified(tokens["id_token"])[1]
    return access, id_token, flow.userinfo(tokens["access_token"]).get_json()


def test_optional_sign_up_signs_in_and_email_verified_follows_the_link(make_app, server):
    app = mail_app(make_app, server)
    client = app.test_client()
    assert sign_up(client).status_code == 302
    (message,) = server.inbox.wait_for(1)
    before = claims(app, client)
    assert [c["email_verified"] for c in before] == [False, False, False]

    link = link_in(message, "/verify-email")
    assert client.get(link.split("5000", 1)[1]).status_code == 200  # a scanner's GET...
    assert client.get(link.split("5000", 1)[1]).status_code == 200  # ...consumes nothing
    assert not verified(app)
    response = confirm(client, link)
    assert response.status_code == 302
    assert verified(app)
    after = claims(app, client)
    assert [c["email_verified"] for c in after] == [True, True, True]
    with app.app_context():
        (event,) = AuditEvent.select().where(AuditEvent.event_type == "email.verified")
        assert event.details["via"] == "link"


def test_a_link_works_once_and_needs_csrf(make_app, server):
    app = mail_app(make_app, server)
    client = app.test_client()
    sign_up(client)
    link = link_in(server.inbox.wait_for(1)[0], "/verify-email")
    no_csrf = client.post("/verify-email", data={"token": token_of(link)})
    assert no_csrf.status_code == 400 and not verified(app)
    assert confirm(client, link).status_code == 302
    again = client.get("/verify-email?token=" + token_of(link))
    assert again.status_code == 400 and "no longer works" in again.get_data(as_text=True)


def test_tokens_are_hashed_at_rest_and_expire(make_app, server):
    app = mail_app(make_app, server)
    client = app.test_client()
    sign_up(client)
    raw = token_of(link_in(server.inbox.wait_for(1)[0], "/verify-email"))
    with app.app_context():
        (token,) = AccountToken.select()
        assert token.token_hash == sha256_hex(raw)
        assert token.expires_at - token.created_at == dt.timedelta(hours=24)
        assert all(raw not in str(row.context) for row in MailOutbox.select())
        AccountToken.update(expires_at=token.created_at).execute()
    assert client.get("/verify-email?token=" + raw).status_code == 400


@pytest.mark.parametrize("junk", ["", "x" * 500, "abc\x00def", "not-a-token"])
def test_junk_tokens_are_a_clear_400(client, junk):
    assert client.get("/verify-email", query_string={"token": junk}).status_code == 400
    assert client.get("/reset-password", query_string={"token": junk}).status_code == 400


def test_resending_kills_the_older_link_and_is_limited(make_app, server):
    app = mail_app(make_app, server, MAIL_ADDRESS_RATE_LIMIT="2 per hour")
    client = app.test_client()
    sign_up(client)
    first = link_in(server.inbox.wait_for(1)[0], "/verify-email")
    csrf = csrf_token_from(client.get("/settings/profile").get_data(as_text=True))
    for _ in range(3):
        response = client.post("/verify-email/resend", data={"csrf_token": csrf})
        assert response.status_code == 302
    wait_for_sender(app)
    messages = server.inbox.wait_for(3)
    assert len(messages) == 3  # the sign-up mail and two re-sent: the third was held back
    assert client.get("/verify-email?token=" + token_of(first)).status_code == 400
    assert confirm(client, link_in(messages[-1], "/verify-email")).status_code == 302


def test_resend_by_address_answers_the_same_for_any_address(make_app, server):
    app = mail_app(make_app, server)
    AuthActions(app.test_client(), app).create_user("known@example.com", email_verified=False)
    pages = set()
    for email in ("known@example.com", "nobody@example.com"):
        browser = app.test_client()
        csrf = csrf_token_from(browser.get("/login").get_data(as_text=True))
        response = browser.post("/verify-email/resend", data={"email": email, "csrf_token": csrf})
        body = re.sub(r'value="[^"]+"', "", response.get_data(as_text=True))
        pages.add((response.status_code, body.replace(email, "EMAIL")))
    assert len(pages) == 1
    (message,) = server.inbox.wait_for(1)
    assert message["To"] == "known@example.com"
    wait_for_sender(app)
    with app.app_context():
        assert sorted(r.status for r in MailOutbox.select()) == ["dropped", "sent"]


def test_resend_is_limited_per_ip(make_app, server):
    app = mail_app(make_app, server, MAIL_IP_RATE_LIMIT="2 per hour")
    browser = app.test_client()
    csrf = csrf_token_from(browser.get("/login").get_data(as_text=True))
    answers = [
        browser.post(
            "/verify-email/resend", data={"email": f"u{i}@example.com", "csrf_token": csrf}
        )
        for i in range(3)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Retry-After" in answers[-1].headers


# --- required ---------------------------------------------------------------------------------


def test_required_no_sign_in_until_the_link_then_signed_in_to_next(make_app, server):
    app = mail_app(make_app, server, EMAIL_VERIFICATION="required")
    client = app.test_client()
    response = sign_up(client, next="/settings/apps")
    assert response.status_code == 200 and "Check your mail" in response.get_data(as_text=True)
    assert client.get("/settings/profile").status_code == 302  # not signed in

    auth = AuthActions(client, app)
    refused = auth.login("new@example.com", "correct horse")
    body = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "Confirm your email address first" in body
    assert 'action="/verify-email/resend"' in body
    assert client.get("/settings/profile").status_code == 302
    wrong = auth.login("new@example.com", "wrong password").get_data(as_text=True)
    assert "Invalid email or password" in wrong and "Confirm your email" not in wrong
    with app.app_context():
        reasons = [
            e.details.get("reason")
            for e in AuditEvent.select().where(AuditEvent.event_type == "login.failed")
        ]
    assert "email_unverified" in reasons

    (message,) = server.inbox.wait_for(1)
    confirmed = confirm(app.test_client(), link_in(message, "/verify-email"))  # another browser
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/settings/apps"
    assert auth.login("new@example.com", "correct horse").status_code == 302


def test_required_sign_up_answers_the_same_for_a_taken_address(make_app, server):
    app = mail_app(make_app, server, EMAIL_VERIFICATION="required")
    AuthActions(app.test_client(), app).create_user("owner@example.com", email_verified=True)

    def page(email):
        response = sign_up(app.test_client(), email=email)
        body = re.sub(r'value="[^"]+"', "", response.get_data(as_text=True))
        return response.status_code, body.replace(email, "EMAIL")

    assert page("owner@example.com") == page("fresh@example.com")
    messages = server.inbox.wait_for(2)
    by_address = {m["To"]: m for m in messages}
    assert (
        by_address["owner@example.com"]["Subject"] == "Someone tried to sign up with your address"
    )
    assert "/forgot-password" in text_of(by_address["owner@example.com"])
    assert link_in(by_address["fresh@example.com"], "/verify-email")
    with app.app_context():
        assert User.select().count() == 2


def test_off_sends_no_verification_mail(make_app, server):
    app = mail_app(make_app, server, EMAIL_VERIFICATION="off")
    client = app.test_client()
    assert sign_up(client).status_code == 302
    wait_for_sender(app)
    with app.app_context():
        assert MailOutbox.select().count() == 0
    assert not verified(app)


# --- changing the address ----------------------------------------------------------------------


def change_email(client, new_email, password="correct horse"):
    csrf = csrf_token_from(client.get("/settings/profile").get_data(as_text=True))
    return client.post(
        "/settings/email",
        data={"new_email": new_email, "current_password": password, "csrf_token": csrf},
    )


def test_a_new_address_is_verified_before_it_replaces_the_old(make_app, server):
    app = mail_app(make_app, server)
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create_user("old@example.com", email_verified=True)
    auth.login("old@example.com")
    wrong = change_email(client, "new@example.com", password="not my password")
    assert wrong.status_code == 400 and "Current password is incorrect" in wrong.get_data(
        as_text=True
    )
    assert change_email(client, "New@Example.com").status_code == 302
    (message,) = server.inbox.wait_for(1)
    assert message["To"] == "new@example.com"
    with app.app_context():
        assert User.get(User.email == "old@example.com").email_verified  # nothing changed yet
    assert claims(app, client)[1]["email"] == "old@example.com"

    assert confirm(client, link_in(message, "/verify-email")).status_code == 302
    with app.app_context():
        user = User.get(User.email == "new@example.com")
        assert user.email_verified
    notice = server.inbox.wait_for(2)[1]
    assert notice["To"] == "old@example.com" and "new@example.com" in text_of(notice)
    id_token = claims(app, client)[1]
    assert id_token["email"] == "new@example.com" and id_token["email_verified"] is True


def test_an_address_of_another_account_is_refused(make_app, server):
    app = mail_app(make_app, server)
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create_user("other@example.com")
    auth.create_user("me@example.com")
    auth.login("me@example.com")
    response = change_email(client, "other@example.com")
    assert response.status_code == 400 and "already used" in response.get_data(as_text=True)
    invalid = change_email(client, "not an address")
    assert invalid.status_code == 400 and "not a valid email" in invalid.get_data(as_text=True)


def test_change_link_fails_cleanly_when_the_address_was_taken_meanwhile(make_app, server):
    app = mail_app(make_app, server)
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create_user("me@example.com")
    auth.login("me@example.com")
    change_email(client, "wanted@example.com")
    link = link_in(server.inbox.wait_for(1)[0], "/verify-email")
    auth.create_user("wanted@example.com")
    page = client.get("/verify-email?token=" + token_of(link))
    response = client.post(
        "/verify-email",
        data={"token": token_of(link), "csrf_token": csrf_token_from(page.get_data(as_text=True))},
    )
    assert response.status_code == 400 and "already used" in response.get_data(as_text=True)
    with app.app_context():
        assert User.select().where(User.email == "me@example.com").count() == 1


def test_admin_and_cli_users_can_be_marked_verified(make_app, server):
    app = mail_app(make_app, server)
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "cli@example.com", "--password", "correct horse"])
    runner.invoke(
        args=["users", "create", "raw@example.com", "--password", "correct horse", "--unverified"]
    )
    assert verified(app, "cli@example.com") and not verified(app, "raw@example.com")
    admin = app.test_client()
    AuthActions(admin, app).create_user("root@example.com", is_admin=True)
    AuthActions(admin, app).login("root@example.com")
    with app.app_context():
        user_id = User.get(User.email == "raw@example.com").id
    page = admin.get(f"/admin/users/{user_id}")
    assert "Mark email verified" in page.get_data(as_text=True)
    csrf = csrf_token_from(page.get_data(as_text=True))
    response = admin.post(f"/admin/users/{user_id}/verify-email", data={"csrf_token": csrf})
    assert response.status_code == 302 and verified(app, "raw@example.com")
    with app.app_context():
        event = AuditEvent.get(AuditEvent.event_type == "email.verified")
        assert event.details["via"] == "admin" and event.details["actor"]


def test_every_field_error_of_the_change_form_at_once(make_app, server):
    app = mail_app(make_app, server)
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create_user("me@example.com")
    auth.login("me@example.com")
    response = change_email(client, "me@example.com", password="not my password")
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "already your email address" in body and "Current password is incorrect" in body
    assert body.count('aria-invalid="true"') == 2


def test_with_verification_off_the_address_changes_at_once_unverified(make_app, server):
    app = mail_app(make_app, server, EMAIL_VERIFICATION="off")
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create_user("me@example.com", email_verified=True)
    auth.login("me@example.com")
    assert change_email(client, "moved@example.com").status_code == 302
    assert not verified(app, "moved@example.com")
    wait_for_sender(app)
    assert server.inbox.messages == []
