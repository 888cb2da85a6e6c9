"""Passkeys on both databases: registration, sign-in without a password, and the refusals
(wrong origin, a replayed challenge, an unknown passkey, a counter going backwards), with
real P-256 signatures from a software authenticator."""

from __future__ import annotations

import pytest

from oauth.accounts import deletion, passkeys
from oauth.storage.models import AuditEvent, BrowserSession
from tests.conftest import csrf_token_from
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client
from tests.passkey_helpers import SoftAuthenticator

PASSWORD = "correct horse"
ORIGIN = "http://localhost"


@pytest.fixture
def app(make_app):
    return make_app(ISSUER=ORIGIN)


def csrf(client, path: str) -> str:
    return csrf_token_from(client.get(path).get_data(as_text=True))


def post_json(client, path: str, body: dict, token: str):
    return client.post(path, json=body, headers={"X-CSRFToken": token})


def register(client, authenticator, *, name="Laptop", password=PASSWORD, origin=None):
    token = csrf(client, "/settings/security")
    options = post_json(
        client, "/settings/security/passkeys/options", {"name": name, "password": password}, token
    )
    if options.status_code != 200:
        return options
    answer = authenticator.create(options.get_json(), origin=origin)
    return post_json(client, "/settings/security/passkeys", {"credential": answer}, token)


def passkey_sign_in(client, authenticator, *, origin=None, next_path=None):
    token = csrf(client, "/login")
    options = post_json(client, "/login/passkey/options", {}, token)
    assert options.status_code == 200, options.get_data(as_text=True)
    assert options.get_json()["userVerification"] == "required"
    assert options.get_json().get("allowCredentials", []) == []  # discoverable
    answer = authenticator.get(options.get_json(), origin=origin)
    body = {"credential": answer, **({"next": next_path} if next_path else {})}
    return post_json(client, "/login/passkey", body, token)


@pytest.fixture
def alice(auth):
    auth.create_user(password=PASSWORD, name="Alice")
    auth.login(password=PASSWORD)
    return auth


@pytest.fixture
def registered(app, client, alice):
    authenticator = SoftAuthenticator("localhost", ORIGIN)
    answer = register(client, authenticator)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"redirect": "/settings/security"}
    alice.logout()
    return authenticator


def test_registering_a_passkey_needs_the_password_and_is_listed_and_audited(app, client, alice):
    authenticator = SoftAuthenticator("localhost", ORIGIN)
    refused = register(client, authenticator, password="wrong password")
    assert refused.status_code == 400 and "incorrect" in refused.get_json()["error"]
    assert register(client, authenticator, name="  ").status_code == 400

    options = post_json(
        client,
        "/settings/security/passkeys/options",
        {"name": "Work laptop", "password": PASSWORD},
        csrf(client, "/settings/security"),
    ).get_json()
    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    answer = authenticator.create(options)
    finished = post_json(
        client,
        "/settings/security/passkeys",
        {"credential": answer},
        csrf(client, "/settings/security"),
    )
    assert finished.status_code == 200
    page = client.get("/settings/security").get_data(as_text=True)
    assert "Work laptop" in page and "Remove passkey Work laptop" in page
    with app.app_context():
        [row] = passkeys.WebAuthnCredential.select()
        assert row.name == "Work laptop" and row.transports == ["internal"]
        assert row.sign_count == 1
        assert AuditEvent.get(AuditEvent.event_type == "passkey.added").details["name"] == (
            "Work laptop"
        )
    # The same passkey again: the next ceremony excludes it, and the server refuses a copy.
    again = register(client, authenticator, name="Copy")
    assert again.status_code == 400 and "already registered" in again.get_json()["error"]


def test_registration_refuses_another_origin_and_a_replayed_answer(app, client, alice):
    authenticator = SoftAuthenticator("localhost", ORIGIN)
    wrong = register(client, authenticator, origin="https://evil.example")
    assert wrong.status_code == 400 and "could not be verified" in wrong.get_json()["error"]
    token = csrf(client, "/settings/security")
    options = post_json(
        client, "/settings/security/passkeys/options", {"name": "A", "password": PASSWORD}, token
    ).get_json()
    answer = authenticator.create(options)
    cookie = client.get_cookie("session").value
    assert (
        post_json(client, "/settings/security/passkeys", {"credential": answer}, token).status_code
        == 200
    )
    client.set_cookie("session", cookie)  # the browser's state before the answer, replayed
    replay = post_json(client, "/settings/security/passkeys", {"credential": answer}, token)
    assert replay.status_code == 400 and "already answered" in replay.get_json()["error"]
    with app.app_context():
        assert passkeys.WebAuthnCredential.select().count() == 1


def test_sign_in_without_a_password(app, client, registered):
    answer = passkey_sign_in(client, registered, next_path="/settings/apps")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"redirect": "/settings/apps"}
    assert client.get("/settings/security").status_code == 200
    with app.app_context():
        [session] = BrowserSession.select()
        assert session.amr == ["webauthn"]
        [row] = passkeys.WebAuthnCredential.select()
        assert row.sign_count == 2 and row.last_used_at is not None
        events = AuditEvent.select().where(AuditEvent.event_type == "login.succeeded")
        assert [e.details["method"] for e in events.order_by(AuditEvent.id)] == ["pwd", "webauthn"]


def test_passkey_sign_in_tokens_say_webauthn(app, client, registered):
    assert passkey_sign_in(client, registered).status_code == 200
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    tokens = flow.tokens(scope="openid email")
    _, claims = decode_jwt_unverified(tokens["access_token"])
    assert [entry["method"] for entry in claims["amr"]] == ["webauthn"]


def test_refusals_wrong_origin_unknown_passkey_replay_and_counter(app, client, registered):
    wrong_origin = passkey_sign_in(client, registered, origin="https://evil.example")
    assert wrong_origin.status_code == 400
    unknown = passkey_sign_in(client, SoftAuthenticator("localhost", ORIGIN))
    assert unknown.status_code == 400 and "not registered" in unknown.get_json()["error"]

    token = csrf(client, "/login")
    options = post_json(client, "/login/passkey/options", {}, token).get_json()
    answer = registered.get(options)
    cookie = client.get_cookie("session").value
    assert post_json(client, "/login/passkey", {"credential": answer}, token).status_code == 200
    alice_out = client.post("/logout", data={"csrf_token": csrf(client, "/settings/profile")})
    assert alice_out.status_code == 302
    client.set_cookie("session", cookie)
    replay = post_json(client, "/login/passkey", {"credential": answer}, token)
    assert replay.status_code == 400 and "already answered" in replay.get_json()["error"]
    assert client.get("/settings/security").status_code == 302  # nobody signed in

    registered.counter -= 2  # a cloned authenticator, behind the stored counter
    regressed = passkey_sign_in(client, registered)
    assert regressed.status_code == 400 and "backwards" in regressed.get_json()["error"]
    with app.app_context():
        assert passkeys.WebAuthnCredential.get().sign_count == 3
        failures = AuditEvent.select().where(AuditEvent.event_type == "login.failed")
        assert {e.details["method"] for e in failures} == {"webauthn"}
        assert failures.count() == 4


def test_passwordless_needs_user_verification(app, client, registered):
    registered.uv = False
    answer = passkey_sign_in(client, registered)
    assert answer.status_code == 400
    assert client.get("/settings/security").status_code == 302


def test_a_bad_answer_is_a_clear_error(app, client, registered):
    token = csrf(client, "/login")
    assert post_json(client, "/login/passkey", {"credential": {}}, token).status_code == 400
    post_json(client, "/login/passkey/options", {}, token)
    garbage = {"id": "x", "rawId": "!!", "type": "public-key", "response": {}}
    answer = post_json(client, "/login/passkey", {"credential": garbage}, token)
    assert answer.status_code == 400 and answer.get_json()["error"]
    assert client.post("/login/passkey", json={}).status_code == 400  # no CSRF token


def test_removing_a_passkey_needs_the_password(app, client, alice):
    assert register(client, SoftAuthenticator("localhost", ORIGIN)).status_code == 200
    with app.app_context():
        row = passkeys.WebAuthnCredential.get()
    token = csrf(client, "/settings/security")
    path = f"/settings/security/passkeys/{row.id}/remove"
    client.post(path, data={"csrf_token": token, "current_password": "nope"})
    with app.app_context():
        assert passkeys.WebAuthnCredential.select().count() == 1
    assert client.post(path, data={"current_password": PASSWORD}).status_code == 400  # CSRF
    done = client.post(path, data={"csrf_token": token, "current_password": PASSWORD})
    assert done.status_code == 302
    with app.app_context():
        assert passkeys.WebAuthnCredential.select().count() == 0
        assert AuditEvent.select().where(AuditEvent.event_type == "passkey.removed").count() == 1
    again = client.post(path, data={"csrf_token": token, "current_password": PASSWORD})
    assert again.status_code == 404


def test_remove_all_is_the_admin_reset(app, client, registered):
    with app.app_context():
        user = passkeys.WebAuthnCredential.get().user
        assert passkeys.remove_all(user, actor_id="admin-1") == 1
        assert not passkeys.has_passkeys(user)
        event = AuditEvent.get(AuditEvent.event_type == "passkeys.removed")
        assert event.details == {"count": 1, "actor": "admin-1"}
    assert passkey_sign_in(client, registered).status_code == 400


def test_anonymous_passkey_attempts_are_limited_per_ip(make_app):
    app = make_app(ISSUER=ORIGIN, PASSKEY_RATE_LIMIT="2 per minute")
    client = app.test_client()
    token = csrf(client, "/login")
    statuses = [
        post_json(client, "/login/passkey", {"credential": {}}, token).status_code for _ in range(3)
    ]
    assert statuses == [400, 400, 429]


def test_passwordless_needs_the_owners_user_handle(app, client, registered):
    registered.user_handle = b"00000000-0000-0000-0000-000000000000"
    answer = passkey_sign_in(client, registered)
    assert answer.status_code == 400 and "not registered" in answer.get_json()["error"]
    assert client.get("/settings/security").status_code == 302


def test_a_disabled_user_cannot_sign_in_with_a_passkey(app, client, registered):
    with app.app_context():
        user = passkeys.WebAuthnCredential.get().user
        user.disabled = True
        user.save()
    answer = passkey_sign_in(client, registered)
    assert answer.status_code == 400
    assert client.get("/settings/security").status_code == 302


def test_deleting_the_account_deletes_its_passkeys(app, client, registered):
    with app.app_context():
        deletion.delete_account(passkeys.WebAuthnCredential.get().user, via="cli")
        assert passkeys.WebAuthnCredential.select().count() == 0
    assert passkey_sign_in(client, registered).status_code == 400


def test_an_unconfirmed_address_cannot_sign_in_with_a_passkey_when_required(
    app, client, registered
):
    app.config["EMAIL_VERIFICATION"] = "required"
    with app.app_context():
        user = passkeys.WebAuthnCredential.get().user
        user.email_verified = False
        user.save()
    answer = passkey_sign_in(client, registered)
    assert answer.status_code == 400 and "Confirm your email" in answer.get_json()["error"]
    with app.app_context():
        user.email_verified = True
        user.save()
    assert passkey_sign_in(client, registered).status_code == 200
