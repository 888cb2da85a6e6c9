"""The user's authorized apps (list, revoke) and the security page."""

from __future__ import annotations

from oauth.storage.models import AuditEvent, Consent, OAuthSession, RefreshToken, User
from tests.conftest import AuthActions, csrf_token_from
from tests.oauth_helpers import Flow, make_client


def signed_in(client) -> bool:
    return client.get("/settings/profile").status_code == 200


def authorized_flow(app, client, auth, *, email="alice@example.com", **client_kwargs):
    """A signed-in user who approved an app and holds its tokens."""
    auth.create_user(email)
    auth.login(email)
    client_id, secret = make_client(app, **client_kwargs)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    return flow, flow.tokens()


def revoke(client, client_id: str, token: str | None = None):
    token = token or csrf_token_from(client.get("/settings/apps").get_data(as_text=True))
    return client.post(f"/settings/apps/{client_id}/revoke", data={"csrf_token": token})


def test_apps_page_needs_login(client):
    response = client.get("/settings/apps")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_apps_page_is_empty_at_first(auth, client):
    auth.create_user()
    auth.login()
    html = client.get("/settings/apps").get_data(as_text=True)
    assert "You have not authorized any applications" in html


def test_apps_page_lists_the_authorized_app(app, auth, client):
    flow, _tokens = authorized_flow(
        app,
        client,
        auth,
        name="Photo Printer",
        client_uri="https://photos.example",
        logo_uri="https://photos.example/logo.png",
    )
    html = client.get("/settings/apps").get_data(as_text=True)
    assert "Photo Printer" in html
    assert 'href="https://photos.example"' in html
    assert 'src="https://photos.example/logo.png"' in html
    assert "See your email address" in html  # scopes in plain words
    assert "See your name, picture and username" in html
    assert "First authorized" in html and "Last used" in html
    assert f'action="/settings/apps/{flow.client_id}/revoke"' in html
    assert 'name="csrf_token"' in html


def test_last_used_shows_never_before_any_token(app, auth, client):
    auth.create_user()
    auth.login()
    client_id, secret = make_client(app)
    Flow(app, client, client_id=client_id, secret=secret).get_code()  # consent, no token yet
    html = client.get("/settings/apps").get_data(as_text=True)
    assert "Test App" in html and "never" in html


def test_revoke_ends_everything_the_grant_issued(app, auth, client):
    flow, tokens = authorized_flow(app, client, auth)
    assert flow.userinfo(tokens["access_token"]).status_code == 200

    response = revoke(client, flow.client_id)
    assert response.status_code == 302
    assert response.headers["Location"] == "/settings/apps"
    page = client.get("/settings/apps").get_data(as_text=True)
    assert "was revoked" in page and "You have not authorized any applications" in page

    with app.app_context():
        assert Consent.select().count() == 0
        sessions = list(OAuthSession.select())
        assert sessions and all(s.revoked_reason == "revoked_by_user" for s in sessions)
        assert RefreshToken.select().count() == 0
        event = AuditEvent.get(AuditEvent.event_type == "grant.revoked")
        assert event.client_id == flow.client_id and event.details["sessions_revoked"] == 1

    refreshed = flow.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.get_json()["error"] == "invalid_grant"
    assert flow.userinfo(tokens["access_token"]).status_code == 401

    # The next authorization asks for consent again.
    location, consent_page = flow.consent_page(flow.authorize())
    assert consent_page.status_code == 200
    assert 'name="decision"' in consent_page.get_data(as_text=True)
    assert signed_in(client)  # the browser login itself is not touched


def test_revoke_voids_a_code_not_yet_exchanged(app, auth, client):
    auth.create_user()
    auth.login()
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    code, _ = flow.get_code()
    assert revoke(client, client_id).status_code == 302
    response = flow.exchange(code)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_revoke_without_csrf_changes_nothing(app, auth, client):
    flow, tokens = authorized_flow(app, client, auth)
    response = client.post(f"/settings/apps/{flow.client_id}/revoke")
    assert response.status_code == 400
    response = client.post(f"/settings/apps/{flow.client_id}/revoke", data={"csrf_token": "junk"})
    assert response.status_code == 400
    with app.app_context():
        assert Consent.select().count() == 1
        assert OAuthSession.select().where(OAuthSession.revoked_at.is_null()).count() == 1
        assert not AuditEvent.select().where(AuditEvent.event_type == "grant.revoked").exists()
    assert flow.refresh(tokens["refresh_token"]).status_code == 200


def test_revoke_needs_a_grant_and_a_known_client(app, auth, client):
    auth.create_user()
    auth.login()
    client_id, _secret = make_client(app)
    token = auth.csrf("/settings/apps")
    assert revoke(client, client_id, token).status_code == 404  # no grant
    assert revoke(client, "no-such-client", token).status_code == 404
    assert client.get(f"/settings/apps/{client_id}/revoke").status_code == 405


def test_revoke_leaves_other_users_grants_alone(app, auth, client):
    flow, _tokens = authorized_flow(app, client, auth)
    bob_browser = app.test_client()
    bob = AuthActions(bob_browser, app)
    bob.create_user("bob@example.com")
    bob.login("bob@example.com")
    bob_flow = Flow(app, bob_browser, client_id=flow.client_id, secret=flow.secret)
    bob_tokens = bob_flow.tokens()

    assert revoke(client, flow.client_id).status_code == 302

    with app.app_context():
        bob_user = User.get(User.email == "bob@example.com")
        assert Consent.select().where(Consent.user == bob_user).count() == 1
    assert bob_flow.userinfo(bob_tokens["access_token"]).status_code == 200
    assert bob_flow.refresh(bob_tokens["refresh_token"]).status_code == 200
    assert "Test App" in bob_browser.get("/settings/apps").get_data(as_text=True)


# --- security page ----------------------------------------------------------------------


def test_security_page_has_the_password_form_and_sign_out(auth, client):
    auth.create_user()
    auth.login()
    html = client.get("/settings/security").get_data(as_text=True)
    assert 'action="/settings/password"' in html
    assert 'name="current_password"' in html and 'name="new_password"' in html
    assert 'action="/settings/security/sign-out-others"' in html
    assert "Sign out of other sessions" in html
    assert 'href="/settings/security"' in html  # in the navigation
    # DESIGN.md: the profile page covers name, phone and password
    profile = client.get("/settings/profile").get_data(as_text=True)
    assert 'name="current_password"' in profile and 'action="/settings/password"' in profile


def test_password_change_from_the_security_page(app, auth, client):
    auth.create_user()
    auth.login()
    token = auth.csrf("/settings/security")
    form = {"new_password": "a brand new one", "new_password_confirm": "a brand new one"}
    wrong = client.post(
        "/settings/password", data={**form, "current_password": "nope", "csrf_token": token}
    )
    assert wrong.status_code == 400
    html = wrong.get_data(as_text=True)
    assert "Current password is incorrect" in html and "Sign out of other sessions" in html
    ok = client.post(
        "/settings/password",
        data={**form, "current_password": "correct horse", "csrf_token": token},
    )
    assert ok.status_code == 302 and ok.headers["Location"] == "/settings/security"
    assert signed_in(client)
    assert auth.login(password="a brand new one").status_code == 302


def test_sign_out_other_sessions(app, auth, client):
    user = auth.create_user()
    auth.login()
    other = app.test_client()
    AuthActions(other, app).login()
    assert signed_in(other)

    assert client.post("/settings/security/sign-out-others").status_code == 400
    assert signed_in(other)

    token = auth.csrf("/settings/security")
    response = client.post("/settings/security/sign-out-others", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/settings/security"
    assert signed_in(client)
    assert not signed_in(other)
    with app.app_context():
        assert User.get_by_id(user.id).session_epoch == 1
        assert (
            AuditEvent.select()
            .where(
                (AuditEvent.event_type == "sessions.signed_out_others")
                & (AuditEvent.user_id == user.id)
            )
            .exists()
        )
