"""Account deletion (issue 10): from the settings page after re-entering the password, by an
admin and from the CLI, all through one service and the ``before_user_deleted`` hook; what
belongs to the account goes with it and the audit log forgets the person."""

from __future__ import annotations

import json

import pytest

from oauth.storage.deliveries import MailOutbox
from oauth.storage.models import (
    AccountToken,
    AuditEvent,
    AuthorizationRequest,
    BrowserSession,
    Consent,
    OAuthSession,
    RecoveryCode,
    RefreshToken,
    TotpFactor,
    User,
)
from tests.conftest import AuthActions, csrf_token_from
from tests.mfa_helpers import code_at, enrol
from tests.test_plugins import write_plugin

EMAIL = "alice@example.com"
PASSWORD = "correct horse"


def delete_form(browser, **data):
    page = browser.get("/settings/security")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'action="/settings/security/delete"' in html
    fields = {"csrf_token": csrf_token_from(html), "password": PASSWORD, "confirm": "y"}
    fields.update(data)
    return browser.post(
        "/settings/security/delete", data={k: v for k, v in fields.items() if v is not None}
    )


def counts(app, user_id: str) -> dict[str, int]:
    with app.app_context():
        sessions = OAuthSession.select(OAuthSession.id).where(OAuthSession.user == user_id)
        return {
            "user": User.select().where(User.id == user_id).count(),
            "browser_sessions": BrowserSession.select()
            .where(BrowserSession.user == user_id)
            .count(),
            "consents": Consent.select().where(Consent.user == user_id).count(),
            "oauth_sessions": sessions.count(),
            "refresh_tokens": RefreshToken.select()
            .join(OAuthSession)
            .where(OAuthSession.user == user_id)
            .count(),
            "requests": AuthorizationRequest.select()
            .where(AuthorizationRequest.user == user_id)
            .count(),
        }


def audit_rows(app) -> list[AuditEvent]:
    with app.app_context():
        return list(AuditEvent.select().order_by(AuditEvent.id))


def test_a_user_deletes_their_account_and_everything_goes_with_it(flow, app):
    user_id = user_id_of(app)
    tokens = flow.tokens()
    other_browser = app.test_client()
    AuthActions(other_browser, app).login()
    before = counts(app, user_id)
    assert before["consents"] == 1 and before["refresh_tokens"] == 1
    assert before["browser_sessions"] == 2

    response = delete_form(flow.browser)

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Your account was deleted." in flow.browser.get("/login").get_data(as_text=True)
    assert set(counts(app, user_id).values()) == {0}
    # nothing issued before still works, in no browser
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert flow.userinfo(tokens["access_token"]).status_code == 401
    for browser in (flow.browser, other_browser):
        assert browser.get("/settings/profile").status_code == 302
    assert AuthActions(app.test_client(), app).login().status_code == 200  # no such account


def user_id_of(app, email: str = EMAIL) -> str:
    with app.app_context():
        return User.get(User.email == email).id


def test_the_audit_log_keeps_the_event_and_forgets_the_person(auth, client, app):
    auth.create_user(name="Alice Liddell")
    auth.create_user(email="admin@example.com", is_admin=True)
    admin = AuthActions(app.test_client(), app)
    user_id = user_id_of(app)
    auth.login(password="wrong password")  # a failed sign-in keeps the typed email
    auth.login()
    admin.login(email="admin@example.com")
    token = csrf_token_from(admin.client.get(f"/admin/users/{user_id}").get_data(as_text=True))
    admin.client.post(
        f"/admin/users/{user_id}",
        data={"csrf_token": token, "name": "Alice L.", "app_metadata": "{}", "user_metadata": "{}"},
    )
    with app.app_context():
        own_before = AuditEvent.select().where(AuditEvent.user_id == user_id).count()
    assert own_before >= 4

    assert delete_form(client).status_code == 302

    rows = audit_rows(app)
    text = json.dumps([(r.user_id, r.ip, r.details) for r in rows])
    for personal in (EMAIL, user_id, "Alice"):
        assert personal not in text
    deleted = [r for r in rows if r.event_type == "user.deleted"]
    assert len(deleted) == 1
    pseudonym = deleted[0].user_id
    assert pseudonym.startswith("deleted-") and len(pseudonym) == 36
    assert deleted[0].details == {"via": "settings", "actor": None} and deleted[0].ip is None
    own = [r for r in rows if r.user_id == pseudonym]
    assert len(own) == own_before + 1  # the history is kept, under the pseudonym
    assert all(r.ip is None for r in own)
    failed = next(r for r in own if r.event_type == "login.failed")
    assert failed.details["email"] == "(deleted)"
    # the admin's events are not the deleted user's: they keep their actor and address
    admin_id = user_id_of(app, "admin@example.com")
    assert any(r.user_id == admin_id and r.event_type == "login.succeeded" for r in rows)


def test_the_password_and_the_confirmation_are_required_and_errors_show_together(auth, client, app):
    auth.create_user()
    auth.login()
    user_id = user_id_of(app)
    both = delete_form(client, password="", confirm=None)
    html = both.get_data(as_text=True)
    assert both.status_code == 400
    assert "This field is required." in html and "Tick the box to confirm." in html
    wrong = delete_form(client, password="not my password")
    assert wrong.status_code == 400
    assert "Current password is incorrect." in wrong.get_data(as_text=True)
    page = client.get("/settings/security").get_data(as_text=True)
    no_csrf = client.post("/settings/security/delete", data={"password": PASSWORD, "confirm": "y"})
    assert no_csrf.status_code == 400
    assert counts(app, user_id)["user"] == 1
    assert 'autocomplete="current-password"' in page
    with app.app_context():
        assert not AuditEvent.select().where(AuditEvent.event_type == "user.deleted").exists()


def test_the_password_check_is_rate_limited(make_app):
    app = make_app(LOGIN_RATE_LIMIT="2 per minute")
    browser = AuthActions(app.test_client(), app)
    browser.create_user()
    browser.login()
    codes = [delete_form(browser.client, password="guess").status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    refused = delete_form(browser.client)  # even the right password waits
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert counts(app, user_id_of(app))["user"] == 1


VETO = """
from oauth import DeletionDenied, hookimpl
@hookimpl
def before_user_deleted(user, via):
    if user.app_metadata.get("owns_billing"):
        raise DeletionDenied("Transfer your billing account first.")
"""


def test_a_plugin_may_keep_an_account_with_a_message(make_app, plugin_dir):
    write_plugin(plugin_dir, "billing", VETO)
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    browser = AuthActions(app.test_client(), app)
    browser.create_user(app_metadata={"owns_billing": True})
    browser.login()
    refused = delete_form(browser.client)
    assert refused.status_code == 400
    assert "Transfer your billing account first." in refused.get_data(as_text=True)
    assert counts(app, user_id_of(app))["browser_sessions"] == 1  # still signed in, all kept
    cli = app.test_cli_runner().invoke(args=["users", "delete", EMAIL, "--yes"])
    assert cli.exit_code == 1 and "Transfer your billing account first." in cli.output
    assert counts(app, user_id_of(app))["user"] == 1


def test_the_hook_runs_first_outside_any_transaction_and_may_clean_up(
    make_app, plugin_dir, tmp_path
):
    seen = tmp_path / "seen.json"
    write_plugin(
        plugin_dir,
        "cleanup",
        f"""
        import json
        from oauth import hookimpl
        from oauth.storage.db import database
        from oauth.storage.models import User
        @hookimpl
        def before_user_deleted(user, via):
            with open({str(seen)!r}, "a") as f:
                f.write(json.dumps({{
                    "email": user.email, "via": via,
                    "in_transaction": database.transaction_depth() > 0,
                    "still_there": User.select().where(User.id == user.id).exists(),
                }}) + "\\n")
        """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    browser = AuthActions(app.test_client(), app)
    browser.create_user()
    browser.create_user(email="bob@example.com")
    browser.login()
    assert delete_form(browser.client).status_code == 302
    assert (
        app.test_cli_runner().invoke(args=["users", "delete", "bob@example.com", "--yes"]).exit_code
        == 0
    )
    calls = [json.loads(line) for line in seen.read_text().splitlines()]
    assert calls == [
        {"email": EMAIL, "via": "settings", "in_transaction": False, "still_there": True},
        {"email": "bob@example.com", "via": "cli", "in_transaction": False, "still_there": True},
    ]


def test_a_failing_plugin_keeps_the_account(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "broken",
        """
        from oauth import hookimpl
        @hookimpl
        def before_user_deleted(user):
            raise RuntimeError("the billing service is down")
        """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    browser = AuthActions(app.test_client(), app)
    browser.create_user()
    browser.login()
    refused = delete_form(browser.client)
    assert refused.status_code == 400 and "a plugin failed" in refused.get_data(as_text=True)
    assert counts(app, user_id_of(app))["user"] == 1


@pytest.fixture
def admin(app):
    actions = AuthActions(app.test_client(), app)
    actions.create_user(email="admin@example.com", is_admin=True)
    actions.login(email="admin@example.com")
    return actions


def test_an_admin_deletes_an_account_through_the_same_service(flow, app, admin):
    user_id = user_id_of(app)
    flow.tokens()
    page = admin.client.get(f"/admin/users/{user_id}/delete")
    assert page.status_code == 200 and "This cannot be undone." in page.get_data(as_text=True)
    assert admin.client.post(f"/admin/users/{user_id}/delete").status_code == 400  # no CSRF
    token = csrf_token_from(page.get_data(as_text=True))
    done = admin.client.post(f"/admin/users/{user_id}/delete", data={"csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"] == "/admin/users"
    assert set(counts(app, user_id).values()) == {0}
    with app.app_context():
        event = AuditEvent.get(AuditEvent.event_type == "user.deleted")
    admin_id = user_id_of(app, "admin@example.com")
    assert event.details == {"via": "admin", "actor": admin_id}
    assert flow.browser.get("/settings/profile").status_code == 302


def test_an_admin_cannot_delete_their_own_account_from_the_admin_pages(app, admin):
    admin_id = user_id_of(app, "admin@example.com")
    page = admin.client.get(f"/admin/users/{admin_id}/delete")
    token = csrf_token_from(page.get_data(as_text=True))
    admin.client.post(f"/admin/users/{admin_id}/delete", data={"csrf_token": token})
    assert "Settings › Security" in admin.client.get(f"/admin/users/{admin_id}").get_data(
        as_text=True
    )
    assert counts(app, admin_id)["user"] == 1


def test_a_deleted_admin_is_forgotten_in_the_events_they_caused(app, admin):
    AuthActions(admin.client, app).create_user()
    user_id = user_id_of(app)
    admin_id = user_id_of(app, "admin@example.com")
    page = admin.client.get(f"/admin/users/{user_id}").get_data(as_text=True)
    data = {"csrf_token": csrf_token_from(page), "name": "A", "app_metadata": "{}"}
    assert admin.client.post(f"/admin/users/{user_id}", data=data).status_code == 302
    assert delete_form(admin.client, password=PASSWORD).status_code == 302
    with app.app_context():
        updated = AuditEvent.get(AuditEvent.event_type == "user.updated")
        deleted = AuditEvent.get(AuditEvent.event_type == "user.deleted")
    assert updated.user_id == user_id  # Alice's event stays hers
    assert updated.details["actor"] == deleted.user_id != admin_id
    assert admin_id not in json.dumps([r.details for r in audit_rows(app)])


def test_with_a_second_factor_the_code_is_required_too(auth, client, app):
    auth.create_user()
    auth.login()
    secret, recovery = enrol(client)
    user_id = user_id_of(app)
    page = client.get("/settings/security").get_data(as_text=True)
    assert 'autocomplete="one-time-code"' in page.split('id="delete-account-title"')[1]
    missing = delete_form(client, password="wrong")
    errors = missing.get_data(as_text=True)
    assert missing.status_code == 400
    assert "Enter a code from your authenticator app" in errors  # with the password's error
    assert "Current password is incorrect." in errors
    wrong = delete_form(client, code="000000" if code_at(secret) != "000000" else "111111")
    assert "That code is not right" in wrong.get_data(as_text=True)
    assert counts(app, user_id)["user"] == 1
    assert delete_form(client, code=recovery[0]).status_code == 302
    with app.app_context():
        assert TotpFactor.select().count() == 0 and RecoveryCode.select().count() == 0
    assert counts(app, user_id)["user"] == 0


def test_the_accounts_mail_leaves_the_outbox(auth, client, app):
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))
    client.post("/signup", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
    with app.app_context():
        assert MailOutbox.select().where(MailOutbox.to_address == EMAIL).count() >= 1
    assert delete_form(client).status_code == 302
    with app.app_context():
        assert MailOutbox.select().count() == 0
        assert AccountToken.select().count() == 0
