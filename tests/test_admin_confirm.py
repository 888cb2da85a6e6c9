"""Admin pages: every destructive action has a confirm page (GET, nothing changes) and a POST
with CSRF; rotating a client secret offers a grace period; rotating the signing keys says
what a key not yet long in the JWKS risks."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from oauth.registry import client_grants, clients
from oauth.storage.models import AuditEvent, Client, SigningKey, utcnow
from oauth.tokens import keys
from tests.conftest import csrf_token_from
from tests.m2m_helpers import API, setup_m2m
from tests.oauth_helpers import basic_auth_header

ADMIN_EMAIL = "root@example.com"


@pytest.fixture
def admin(auth):
    user = auth.create_user(ADMIN_EMAIL, is_admin=True)
    auth.login(ADMIN_EMAIL)
    return user


def gets_token(http, client_id: str, secret: str) -> bool:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "audience": API},
        headers=basic_auth_header(client_id, secret),
    )
    assert response.status_code in (200, 401), response.get_data(as_text=True)
    return response.status_code == 200


def confirm_page(http, path: str) -> tuple[str, str]:
    """The confirm page at ``path``: its HTML and CSRF token; it posts back to ``path``."""
    response = http.get(path)
    assert response.status_code == 200, path
    html = response.get_data(as_text=True)
    assert f'method="post" action="{path}"' in html and "This cannot be undone." in html
    return html, csrf_token_from(html)


def test_rotate_secret_with_a_grace_period_from_the_client_page(app, admin, client):
    client_id, old = setup_m2m(app)
    path = f"/admin/clients/{client_id}/rotate-secret"
    edit = client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert f'href="{path}"' in edit and "previous-secret" not in edit

    html, token = confirm_page(client, path)
    assert 'name="grace_seconds"' in html and 'value="86400"' in html
    with app.app_context():
        assert (
            AuditEvent.select().where(AuditEvent.event_type == "client.secret_rotated").count() == 0
        )
        assert Client.get_by_id(client_id).check_client_secret(old)  # a GET changed nothing

    # Not one of the offered periods, or no CSRF token: 400, nothing rotates.
    assert client.post(path, data={"csrf_token": token, "grace_seconds": "5"}).status_code == 400
    assert client.post(path, data={"grace_seconds": "3600"}).status_code == 400
    assert gets_token(client, client_id, old)

    done = client.post(path, data={"csrf_token": token, "grace_seconds": "86400"})
    assert done.status_code == 200
    page = done.get_data(as_text=True)
    new = re.search(r'id="client-secret" class="secret">([^<]+)<', page).group(1)
    assert "The old secret keeps working until" in page
    assert gets_token(client, client_id, old) and gets_token(client, client_id, new)
    with app.app_context():
        [event] = AuditEvent.select().where(AuditEvent.event_type == "client.secret_rotated")
        assert event.user_id == admin.id and event.details["grace_seconds"] == 86400
        expires = clients.client_info(clients.get_client(client_id))["previous_secret_expires_at"]
    edit = client.get(f"/admin/clients/{client_id}").get_data(as_text=True)
    assert 'id="previous-secret"' in edit and expires in edit

    # The default on the page: the old secret stops at once.
    again = client.post(path, data={"csrf_token": token})
    newest = re.search(r'id="client-secret" class="secret">([^<]+)<', again.get_data(as_text=True))
    assert "The old secret has stopped working." in again.get_data(as_text=True)
    assert not gets_token(client, client_id, old) and not gets_token(client, client_id, new)
    assert gets_token(client, client_id, newest.group(1))


def test_a_public_client_has_no_rotate_page(app, admin, client):
    with app.app_context():
        public, _ = clients.create_client("SPA", ["https://spa.example/cb"], public=True)
    response = client.get(f"/admin/clients/{public.client_id}/rotate-secret")
    assert response.status_code == 302
    assert "no secret" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_revoke_a_key_after_its_confirm_page(app, admin, client):
    with app.app_context():
        standby = keys.add_key("RS256").kid
        current = keys.signing_key("RS256").kid
    listing = client.get("/admin/keys").get_data(as_text=True)
    path = f"/admin/keys/{standby}/revoke"
    assert f'href="{path}"' in listing
    html, token = confirm_page(client, path)
    assert standby in html
    with app.app_context():
        assert SigningKey.get_by_id(standby).state == "standby"
    assert client.post(path).status_code == 400  # no CSRF
    assert client.post(path, data={"csrf_token": token}).status_code == 302
    with app.app_context():
        assert SigningKey.get_by_id(standby).state == "revoked"
    # No confirm page for what cannot be revoked: the current key, a revoked one, no key.
    for kid in (current, standby):
        response = client.get(f"/admin/keys/{kid}/revoke")
        assert response.status_code == 302
        assert "cannot be revoked now" in client.get("/admin/keys").get_data(as_text=True)
    assert client.get("/admin/keys/nope/revoke").status_code == 404
    with app.app_context():
        assert SigningKey.get_by_id(current).state == "current"


def test_revoke_a_client_grant_after_its_confirm_page(app, admin, client):
    client_id, secret = setup_m2m(app)
    with app.app_context():
        api = client_grants.list_grants()[0].api
    path = f"/admin/apis/{api.id}/grants/{client_id}/revoke"
    assert f'href="{path}"' in client.get(f"/admin/apis/{api.id}").get_data(as_text=True)
    _, token = confirm_page(client, path)
    assert gets_token(client, client_id, secret)  # the GET changed nothing
    assert client.post(path, data={"csrf_token": token}).status_code == 302
    assert client.get(path).status_code == 404  # no grant left to confirm
    with app.app_context():
        assert client_grants.list_grants() == []


def test_the_keys_page_warns_before_rotating_without_an_announced_standby_key(app, admin, client):
    page = client.get("/admin/keys").get_data(as_text=True)
    max_age = client.get("/.well-known/jwks.json").headers["Cache-Control"]
    assert max_age == f"public, max-age={keys.JWKS_MAX_AGE}"
    assert 'id="rotation-risk"' in page
    assert f"Cache-Control max-age={keys.JWKS_MAX_AGE}" in page
    token = csrf_token_from(page)

    done = client.post("/admin/keys/rotate", data={"csrf_token": token, "rotate-alg": "ES256"})
    assert done.status_code == 302
    after = client.get("/admin/keys").get_data(as_text=True)
    assert "Warning: no standby ES256 key has been published for" in after

    # Standby keys of every alg, published longer than the JWKS may be cached: no warning.
    with app.app_context():
        for alg in ("ES256", "RS256"):
            keys.add_key(alg)
        long_ago = utcnow() - dt.timedelta(seconds=keys.JWKS_MAX_AGE + 1)
        SigningKey.update(created_at=long_ago).where(SigningKey.state == "standby").execute()
    page = client.get("/admin/keys").get_data(as_text=True)
    assert 'id="rotation-risk"' not in page
    client.post("/admin/keys/rotate", data={"csrf_token": token, "rotate-alg": "RS256"})
    assert "Warning:" not in client.get("/admin/keys").get_data(as_text=True)
