"""A mailed link is one factor: with EMAIL_VERIFICATION=required, confirming a change of
address in a browser that is not signed in signs in only accounts without a second factor."""

from __future__ import annotations

import pytest

from oauth.storage.models import User
from tests.conftest import AuthActions, csrf_token_from
from tests.mail_helpers import link_in, token_of
from tests.mfa_helpers import code_at, enrol, second_step

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_a_confirmed_address_change_does_not_skip_the_second_factor(make_app, smtp):
    server = smtp()
    app = make_app(MAIL_URL=server.url, EMAIL_VERIFICATION="required")
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create_user("old@example.com", email_verified=True)
    auth.login("old@example.com")
    secret, _ = enrol(client)
    csrf = csrf_token_from(client.get("/settings/profile").get_data(as_text=True))
    changed = client.post(
        "/settings/email",
        data={"new_email": "new@example.com", "current_password": "correct horse",
              "csrf_token": csrf},
    )  # fmt: skip
    assert changed.status_code == 302
    (message,) = server.inbox.wait_for(1)
    link = link_in(message, "/verify-email")
    other = app.test_client()  # the link opened on another device, nobody signed in there
    page = other.get("/" + link.split("://", 1)[1].split("/", 1)[1])
    done = other.post(
        "/verify-email",
        data={"token": token_of(link), "csrf_token": csrf_token_from(page.get_data(as_text=True))},
    )
    assert done.status_code == 302 and done.headers["Location"].startswith("/login")
    with app.app_context():
        assert User.get(User.email == "new@example.com").email_verified
    assert other.get("/settings/profile").status_code == 302  # not signed in by the link
    AuthActions(other, app).login("new@example.com")
    assert other.get("/settings/profile").status_code == 302  # the second step is still due
    assert second_step(other, code_at(secret)).status_code == 302
    assert other.get("/settings/profile").status_code == 200
