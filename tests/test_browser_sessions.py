"""Browser sessions are server-side rows (issue 9 item 10): the cookie carries only a random id,
logout ends the session on the server, and signing in always starts a new session."""

import datetime as dt

import pytest
import requests

from oauth.accounts import admin as user_admin
from oauth.accounts import browser_sessions, deletion
from oauth.accounts import users as accounts
from oauth.security import sha256_hex
from oauth.storage.models import AuditEvent, BrowserSession, User, utcnow
from tests.conftest import AuthActions
from tests.live import csrf
from tests.test_production_server import gunicorn  # noqa: F401  # the live gunicorn fixture


def signed_in(client) -> bool:
    return client.get("/settings/profile").status_code == 200


def session_id(client) -> str | None:
    with client.session_transaction() as session:
        return session.get("_user_id")


def copy_cookie(source, target) -> None:
    target.set_cookie("session", source.get_cookie("session").value)


def rows(app, user_id=None) -> list[BrowserSession]:
    with app.app_context():
        query = BrowserSession.select()
        if user_id is not None:
            query = query.where(BrowserSession.user == user_id)
        return list(query)


def test_the_cookie_holds_a_random_id_stored_only_hashed(auth, client, app):
    user = auth.create_user()
    auth.login()
    raw = session_id(client)
    assert user.id not in raw and "." not in raw  # no user id, no epoch
    assert len(raw) >= 43  # token_urlsafe(32): 256 bits, at least the 128 ASVS asks for
    [row] = rows(app, user.id)
    assert row.id_hash == sha256_hex(raw) and row.id_hash != raw
    assert row.expires_at - row.created_at == dt.timedelta(days=30)
    assert row.ip == "127.0.0.1" and row.amr == ["pwd"]
    assert abs(row.auth_time - row.created_at.replace(tzinfo=dt.UTC).timestamp()) < 2
    with client.session_transaction() as session:
        assert session["auth_time"] == row.auth_time and session["amr"] == row.amr


def test_a_copied_cookie_stops_working_at_logout(auth, client, app):
    user = auth.create_user()
    auth.login()
    thief = app.test_client()
    copy_cookie(client, thief)
    assert signed_in(thief)
    assert auth.logout().status_code == 302
    assert not signed_in(client)
    assert not signed_in(thief)  # the copy holds a valid signature but no session any more
    assert rows(app, user.id) == []


def test_a_cookie_planted_before_sign_in_is_not_signed_in(auth, client, app):
    auth.create_user()
    attacker = app.test_client()
    attacker.get("/login")  # an anonymous session with its own CSRF token
    copy_cookie(attacker, client)  # planted in the victim's browser
    auth.login()
    assert signed_in(client)
    assert not signed_in(attacker)
    assert session_id(attacker) is None


def test_signing_in_again_renews_the_id_and_ends_the_old_one(auth, client, app):
    user = auth.create_user()
    auth.login()
    first = session_id(client)
    copy = app.test_client()
    copy_cookie(client, copy)
    auth.login()  # e.g. prompt=login
    assert session_id(client) != first
    assert signed_in(client) and not signed_in(copy)
    assert [row.id_hash for row in rows(app, user.id)] == [sha256_hex(session_id(client))]


def test_signing_in_over_someone_elses_session_ends_it(auth, client, app):
    auth.create_user()
    auth.create_user(email="mallory@example.com")
    attacker = app.test_client()
    AuthActions(attacker, app).login(email="mallory@example.com")
    copy_cookie(attacker, client)  # the attacker's signed-in cookie, planted
    auth.login()  # the victim signs in as themselves
    with app.app_context():
        mallory = User.get(User.email == "mallory@example.com")
    assert rows(app, mallory.id) == []
    assert not signed_in(attacker)


def test_idle_and_absolute_limits_end_the_session(auth, client, app):
    user = auth.create_user()
    auth.login()
    with app.app_context():
        BrowserSession.update(last_seen_at=utcnow() - dt.timedelta(days=14, seconds=1)).execute()
    assert not signed_in(client)
    assert rows(app, user.id) == []  # found over its limit: deleted
    auth.login()
    assert signed_in(client)
    with app.app_context():
        BrowserSession.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    assert not signed_in(client)


def test_limits_are_settings(make_app, capsys):
    app = make_app(BROWSER_SESSION_IDLE_TTL=60, BROWSER_SESSION_TTL=3600)
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create_user()
    auth.login()
    [row] = rows(app)
    assert row.expires_at - row.created_at == dt.timedelta(hours=1)
    with app.app_context():
        BrowserSession.update(last_seen_at=utcnow() - dt.timedelta(seconds=61)).execute()
    assert not signed_in(client)
    with pytest.raises(SystemExit):
        make_app(BROWSER_SESSION_TTL=-1)
    assert "PORTCULLIS_BROWSER_SESSION_TTL: expected a whole number" in capsys.readouterr().err


def test_last_seen_is_written_at_most_once_a_minute(auth, client, app):
    auth.create_user()
    auth.login()
    recent = utcnow() - dt.timedelta(seconds=30)
    with app.app_context():
        BrowserSession.update(last_seen_at=recent).execute()
    assert signed_in(client)
    assert rows(app)[0].last_seen_at == recent
    old = utcnow() - dt.timedelta(minutes=2)
    with app.app_context():
        BrowserSession.update(last_seen_at=old).execute()
    assert signed_in(client)
    assert rows(app)[0].last_seen_at > old + dt.timedelta(seconds=90)


def test_expired_sessions_are_purged_at_sign_in(auth, client, app):
    auth.create_user()
    bob = auth.create_user(email="bob@example.com")
    other = app.test_client()
    AuthActions(other, app).login(email="bob@example.com")
    with app.app_context():
        BrowserSession.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    auth.login()  # alice signs in: bob's dead row goes, without bob coming back
    assert rows(app, bob.id) == []
    assert len(rows(app)) == 1


def test_password_change_deletes_the_other_sessions(auth, client, app):
    user = auth.create_user()
    auth.login()
    others = [app.test_client() for _ in range(2)]
    for other in others:
        AuthActions(other, app).login()
    before = session_id(client)
    token = auth.csrf("/settings/security")
    response = client.post(
        "/settings/password",
        data={
            "current_password": "correct horse",
            "new_password": "a brand new one",
            "new_password_confirm": "a brand new one",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert signed_in(client) and session_id(client) != before  # renewed
    assert not any(signed_in(other) for other in others)
    assert [row.id_hash for row in rows(app, user.id)] == [sha256_hex(session_id(client))]


def test_sign_out_others_keeps_this_session_and_its_auth_time(auth, client, app):
    user = auth.create_user()
    auth.login()
    other = app.test_client()
    AuthActions(other, app).login()
    before = session_id(client)
    with app.app_context():  # signed in an hour ago
        BrowserSession.update(auth_time=BrowserSession.auth_time - 3600).execute()
    with client.session_transaction() as session:
        auth_time = session["auth_time"]
    token = auth.csrf("/settings/security")
    assert client.post("/settings/security/sign-out-others", data={"csrf_token": token}).status_code
    assert signed_in(client) and not signed_in(other)
    assert session_id(client) == before
    with client.session_transaction() as session:
        assert session["auth_time"] == auth_time
    [row] = rows(app, user.id)
    assert row.id_hash == sha256_hex(before)
    with app.app_context():
        assert row.epoch == User.get_by_id(user.id).session_epoch == 1


def test_a_moved_epoch_ends_sessions(auth, client, app):
    # anything that bumps the epoch (as before this change) still signs the user out
    user = auth.create_user()
    auth.login()
    with app.app_context():
        User.update(session_epoch=User.session_epoch + 1).where(User.id == user.id).execute()
    assert not signed_in(client)


def test_disabling_or_deleting_a_user_ends_their_sessions(auth, client, app):
    user = auth.create_user()
    auth.login()
    bob = auth.create_user(email="bob@example.com")
    bobs = app.test_client()
    AuthActions(bobs, app).login(email="bob@example.com")
    with app.app_context():
        user_admin.disable_user(user, actor_id=None)
    assert rows(app, user.id) == []
    assert not signed_in(client)
    with app.app_context():
        deletion.delete_account(bob, via="cli")
    assert rows(app) == [] and not signed_in(bobs)


def test_password_set_from_the_cli_ends_every_session(auth, client, app):
    user = auth.create_user()
    auth.login()
    with app.app_context():
        accounts.set_password(User.get_by_id(user.id), "set by the operator")
    assert rows(app, user.id) == [] and not signed_in(client)


def test_forged_or_odd_ids_are_refused(app):
    with app.test_request_context():
        assert browser_sessions.find("x" * 500) is None
        assert browser_sessions.find("") is None
        assert browser_sessions.find(None) is None
        assert not browser_sessions.end("never issued")


def test_logout_is_audited_once(auth, client, app):
    user = auth.create_user()
    auth.login()
    auth.logout()
    with app.app_context():
        events = AuditEvent.select().where(
            (AuditEvent.event_type == "logout") & (AuditEvent.user_id == user.id)
        )
        assert events.count() == 1


def test_logout_ends_the_session_on_every_worker(gunicorn):  # noqa: F811  # the fixture
    browser = requests.Session()
    page = browser.get(gunicorn + "/signup").text
    response = browser.post(
        gunicorn + "/signup",
        data={"email": "w@example.com", "password": "long enough", "csrf_token": csrf(page)},
        allow_redirects=False,
    )
    assert response.status_code == 302
    copy = requests.Session()
    copy.cookies.update(browser.cookies)
    for _ in range(8):  # spread over the workers
        assert copy.get(gunicorn + "/settings/profile", allow_redirects=False).status_code == 200
    page = browser.get(gunicorn + "/settings/profile").text
    out = browser.post(gunicorn + "/logout", data={"csrf_token": csrf(page)}, allow_redirects=False)
    assert out.status_code == 302
    for _ in range(8):
        assert copy.get(gunicorn + "/settings/profile", allow_redirects=False).status_code == 302
