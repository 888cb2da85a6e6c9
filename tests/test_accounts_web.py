"""Sign-in, sign-up, sign-out, the profile page, CSRF and safe redirects."""

import re

import pytest

from oauth.storage.models import User
from tests.conftest import csrf_token_from


def signed_in(client) -> bool:
    return client.get("/settings/profile").status_code == 200


def test_login_form_has_the_contract_fields(client):
    html = client.get("/login").get_data(as_text=True)
    assert 'name="email"' in html and 'name="password"' in html and 'name="csrf_token"' in html


def test_login_success_redirects_to_next(auth, client):
    auth.create_user()
    response = auth.login(next="/settings/profile?tab=1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/settings/profile?tab=1"
    assert signed_in(client)


def test_login_updates_last_sign_in(auth, app):
    user = auth.create_user()
    auth.login()
    with app.app_context():
        assert User.get_by_id(user.id).last_sign_in_at is not None


@pytest.mark.parametrize(
    "evil",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "\t//evil.example",
    ],
)
def test_login_never_redirects_off_site(auth, evil):
    auth.create_user()
    response = auth.login(next=evil)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_failed_login_signs_nobody_in(auth, client):
    auth.create_user()
    response = auth.login(password="wrong password")
    assert response.status_code == 200
    assert "Invalid email or password" in response.get_data(as_text=True)
    assert not signed_in(client)


def test_unknown_email_gets_the_same_answer(auth, client):
    response = auth.login(email="ghost@example.com")
    assert response.status_code == 200
    assert "Invalid email or password" in response.get_data(as_text=True)


def test_login_without_csrf_is_refused(auth, client):
    auth.create_user()
    response = client.post(
        "/login", data={"email": "alice@example.com", "password": "correct horse"}
    )
    assert response.status_code == 400
    assert not signed_in(client)


def test_signup_creates_user_and_signs_in(client, app):
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))
    response = client.post(
        "/signup",
        data={
            "email": "New@Example.com",
            "password": "long enough",
            "password_confirm": "long enough",
            "name": "Newbie",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert signed_in(client)
    with app.app_context():
        user = User.get(User.email == "new@example.com")
        assert user.name == "Newbie" and user.password_hash.startswith("$argon2id$")


def test_signup_rejects_duplicates_short_passwords_and_mismatch(auth, client, app):
    auth.create_user()
    for data, message in [
        ({"email": "ALICE@example.com", "password": "long enough"}, "already exists"),
        ({"email": "bob@example.com", "password": "short"}, "at least 8"),
        (
            {
                "email": "bob@example.com",
                "password": "long enough",
                "password_confirm": "different!",
            },
            "do not match",
        ),
        ({"email": "not-an-email", "password": "long enough"}, "not a valid email"),
    ]:
        data["csrf_token"] = auth.csrf("/signup")
        response = client.post("/signup", data=data)
        assert response.status_code in (200, 400)
        assert message in response.get_data(as_text=True)
    with app.app_context():
        assert User.select().count() == 1
    assert not signed_in(client)


def test_signup_can_be_disabled(make_app):
    client = make_app(ALLOW_SIGNUP=False).test_client()
    assert client.get("/signup").status_code == 404
    assert client.post(
        "/signup", data={"email": "x@example.com", "password": "long enough"}
    ).status_code in (400, 404)


def test_logout_needs_post_and_csrf(auth, client):
    auth.create_user()
    auth.login()
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert signed_in(client)
    response = auth.logout()
    assert response.status_code == 302
    assert not signed_in(client)


def test_profile_requires_login_and_keeps_next(client):
    response = client.get("/settings/profile")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_profile_update(auth, client, app):
    user = auth.create_user()
    auth.login()
    token = auth.csrf("/settings/profile")
    response = client.post(
        "/settings/profile",
        data={"name": "Alice A.", "phone": "+15551234", "picture": "", "csrf_token": token},
    )
    assert response.status_code == 302
    with app.app_context():
        again = User.get_by_id(user.id)
        assert (again.name, again.phone) == ("Alice A.", "+15551234")


def test_password_change_signs_out_other_sessions(auth, client, app):
    auth.create_user()
    auth.login()
    other = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(other, app).login()
    assert signed_in(other)
    token = auth.csrf("/settings/profile")
    bad = client.post(
        "/settings/password",
        data={
            "current_password": "nope",
            "new_password": "brand new pass",
            "new_password_confirm": "brand new pass",
            "csrf_token": token,
        },
    )
    assert bad.status_code == 400 and "incorrect" in bad.get_data(as_text=True)
    response = client.post(
        "/settings/password",
        data={
            "current_password": "correct horse",
            "new_password": "brand new pass",
            "new_password_confirm": "brand new pass",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert signed_in(client)
    assert not signed_in(other)
    assert auth.login(password="correct horse").status_code == 200  # old password gone
    assert auth.login(password="brand new pass").status_code == 302


def test_disabled_user_is_signed_out(auth, client, app):
    user = auth.create_user()
    auth.login()
    with app.app_context():
        User.update(disabled=True).where(User.id == user.id).execute()
    assert not signed_in(client)


def test_failed_logins_are_rate_limited_per_account(make_app):
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    from tests.conftest import AuthActions

    auth = AuthActions(client, app)
    auth.create_user()
    codes = [auth.login(password="wrong").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # the right password is refused too while the limit holds
    assert auth.login().status_code == 429


def test_rate_limits_can_be_switched_off(make_app):
    app = make_app(LOGIN_RATE_LIMIT="1 per minute", RATELIMIT_ENABLED=False)
    client = app.test_client()
    from tests.conftest import AuthActions

    auth = AuthActions(client, app)
    auth.create_user()
    assert [auth.login(password="wrong").status_code for _ in range(3)] == [200, 200, 200]


def test_pages_render_one_base_layout_with_flashes(auth, client):
    auth.create_user()
    auth.login(password="bad")
    html = client.get("/login").get_data(as_text=True)
    assert 'name="viewport"' in html and "style.css" in html
    assert re.search(r'<div class="flashes"', auth.login(password="bad").get_data(as_text=True))


def test_pages_allow_only_our_own_resources_and_are_never_cached(client):
    """Issue 9 (smaller ones): default-src 'self' and no-store on the HTML pages."""
    for path in ("/login", "/signup"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src" not in policy and "'unsafe-inline'" not in policy
        assert response.headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/.well-known/jwks.json").headers.get("Cache-Control", "")


def test_an_https_issuer_sends_hsts_and_secure_cookies(make_app):
    http = make_app(ISSUER="https://auth.example.com").test_client()
    response = http.get("/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Secure" in response.headers["Set-Cookie"]
    plain = make_app().test_client().get("/login")
    assert "Strict-Transport-Security" not in plain.headers
