"""Every account change is audited by its service, whoever asks: the settings page, the CLI."""

from oauth.storage.models import AuditEvent, User
from tests.conftest import AuthActions, csrf_token_from


def _events(app, event_type):
    with app.app_context():
        return list(AuditEvent.select().where(AuditEvent.event_type == event_type))


def test_cli_user_create_set_password_and_delete_are_audited(app):
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=["users", "create", "cli@example.com", "--password", "password123"]
    )
    assert created.exit_code == 0, created.output
    with app.app_context():
        user_id = User.get(User.email == "cli@example.com").id
    (event,) = _events(app, "user.created")
    assert event.user_id == user_id and event.details["via"] == "cli"
    changed = runner.invoke(
        args=["users", "set-password", "cli@example.com", "--password", "another-pass-456"]
    )
    assert changed.exit_code == 0, changed.output
    (event,) = _events(app, "password.changed")
    assert event.user_id == user_id and event.details == {"via": "cli"}
    assert runner.invoke(args=["users", "delete", "cli@example.com", "--yes"]).exit_code == 0
    (event,) = _events(app, "user.deleted")
    # the person is forgotten (issue 10): a pseudonym shared by their events, no email
    assert event.user_id.startswith("deleted-") and event.details == {"via": "cli", "actor": None}
    assert {row.user_id for row in _events(app, "user.created")} == {event.user_id}
    for row in _events(app, "user.created") + _events(app, "password.changed"):
        assert "password123" not in str(row.details) and "another-pass-456" not in str(row.details)


def test_password_change_on_the_settings_page_is_audited(app, client):
    auth = AuthActions(client, app)
    auth.create_user("me@example.com", "correct horse")
    auth.login("me@example.com", "correct horse")
    token = csrf_token_from(client.get("/settings/security").get_data(as_text=True))
    response = client.post(
        "/settings/password",
        data={
            "csrf_token": token,
            "current_password": "correct horse",
            "new_password": "battery staple 99",
            "new_password_confirm": "battery staple 99",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    (event,) = _events(app, "password.changed")
    assert event.details == {"via": "settings"}


def test_profile_changes_are_audited_with_the_fields_changed(app, client):
    auth = AuthActions(client, app)
    auth.create_user("me@example.com", "correct horse")
    auth.login("me@example.com", "correct horse")
    token = csrf_token_from(client.get("/settings/profile").get_data(as_text=True))
    form = {"csrf_token": token, "name": "Me Myself", "phone": "", "picture": ""}
    assert client.post("/settings/profile", data=form).status_code == 302
    assert client.post("/settings/profile", data=form).status_code == 302  # nothing changed
    (event,) = _events(app, "profile.updated")
    assert event.details == {"fields": ["name"]}
    with app.app_context():
        assert User.get(User.email == "me@example.com").name == "Me Myself"


def test_a_password_typed_into_the_email_field_is_not_audited(app, client):
    auth = AuthActions(client, app)
    auth.create_user("me@example.com", "correct horse")
    auth.login("correct horse battery", "whatever")  # the password typed as the email
    auth.login("nobody@example.com", "whatever")
    typed = [event.details["email"] for event in _events(app, "login.failed")]
    assert typed == ["(not an email address)", "nobody@example.com"]


def test_only_an_https_picture_is_accepted_and_released(app, client):
    from oauth.tokens.claims import scope_claims

    auth = AuthActions(client, app)
    auth.create_user("me@example.com", "correct horse")
    auth.login("me@example.com", "correct horse")
    token = csrf_token_from(client.get("/settings/profile").get_data(as_text=True))
    form = {"csrf_token": token, "name": "", "phone": "", "picture": "javascript:alert(1)"}
    assert client.post("/settings/profile", data=form).status_code == 400  # shown again
    with app.app_context():
        user = User.get(User.email == "me@example.com")
        assert user.picture == ""
        user.user_metadata = {"avatar_url": "javascript:alert(1)"}  # e.g. set by a plugin
        assert scope_claims(user, ["profile"])["picture"] == ""
        user.user_metadata = {"avatar_url": "https://img.example/me.png"}
        assert scope_claims(user, ["profile"])["picture"] == "https://img.example/me.png"


def test_control_characters_in_account_fields_are_refused_not_a_500(app, client):
    """PostgreSQL refuses NUL in text: it must be a form error, never a 500 (issue 9)."""
    auth = AuthActions(client, app)
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))
    signup = {"csrf_token": token, "email": "nul\x00@example.com", "password": "correct horse"}
    response = client.post("/signup", data=signup)
    assert response.status_code < 500 and "not a valid email" in response.get_data(as_text=True)
    auth.create_user("me@example.com", "correct horse")
    auth.login("me@example.com", "correct horse")
    token = csrf_token_from(client.get("/settings/profile").get_data(as_text=True))
    for field in ("name", "phone"):
        form = {"csrf_token": token, "name": "", "phone": "", "picture": "", field: "a\x00b"}
        response = client.post("/settings/profile", data=form)
        assert response.status_code == 400
        assert "control characters" in response.get_data(as_text=True)
    with app.app_context():
        assert User.select().count() == 1
        assert User.get().name == ""


def test_admin_metadata_refuses_nan_and_infinity(app):
    from oauth.accounts import admin as user_admin

    with app.app_context():
        for text in ('{"x": NaN}', '{"x": Infinity}', '{"x": 1e999}'):
            try:
                user_admin.parse_metadata(text, "user_metadata")
            except user_admin.UserAdminError as error:
                assert "NaN and infinite" in str(error)
            else:
                raise AssertionError(f"{text} was accepted")
        assert user_admin.parse_metadata('{"x": 1.5}', "user_metadata") == {"x": 1.5}
