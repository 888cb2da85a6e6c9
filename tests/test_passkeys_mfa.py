"""A passkey as the second factor at /login/mfa (both databases): after the password, the
passkey finishes the sign-in with amr pwd+webauthn and aal2; refusals count under the login
limits; the admin reset removes passkeys with the other factors."""

from __future__ import annotations

import pytest

from oauth.accounts import mfa, passkeys
from oauth.storage.models import AuditEvent, BrowserSession, User
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client
from tests.passkey_helpers import SoftAuthenticator
from tests.test_passkeys import ORIGIN, PASSWORD, csrf, post_json, register


@pytest.fixture
def app(make_app):
    return make_app(ISSUER=ORIGIN, LOGIN_RATE_LIMIT="3 per minute")


@pytest.fixture
def alice_key(app, client, auth):
    auth.create_user(password=PASSWORD, name="Alice")
    auth.login(password=PASSWORD)
    authenticator = SoftAuthenticator("localhost", ORIGIN)
    assert register(client, authenticator).status_code == 200
    auth.logout()
    return authenticator


def password_step(auth, next_path=None):
    answer = auth.login(password=PASSWORD, next=next_path)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login/mfa")
    return answer


def passkey_step(client, authenticator, *, next_path=None):
    token = csrf(client, "/login/mfa")
    options = post_json(client, "/login/mfa/passkey/options", {}, token)
    assert options.status_code == 200, options.get_data(as_text=True)
    answer = authenticator.get(options.get_json())
    body = {"credential": answer, **({"next": next_path} if next_path else {})}
    return post_json(client, "/login/mfa/passkey", body, token), options.get_json()


def test_password_then_passkey_is_aal2(app, client, auth, alice_key):
    password_step(auth, next_path="/settings/apps")
    assert client.get("/settings/security").status_code == 302  # not signed in yet
    page = client.get("/login/mfa").get_data(as_text=True)
    assert "Use a passkey" in page and 'id="passkey-mfa"' in page
    answer, options = passkey_step(client, alice_key, next_path="/settings/apps")
    assert answer.status_code == 200 and answer.get_json() == {"redirect": "/settings/apps"}
    with app.app_context():
        [credential] = passkeys.WebAuthnCredential.select()
        assert [c["id"] for c in options["allowCredentials"]] == [credential.credential_id]
        [session] = BrowserSession.select()
        assert session.amr == ["pwd", "webauthn"]
        assert AuditEvent.get(AuditEvent.event_type == "mfa.verified").details == {
            "method": "webauthn"
        }
    client_id, secret = make_client(app)
    tokens = Flow(app, client, client_id=client_id, secret=secret).tokens(scope="openid email")
    _, access = decode_jwt_unverified(tokens["access_token"])
    _, id_token = decode_jwt_unverified(tokens["id_token"])
    assert access["aal"] == "aal2" and id_token["acr"] == "aal2"
    assert [entry["method"] for entry in access["amr"]] == ["pwd", "webauthn"]


def test_passwordless_sign_in_is_aal2(app, client, alice_key):
    token = csrf(client, "/login")
    options = post_json(client, "/login/passkey/options", {}, token).get_json()
    answer = post_json(client, "/login/passkey", {"credential": alice_key.get(options)}, token)
    assert answer.status_code == 200
    client_id, secret = make_client(app)
    tokens = Flow(app, client, client_id=client_id, secret=secret).tokens(scope="openid email")
    _, access = decode_jwt_unverified(tokens["access_token"])
    assert access["aal"] == "aal2" and [e["method"] for e in access["amr"]] == ["webauthn"]


def test_the_second_step_needs_the_first(app, client, alice_key):
    token = csrf(client, "/login")
    refused = post_json(client, "/login/mfa/passkey/options", {}, token)
    assert refused.status_code == 400
    assert post_json(client, "/login/mfa/passkey", {"credential": {}}, token).status_code == 400


def test_another_users_passkey_is_refused_and_failures_are_limited(app, client, auth, alice_key):
    auth.create_user(email="bob@example.com", password=PASSWORD)
    auth.login(email="bob@example.com", password=PASSWORD)
    bobs = SoftAuthenticator("localhost", ORIGIN)
    assert register(client, bobs).status_code == 200
    auth.logout()

    password_step(auth)
    answer, _ = passkey_step(client, bobs)  # Bob's passkey for Alice's second step
    assert answer.status_code == 400 and "not registered" in answer.get_json()["error"]
    for _ in range(2):
        alice_key.counter = 0  # a clone, behind the counter the server saw
        answer, _ = passkey_step(client, alice_key)
        assert answer.status_code == 400 and "backwards" in answer.get_json()["error"]
    alice_key.counter = 0
    throttled, _ = passkey_step(client, alice_key)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
    with app.app_context():
        assert AuditEvent.select().where(AuditEvent.event_type == "mfa.failed").count() == 3
        assert BrowserSession.select().count() == 0


def test_the_admin_reset_removes_passkeys(app, client, alice_key):
    with app.app_context():
        user = User.get(User.email == "alice@example.com")
        assert mfa.factors(user) == ["webauthn"]
        assert mfa.factors_by_user([user.id]) == {user.id: ["webauthn"]}
        assert mfa.reset(user, actor_id=None, via="cli") == ["webauthn"]
        assert not passkeys.has_passkeys(user) and not mfa.has_second_factor(user)


def test_sent_to_enrol_a_passkey_then_stepping_up_with_it(app, client, auth):
    auth.create_user(password=PASSWORD)
    auth.login(password=PASSWORD)
    token = csrf(client, "/settings/security?next=/settings/apps")
    options = post_json(
        client, "/settings/security/passkeys/options", {"name": "A", "password": PASSWORD}, token
    ).get_json()
    authenticator = SoftAuthenticator("localhost", ORIGIN)
    body = {"credential": authenticator.create(options), "next": "/settings/apps"}
    finished = post_json(client, "/settings/security/passkeys", body, token)
    assert finished.get_json() == {"redirect": "/login/mfa?next=/settings/apps"}
    answer, _ = passkey_step(client, authenticator, next_path="/settings/apps")  # signed in
    assert answer.get_json() == {"redirect": "/settings/apps"}
    with app.app_context():
        assert BrowserSession.get().amr == ["pwd", "webauthn"]
