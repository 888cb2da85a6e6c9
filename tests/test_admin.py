"""Admin pages: access control, clients, users, keys, plugins, APIs, the audit log."""

from __future__ import annotations

import json
import re

import pytest

from oauth import audit
from oauth.security import sha256_hex
from oauth.storage.models import (
    Api,
    AuditEvent,
    Client,
    ClientGrant,
    OAuthSession,
    RefreshToken,
    SigningKey,
    User,
)
from oauth.tokens import keys
from tests.conftest import AuthActions, csrf_token_from
from tests.oauth_helpers import Flow, make_client

ADMIN_EMAIL = "root@example.com"
PAGES = [
    "/admin/",
    "/admin/clients",
    "/admin/clients/new",
    "/admin/users",
    "/admin/keys",
    "/admin/plugins",
    "/admin/apis",
    "/admin/audit",
]


@pytest.fixture
def admin(auth):
    """The test client, signed in as an administrator; returns the admin user."""
    user = auth.create_user(ADMIN_EMAIL, is_admin=True)
    auth.login(ADMIN_EMAIL)
    return user


def csrf(client, path="/admin/") -> str:
    return csrf_token_from(client.get(path).get_data(as_text=True))


def events(app, event_type: str, **where) -> list[AuditEvent]:
    with app.app_context():
        query = AuditEvent.select().where(AuditEvent.event_type == event_type)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list(query)


def secret_on(html: str) -> str:
    match = re.search(r'id="client-secret"[^>]*>([^<]+)<', html)
    assert match, "no secret on the page"
    return match.group(1)


# --- access --------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_login(client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path


def test_non_admins_get_403_everywhere(app, auth, client):
    auth.create_user()
    auth.login()
    client_id, _ = make_client(app)
    with app.app_context():
        kid = keys.list_keys()[0].kid
    for path in PAGES + [f"/admin/clients/{client_id}", f"/admin/clients/{client_id}/delete"]:
        assert client.get(path).status_code == 403, path
    token = auth.csrf("/settings/profile")
    for path in [
        "/admin/clients/new",
        f"/admin/clients/{client_id}/rotate-secret",
        f"/admin/clients/{client_id}/delete",
        "/admin/keys/rotate",
        "/admin/keys/add",
        f"/admin/keys/{kid}/revoke",
        "/admin/apis",
    ]:
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    with app.app_context():
        assert Client.select().count() == 1 and SigningKey.select().count() == 2  # ES256, RS256
    assert 'href="/admin/"' not in client.get("/settings/profile").get_data(as_text=True)


def test_every_page_renders_for_an_admin(admin, client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store"
        html = response.get_data(as_text=True)
        assert 'class="subnav"' in html and "style.css" in html
    assert 'href="/admin/"' in client.get("/settings/profile").get_data(as_text=True)


def test_overview_counts(app, admin, client):
    make_client(app, name="One")
    make_client(app, name="Two", public=True)
    html = client.get("/admin/").get_data(as_text=True)
    assert re.search(r'stat-value">2</span><span class="stat-label">clients', html)
    assert re.search(r'stat-value">1</span><span class="stat-label">users', html)


# --- clients -------------------------------------------------------------------------------


def create_client_form(client, **fields):
    data = {
        "name": "Billing",
        "redirect_uris": "https://billing.example/cb\nhttp://127.0.0.1/cb",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_uri": "https://billing.example",
        "logo_uri": "",
        "csrf_token": csrf(client, "/admin/clients/new"),
    }
    data.update(fields)
    return client.post("/admin/clients/new", data=data)


def test_create_confidential_client_shows_the_secret_once(app, admin, client):
    response = create_client_form(client)
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    secret = secret_on(html)
    assert "shown only this once" in html
    with app.app_context():
        created = Client.get(Client.name == "Billing")
        assert created.client_secret_hash == sha256_hex(secret)
        assert created.redirect_uris == ["https://billing.example/cb", "http://127.0.0.1/cb"]
        assert created.client_uri == "https://billing.example"
        assert not created.is_public
    listing = client.get("/admin/clients").get_data(as_text=True)
    assert "Billing" in listing and created.client_id in listing and "confidential" in listing
    assert secret not in listing
    assert secret not in client.get(f"/admin/clients/{created.client_id}").get_data(as_text=True)
    [event] = events(app, "client.created")
    assert event.client_id == created.client_id and event.user_id == admin.id
    assert secret not in json.dumps(event.details)


def test_create_public_and_machine_clients(app, admin, client):
    response = create_client_form(client, name="SPA", public="y")
    assert response.status_code == 201
    assert 'id="client-secret"' not in response.get_data(as_text=True)
    response = create_client_form(
        client, name="Robot", redirect_uris="", grant_types=["client_credentials"]
    )
    assert response.status_code == 201
    with app.app_context():
        assert Client.get(Client.name == "SPA").is_public
        assert Client.get(Client.name == "Robot").grant_types == ["client_credentials"]


def test_create_client_refuses_bad_metadata(app, admin, client):
    response = create_client_form(client, redirect_uris="http://evil.example/cb")
    assert response.status_code == 400
    assert "https" in response.get_data(as_text=True)
    assert create_client_form(client, name="").status_code == 400
    response = create_client_form(client, public="y", grant_types=["client_credentials"])
    assert response.status_code == 400
    with app.app_context():
        assert Client.select().count() == 0
        assert not AuditEvent.select().where(AuditEvent.event_type == "client.created").exists()


def test_client_list_shows_type_badges_and_last_used(app, admin, client):
    make_client(app, name="Self Service", registration_type="dynamic")
    make_client(app, name="Native", public=True, redirect_uris=["http://127.0.0.1/cb"])
    html = client.get("/admin/clients").get_data(as_text=True)
    assert "Self Service" in html and ">dynamic</span>" in html
    assert ">public</span>" in html and ">confidential</span>" in html
    assert "http://127.0.0.1/cb" in html and "authorization_code" in html
    assert "never" in html


def test_edit_client(app, admin, client):
    client_id, _ = make_client(app)
    page = client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert "https://app.example/callback" in page
    data = {
        "name": "Renamed",
        "redirect_uris": "https://new.example/cb\n\n  https://other.example/cb  ",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_uri": "https://new.example",
        "logo_uri": "https://new.example/logo.png",
        "metadata": '{"tier": "gold"}',
        "csrf_token": csrf_token_from(page),
    }
    response = client.post(f"/admin/clients/{client_id}", data=data)
    assert response.status_code == 302
    with app.app_context():
        edited = Client.get_by_id(client_id)
        assert edited.name == "Renamed"
        assert edited.redirect_uris == ["https://new.example/cb", "https://other.example/cb"]
        assert edited.metadata == {"tier": "gold"}
        assert edited.logo_uri == "https://new.example/logo.png"
    [event] = events(app, "client.updated")
    assert event.user_id == admin.id and "redirect_uris" in event.details["fields"]

    for bad in (
        {"redirect_uris": "http://evil.example/cb"},
        {"metadata": "{not json"},
        {"metadata": "[1, 2]"},
        {"name": ""},
    ):
        response = client.post(f"/admin/clients/{client_id}", data={**data, **bad})
        assert response.status_code == 400, bad
    with app.app_context():
        assert Client.get_by_id(client_id).name == "Renamed"
    assert len(events(app, "client.updated")) == 1
    assert client.get("/admin/clients/nope").status_code == 404


def test_rotate_client_secret(app, admin, client):
    client_id, old_secret = make_client(app)
    token = csrf(client, f"/admin/clients/{client_id}")
    response = client.post(f"/admin/clients/{client_id}/rotate-secret", data={"csrf_token": token})
    assert response.status_code == 200
    new_secret = secret_on(response.get_data(as_text=True))
    assert new_secret != old_secret
    with app.app_context():
        rotated = Client.get_by_id(client_id)
        assert rotated.check_client_secret(new_secret)
        assert not rotated.check_client_secret(old_secret)
    [event] = events(app, "client.secret_rotated")
    assert event.user_id == admin.id and event.client_id == client_id
    assert new_secret not in json.dumps(event.details)
    # without CSRF nothing rotates
    assert client.post(f"/admin/clients/{client_id}/rotate-secret").status_code == 400
    assert len(events(app, "client.secret_rotated")) == 1


def test_public_client_has_no_secret_to_rotate(app, admin, client):
    client_id, _ = make_client(app, public=True)
    page = client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert "Rotate secret" not in page
    response = client.post(
        f"/admin/clients/{client_id}/rotate-secret", data={"csrf_token": csrf_token_from(page)}
    )
    assert response.status_code == 302
    assert "no secret" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_delete_client_after_confirmation(app, admin, client):
    client_id, _ = make_client(app, name="Doomed")
    confirm = client.get(f"/admin/clients/{client_id}/delete")
    assert confirm.status_code == 200
    html = confirm.get_data(as_text=True)
    assert "Delete client Doomed?" in html and 'method="post"' in html
    with app.app_context():
        assert Client.select().count() == 1
    assert client.post(f"/admin/clients/{client_id}/delete").status_code == 400
    response = client.post(
        f"/admin/clients/{client_id}/delete", data={"csrf_token": csrf_token_from(html)}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/clients"
    with app.app_context():
        assert Client.select().count() == 0
    [event] = events(app, "client.deleted")
    assert event.client_id == client_id and event.user_id == admin.id


# --- users ---------------------------------------------------------------------------------


def test_user_search_and_pagination(app, admin, auth, client):
    auth.create_user("bob@example.com", name="Bob Builder")
    auth.create_user("carol@example.com", name="Carol")
    html = client.get("/admin/users?q=bob").get_data(as_text=True)
    assert "bob@example.com" in html and "carol@example.com" not in html
    html = client.get("/admin/users?q=BUILDER").get_data(as_text=True)  # name, any case
    assert "bob@example.com" in html and "carol@example.com" not in html
    html = client.get("/admin/users?q=%25").get_data(as_text=True)  # a LIKE wildcard is literal
    assert "No user matches" in html

    with app.app_context():
        User.insert_many(
            [{"email": f"user{i:02}@example.com", "name": f"User {i}"} for i in range(30)]
        ).execute()
    first = client.get("/admin/users").get_data(as_text=True)
    assert "Page 1 of 2" in first and "(33 in all)" in first
    assert first.count('href="/admin/users/') == 25
    second = client.get("/admin/users?page=2").get_data(as_text=True)
    assert second.count('href="/admin/users/') == 8
    assert client.get("/admin/users?page=junk").status_code == 200


def test_edit_user_metadata(app, admin, auth, client):
    bob = auth.create_user("bob@example.com", app_metadata={"plan": "free"})
    page = client.get(f"/admin/users/{bob.id}").get_data(as_text=True)
    assert "&#34;plan&#34;: &#34;free&#34;" in page or "&quot;plan&quot;" in page
    data = {
        "name": "Bob",
        "phone": "+15550100",
        "app_metadata": '{"plan": "pro", "roles": ["editor"]}',
        "user_metadata": '{"theme": "dark"}',
        "csrf_token": csrf_token_from(page),
    }
    response = client.post(f"/admin/users/{bob.id}", data=data)
    assert response.status_code == 302
    with app.app_context():
        saved = User.get_by_id(bob.id)
        assert saved.app_metadata == {"plan": "pro", "roles": ["editor"]}
        assert saved.user_metadata == {"theme": "dark"}
        assert (saved.name, saved.phone) == ("Bob", "+15550100")
    [event] = events(app, "user.updated")
    assert event.user_id == bob.id and event.details["actor"] == admin.id
    assert event.details["fields"] == ["app_metadata", "name", "phone", "user_metadata"]


def test_invalid_metadata_json_saves_nothing(app, admin, auth, client):
    bob = auth.create_user("bob@example.com", app_metadata={"plan": "free"})
    token = csrf(client, f"/admin/users/{bob.id}")
    for app_metadata, user_metadata, message in [
        ('{"plan": "pro",}', "{}", "not valid JSON"),
        ('["a list"]', "{}", "must be a JSON object"),
        ('{"plan": "pro"}', "{oops", "not valid JSON"),
    ]:
        response = client.post(
            f"/admin/users/{bob.id}",
            data={
                "name": "Changed",
                "phone": "",
                "app_metadata": app_metadata,
                "user_metadata": user_metadata,
                "csrf_token": token,
            },
        )
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    with app.app_context():
        saved = User.get_by_id(bob.id)
        assert saved.app_metadata == {"plan": "free"} and saved.name == ""
    assert events(app, "user.updated") == []


def test_disable_user_revokes_sessions_and_signs_out(app, admin, client):
    bob_browser = app.test_client()
    bob = AuthActions(bob_browser, app)
    bob_user = bob.create_user("bob@example.com")
    bob.login("bob@example.com")
    client_id, secret = make_client(app)
    flow = Flow(app, bob_browser, client_id=client_id, secret=secret)
    tokens = flow.tokens()

    token = csrf(client, f"/admin/users/{bob_user.id}")
    response = client.post(f"/admin/users/{bob_user.id}/disable", data={"csrf_token": token})
    assert response.status_code == 302
    assert "disabled and signed out" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    with app.app_context():
        saved = User.get_by_id(bob_user.id)
        assert saved.disabled and saved.session_epoch == 1
        assert OAuthSession.get().revoked_reason == "user_disabled"
        assert RefreshToken.select().count() == 0
    assert bob_browser.get("/settings/profile").status_code == 302  # signed out
    assert flow.refresh(tokens["refresh_token"]).status_code == 400
    assert flow.userinfo(tokens["access_token"]).status_code == 401
    assert bob.login("bob@example.com").status_code == 200  # cannot sign in
    [event] = events(app, "user.disabled")
    assert event.details == {"actor": admin.id, "sessions_revoked": 1}

    response = client.post(f"/admin/users/{bob_user.id}/enable", data={"csrf_token": token})
    assert response.status_code == 302
    assert bob.login("bob@example.com").status_code == 302
    assert len(events(app, "user.enabled")) == 1


def test_admin_cannot_lock_themselves_out(app, admin, client):
    token = csrf(client)
    for action in ("disable", "admin"):
        response = client.post(f"/admin/users/{admin.id}/{action}", data={"csrf_token": token})
        assert response.status_code == 302
    with app.app_context():
        me = User.get_by_id(admin.id)
        assert me.is_admin and not me.disabled
    assert client.get("/admin/").status_code == 200


def test_toggle_admin(app, admin, auth, client):
    bob = auth.create_user("bob@example.com")
    token = csrf(client)
    client.post(f"/admin/users/{bob.id}/admin", data={"csrf_token": token, "is_admin": "1"})
    with app.app_context():
        assert User.get_by_id(bob.id).is_admin
    client.post(f"/admin/users/{bob.id}/admin", data={"csrf_token": token, "is_admin": "0"})
    with app.app_context():
        assert not User.get_by_id(bob.id).is_admin
    assert [e.event_type for e in events(app, "user.admin_granted")] == ["user.admin_granted"]
    assert len(events(app, "user.admin_revoked")) == 1
    assert client.get("/admin/users/not-a-user").status_code == 404


# --- signing keys --------------------------------------------------------------------------


def key_states(app, alg: str | None = None) -> dict[str, str]:
    with app.app_context():
        return {k.kid: k.state for k in SigningKey.select() if alg in (None, k.alg)}


def test_keys_add_rotate_revoke(app, admin, client):
    [first] = key_states(app, "RS256")  # a current key of each alg; RS256 is rotated here
    page = client.get("/admin/keys").get_data(as_text=True)
    assert first in page and ">current</span>" in page
    token = csrf_token_from(page)

    response = client.post("/admin/keys/add", data={"csrf_token": token, "add-alg": "RS256"})
    assert response.status_code == 302
    states = key_states(app)
    [standby] = [kid for kid, state in states.items() if state == "standby"]
    [added] = events(app, "key.added")
    assert added.details["kid"] == standby and added.user_id == admin.id

    response = client.post("/admin/keys/rotate", data={"csrf_token": token, "rotate-alg": "RS256"})
    assert response.status_code == 302
    states = key_states(app)
    assert states[standby] == "current" and states[first] == "previous"
    with app.app_context():
        assert SigningKey.get_by_id(standby).alg == "RS256"
    [rotated] = events(app, "key.rotated")
    assert rotated.details["kid"] == standby and rotated.details["previous_kid"] == first

    # the current key is refused, with the service's message
    response = client.post(f"/admin/keys/{standby}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    html = client.get("/admin/keys").get_data(as_text=True)
    assert "is the current signing key: rotate first" in html
    assert key_states(app)[standby] == "current"

    response = client.post(f"/admin/keys/{first}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    assert key_states(app)[first] == "revoked"
    [revoked] = events(app, "key.revoked")
    assert revoked.details == {"kid": first, "alg": "RS256"}
    client.post("/admin/keys/nope/revoke", data={"csrf_token": token})
    assert "no signing key with kid nope" in client.get("/admin/keys").get_data(as_text=True)


def test_rotate_with_default_alg_and_bad_alg(app, admin, client):
    first = key_states(app)
    assert sorted(first.values()) == ["current", "current"]
    token = csrf(client, "/admin/keys")
    assert client.post("/admin/keys/rotate", data={"csrf_token": token}).status_code == 302
    assert all(key_states(app)[kid] == "previous" for kid in first)  # every alg together
    response = client.post("/admin/keys/rotate", data={"csrf_token": token, "rotate-alg": "HS256"})
    assert response.status_code == 400
    assert len(events(app, "key.rotated")) == 2


# --- plugins -------------------------------------------------------------------------------


def test_plugins_page_without_and_with_a_plugin(app, admin, client, make_app, plugin_dir):
    assert "No plugins loaded" in client.get("/admin/plugins").get_data(as_text=True)

    (plugin_dir / "roles.py").write_text(
        "from oauth import hookimpl\n"
        "@hookimpl\n"
        "def customize_access_token(claims):\n"
        "    return {'roles': ['admin']}\n"
    )
    with_plugin = make_app(PLUGINS_DIR=str(plugin_dir))
    http = with_plugin.test_client()
    AuthActions(http, with_plugin).login(ADMIN_EMAIL)  # same database: the admin exists
    host = with_plugin.extensions["portcullis.plugins"]
    for _ in range(3):
        host.stats.record("roles", "customize_access_token", 1.234, "ok")
    host.stats.record("roles", "customize_access_token", 0.0, "failed")
    html = http.get("/admin/plugins").get_data(as_text=True)
    assert "roles" in html and "roles.py" in html and "customize_access_token" in html
    assert ">4<" in html and ">1<" in html and "ms" in html


# --- APIs ----------------------------------------------------------------------------------


def test_apis_create_grant_revoke_delete(app, admin, client):
    machine_id, _ = make_client(
        app, name="Robot", redirect_uris=(), grant_types=["client_credentials"]
    )
    make_client(app, name="Browser app")  # no client_credentials: not offered
    token = csrf(client, "/admin/apis")
    response = client.post(
        "/admin/apis",
        data={
            "identifier": "https://api.example.com",
            "name": "Orders",
            "scopes": "read:orders=Read orders\nwrite:orders\n",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    with app.app_context():
        api = Api.get(Api.identifier == "https://api.example.com")
        assert api.scopes == [
            {"value": "read:orders", "description": "Read orders"},
            {"value": "write:orders", "description": ""},
        ]
    listing = client.get("/admin/apis").get_data(as_text=True)
    assert "Orders" in listing and "read:orders" in listing and "3600 s" in listing

    detail = client.get(f"/admin/apis/{api.id}").get_data(as_text=True)
    assert "Robot" in detail and "Browser app" not in detail
    response = client.post(
        f"/admin/apis/{api.id}/grants",
        data={"client_id": machine_id, "scopes": ["read:orders"], "csrf_token": token},
    )
    assert response.status_code == 302
    with app.app_context():
        assert ClientGrant.get().scopes == ["read:orders"]
    # replace
    client.post(
        f"/admin/apis/{api.id}/grants",
        data={
            "client_id": machine_id,
            "scopes": ["read:orders", "write:orders"],
            "csrf_token": token,
        },
    )
    with app.app_context():
        assert ClientGrant.get().scopes == ["read:orders", "write:orders"]
    assert "write:orders" in client.get("/admin/apis").get_data(as_text=True)
    # an unknown scope is refused by the form
    response = client.post(
        f"/admin/apis/{api.id}/grants",
        data={"client_id": machine_id, "scopes": ["admin:all"], "csrf_token": token},
    )
    assert response.status_code == 400

    response = client.post(
        f"/admin/apis/{api.id}/grants/{machine_id}/revoke", data={"csrf_token": token}
    )
    assert response.status_code == 302
    with app.app_context():
        assert ClientGrant.select().count() == 0
    assert (
        client.post(
            f"/admin/apis/{api.id}/grants/{machine_id}/revoke", data={"csrf_token": token}
        ).status_code
        == 404
    )

    assert "Delete API Orders?" in client.get(f"/admin/apis/{api.id}/delete").get_data(as_text=True)
    response = client.post(f"/admin/apis/{api.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        assert Api.select().count() == 0
    assert client.get(f"/admin/apis/{api.id}").status_code == 404
    assert len(events(app, "api.created")) == 1 and len(events(app, "api.deleted")) == 1


def test_api_create_errors_are_shown(app, admin, client):
    token = csrf(client, "/admin/apis")
    response = client.post(
        "/admin/apis",
        data={"identifier": "not a url", "name": "Bad", "scopes": "", "csrf_token": token},
    )
    assert response.status_code == 400
    assert 'class="flash flash-error"' in response.get_data(as_text=True)
    with app.app_context():
        assert Api.select().count() == 0


# --- audit log -----------------------------------------------------------------------------


def test_audit_filters_and_pagination(app, admin, auth, client):
    bob = auth.create_user("bob@example.com")
    with app.app_context():
        AuditEvent.insert_many(
            [
                {"event_type": "test.bulk", "user_id": bob.id, "client_id": "c-1", "details": "{}"}
                for _ in range(120)
            ]
        ).execute()
        AuditEvent.create(event_type="test.other", client_id="c-2")
    html = client.get("/admin/audit").get_data(as_text=True)
    assert '<option value="test.bulk"' in html and '<option value="login.succeeded"' in html

    page1 = client.get("/admin/audit?event_type=test.bulk").get_data(as_text=True)
    assert page1.count('class="badge event"') == 50
    assert "Page 1 of 3" in page1 and "(120 in all)" in page1
    assert "event_type=test.bulk" in page1 and "page=2" in page1  # links keep the filter
    page3 = client.get("/admin/audit?event_type=test.bulk&page=3").get_data(as_text=True)
    assert page3.count('class="badge event"') == 20

    by_email = client.get("/admin/audit?user=BOB@example.com").get_data(as_text=True)
    assert "(121 in all)" in by_email  # the 120 and the creation of bob's account
    by_id = client.get(f"/admin/audit?user={bob.id}&page=3").get_data(as_text=True)
    assert by_id.count('class="badge event"') == 21
    by_client = client.get("/admin/audit?client_id=c-2").get_data(as_text=True)
    assert by_client.count('class="badge event"') == 1 and "test.other" in by_client
    nobody = client.get("/admin/audit?user=ghost@example.com").get_data(as_text=True)
    assert "No events match these filters" in nobody


def test_newest_events_come_first(app, admin, client):
    with app.app_context():
        for name in ("test.first", "test.second", "test.third"):
            AuditEvent.create(event_type=name)
    html = client.get("/admin/audit").get_data(as_text=True)
    html = html[html.index("<tbody>") :]  # the rows, not the event type select
    assert html.index("test.third") < html.index("test.second") < html.index("test.first")


def test_audit_trail_of_a_whole_story_contains_no_secrets(app, auth, client):
    """Logins, consent, tokens, grant revocation, client and key changes are audited; no
    password, client secret or token ever lands in an audit event."""
    password = "correct horse"
    admin = auth.create_user(ADMIN_EMAIL, password, is_admin=True)
    assert auth.login(ADMIN_EMAIL, "a wrong password").status_code == 200
    assert auth.login("nobody@example.com", "another wrong one").status_code == 200
    auth.login(ADMIN_EMAIL, password)

    created = create_client_form(client)
    first_secret = secret_on(created.get_data(as_text=True))
    with app.app_context():
        client_id = Client.get(Client.name == "Billing").client_id
    token = csrf(client)
    rotated = client.post(f"/admin/clients/{client_id}/rotate-secret", data={"csrf_token": token})
    secret = secret_on(rotated.get_data(as_text=True))
    client.post("/admin/keys/add", data={"csrf_token": token})
    client.post("/admin/keys/rotate", data={"csrf_token": token})

    flow = Flow(
        app, client, client_id=client_id, secret=secret, redirect_uri="https://billing.example/cb"
    )
    tokens = flow.tokens()
    refreshed = flow.refresh(tokens["refresh_token"]).get_json()
    client.post(f"/settings/apps/{client_id}/revoke", data={"csrf_token": token})
    auth.logout()

    with app.app_context():
        audit.flush_spool()  # token.issued is spooled
        rows = list(AuditEvent.select())
    kinds = {row.event_type for row in rows}
    assert {
        "login.succeeded",
        "login.failed",
        "logout",
        "client.created",
        "client.secret_rotated",
        "key.added",
        "key.rotated",
        "consent.granted",
        "token.issued",
        "grant.revoked",
    } <= kinds
    failed = [row for row in rows if row.event_type == "login.failed"]
    assert {row.details["email"] for row in failed} == {ADMIN_EMAIL, "nobody@example.com"}
    assert {row.user_id for row in failed} == {admin.id, None}
    assert len([r for r in rows if r.event_type == "client.created"]) == 1  # not twice

    dumped = json.dumps([[r.event_type, r.user_id, r.client_id, r.details] for r in rows])
    for secret_value in (
        password,
        "a wrong password",
        "another wrong one",
        first_secret,
        secret,
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        refreshed["refresh_token"],
    ):
        assert secret_value not in dumped


def test_signup_is_audited(app, client):
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))
    client.post(
        "/signup", data={"email": "new@example.com", "password": "long enough", "csrf_token": token}
    )
    [event] = events(app, "signup")
    with app.app_context():
        assert event.user_id == User.get(User.email == "new@example.com").id
    assert "long enough" not in json.dumps(event.details)
