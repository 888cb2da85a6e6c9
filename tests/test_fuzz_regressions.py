"""The 5xx the fuzz tests (tests/test_fuzz_*.py) found, one focused test each (issue 9 item 9)."""

from __future__ import annotations

import itertools
import json

import pytest

from oauth.storage.models import User
from tests.fuzz_support import FUZZ_CONFIG, basic
from tests.fuzz_world import World

JSON_BODIES = [[1, 2], 5, "text", None, {}, {"email": {"a": 1}, "password": 5}, {"email": [[]]}]


@pytest.fixture
def world(make_app):
    return World(make_app(**FUZZ_CONFIG))


@pytest.mark.parametrize("body", JSON_BODIES)
def test_a_json_body_posted_to_an_html_form_is_a_400_page(world, body):
    """Flask-WTF took a JSON body as the form: a list, a number or an object was a 500. With
    the CSRF header the request reaches the form, which now ignores JSON and fails."""
    forms = [
        ("anon", "/login"),
        ("anon", "/signup"),
        ("user", "/settings/profile"),
        ("user", "/settings/password"),
        ("user", "/oauth/consent?authorization_id=" + world.pending_authorizations(1)[0]),
        ("admin", f"/admin/users/{world.user_id}"),
        ("admin", "/admin/clients/new"),
        ("admin", "/admin/apis"),
    ]
    for browser, path in forms:
        response = world.browsers[browser].post(
            path,
            data=json.dumps(body),
            content_type="application/json",
            headers={"X-CSRFToken": world.csrf[browser]},
        )
        assert response.status_code == 400, (path, response.status_code)
        assert response.mimetype == "text/html"
    with world.app.app_context():
        assert User.get_by_id(world.user_id).name == "Alice"  # {} was no empty profile form
    # The same form, submitted as a form, still works (the CSRF token is the one used above).
    response = world.browsers["user"].post(
        "/settings/profile", data={"csrf_token": world.csrf["user"], "name": "Alice B"}
    )
    assert response.status_code == 302
    with world.app.app_context():
        assert User.get_by_id(world.user_id).name == "Alice B"


def test_json_nested_past_the_parser_depth_is_invalid_client_metadata(world):
    """A registration document nested 100,000 deep was a RecursionError (500)."""
    deep = "[" * 100_000 + "]" * 100_000
    token = world.dynamic["registration_access_token"]
    for method, path, headers in (
        ("POST", "/oauth/register", {}),
        (
            "PUT",
            "/oauth/register/" + world.dynamic["client_id"],
            {"Authorization": f"Bearer {token}"},
        ),
    ):
        response = world.browsers["anon"].open(
            path, method=method, data=deep, content_type="application/json", headers=headers
        )
        assert response.status_code == 400, response.get_data(as_text=True)[:300]
        assert response.get_json()["error"] == "invalid_client_metadata"


def test_admin_metadata_nested_past_the_parser_depth_is_a_form_error(world):
    """app_metadata, user_metadata and client metadata nested 7,000 deep (14,000 characters,
    under the length limit) were a RecursionError (500)."""
    admin, token = world.browsers["admin"], world.csrf["admin"]
    # 7,000 deep was a RecursionError parsing; 900 deep parsed but failed to encode on save
    for deep, (path, field) in itertools.product(
        ('{"a":' + "[" * 7000 + "]" * 7000 + "}", '{"a":' + "[" * 900 + "]" * 900 + "}"),
        (
            (f"/admin/users/{world.user_id}", "app_metadata"),
            (f"/admin/users/{world.user_id}", "user_metadata"),
            (f"/admin/clients/{world.conf_id}", "metadata"),
        ),
    ):
        form = {
            "csrf_token": token,
            field: deep,
            "name": "Alice",
            "redirect_uris": "https://app.example/callback",
        }
        response = admin.post(path, data=form)
        assert response.status_code == 400, (path, response.status_code)
        assert "nested too deeply" in response.get_data(as_text=True)


@pytest.mark.parametrize("value", ['"', "\\", "é", 'read:orders "x\\"', "\x00"])
def test_quotes_backslashes_and_non_ascii_in_scope_and_audience_are_answered(world, value):
    """Issue 9 item 9 lists these as 500s at the token endpoint; they are RFC errors."""
    for extra in ({"scope": value}, {"audience": value}, {"resource": value}):
        response = world.browsers["anon"].post(
            "/oauth/token",
            data={"grant_type": "client_credentials", **extra},
            headers={"Authorization": basic(world.conf_id.encode(), world.secret.encode())},
        )
        assert response.status_code == 400, (extra, response.get_data(as_text=True))
        assert response.get_json()["error"] in (
            "invalid_scope",
            "invalid_target",
            "invalid_request",
        )


@pytest.mark.parametrize(
    "body",
    [
        {"response_types": [[]]},
        {"response_types": [{"a": 1}, "code"]},
        {"grant_types": [["authorization_code"]]},
        {"grant_types": [{"a": 1}]},
    ],
)
def test_unhashable_registration_values_are_invalid_client_metadata(world, body):
    """``{"response_types": [[]]}`` was a TypeError (500) at /oauth/register."""
    document = {"redirect_uris": ["https://dyn.example/cb"], **body}
    response = world.browsers["anon"].post("/oauth/register", json=document)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_client_metadata"


def test_a_nul_in_the_sign_in_email_is_a_failed_sign_in(world):
    """On PostgreSQL the account lookup with a NUL in the email was a DataError (500)."""
    form = {"email": "alice@example.com\x00", "password": "x", "csrf_token": world.csrf["anon"]}
    response = world.browsers["anon"].post("/login", data=form)
    assert response.status_code == 200
    assert "Invalid email or password." in response.get_data(as_text=True)


def test_every_form_refuses_a_json_body():
    """Every form of ours derives from web.forms.Form, which refuses JSON bodies (a 400 page),
    so a form added later cannot bring back the 500 (or the wiped profile) that JSON caused."""
    import importlib
    import pkgutil

    from flask_wtf import FlaskForm

    import oauth.web
    from oauth.web.forms import Form

    for module in pkgutil.walk_packages(oauth.web.__path__, "oauth.web."):
        importlib.import_module(module.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = [cls for cls in subclasses(FlaskForm) if cls.__module__.startswith("oauth.")]
    assert len(ours) > 10
    assert [cls.__name__ for cls in ours if not issubclass(cls, Form) and cls is not Form] == []
