"""The pages people read (issue 10): sign-up states its password rules up front and shows
every problem at once; a sign-in inside an OAuth flow names the application that asks."""

from __future__ import annotations

import html as html_lib
import re
from urllib.parse import urlencode

from oauth.storage.models import User
from tests.conftest import csrf_token_from
from tests.oauth_helpers import Flow, make_client, query


def field_errors(html: str) -> dict[str, list[str]]:
    """{field id: its error messages} as the form macro renders them."""
    found = {}
    for field_id, items in re.findall(
        r'<ul class="errors" id="([\w-]+)-errors">(.*?)</ul>', html, re.S
    ):
        found[field_id] = [html_lib.unescape(m) for m in re.findall(r"<li>(.*?)</li>", items)]
    return found


def test_sign_up_states_the_password_rules_before_anything_is_typed(client):
    html = client.get("/signup").get_data(as_text=True)
    hint = re.search(r'<p class="hint" id="password-hint">([^<]+)</p>', html)
    assert hint and "At least 8 characters" in hint.group(1)
    assert re.search(r'<input[^>]*aria-describedby="password-hint"[^>]*id="password"', html) or (
        re.search(r'<input[^>]*id="password"[^>]*aria-describedby="password-hint"', html)
    )


def test_sign_up_shows_every_field_error_at_once(client, app):
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))
    response = client.post(
        "/signup",
        data={
            "csrf_token": token,
            "email": "not-an-email",
            "password": "short",
            "password_confirm": "other",
        },
    )
    assert response.status_code == 400
    errors = field_errors(response.get_data(as_text=True))
    assert set(errors) == {"email", "password", "password_confirm"}
    assert "is not a valid email address" in errors["email"][0]
    assert "at least 8" in errors["password"][0]
    assert errors["password_confirm"] == ["Passwords do not match."]
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html and 'aria-describedby="email-errors"' in html
    with app.app_context():
        assert User.select().count() == 0


def test_a_taken_email_is_shown_next_to_the_email_field(auth, client):
    auth.create_user()
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))
    response = client.post(
        "/signup", data={"csrf_token": token, "email": "alice@example.com", "password": "x" * 9}
    )
    assert "already exists" in field_errors(response.get_data(as_text=True))["email"][0]


def test_sign_in_inside_an_oauth_flow_names_the_application(app, client):
    client_id, secret = make_client(app, name="Photo Printer")
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    response = flow.authorize()
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "to continue to Photo Printer" in page
    # the sign-up link carries the request, and that page names the app too
    signup = re.search(r'href="(/signup\?next=[^"]+)"', page).group(1)
    assert "to continue to Photo Printer" in client.get(html_lib.unescape(signup)).get_data(
        as_text=True
    )
    # a plain sign-in, or a next URL that is not an authorization request, names nothing
    assert "to continue to" not in client.get("/login").get_data(as_text=True)
    other = "/login?" + urlencode({"next": "/settings/apps?client_id=" + client_id})
    assert "to continue to" not in client.get(other).get_data(as_text=True)
    unknown = "/login?" + urlencode({"next": "/oauth/authorize?client_id=nobody"})
    assert "to continue to" not in client.get(unknown).get_data(as_text=True)


def test_re_authentication_for_a_stored_request_names_the_application(app, client):
    client_id, secret = make_client(app, name="Photo Printer")
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    response = flow.authorize(prompt="login")
    location = response.headers["Location"]
    assert location.startswith("/login?") and "authorization_id" in query(location)["next"]
    assert "to continue to Photo Printer" in client.get(location).get_data(as_text=True)
    # someone else's request id names nothing
    stranger = app.test_client()
    Flow(app, stranger, client_id=client_id).auth.create_user(email="eve@example.com")
    Flow(app, stranger, client_id=client_id).auth.login(email="eve@example.com")
    assert "to continue to" not in stranger.get(location).get_data(as_text=True)
