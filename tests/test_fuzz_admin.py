"""Issue 9 item 9: hostile requests to every admin page and form, as an admin with a valid CSRF
token (and as a user and an anonymous browser, who must be refused): never a 5xx."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oauth.storage.models import Client
from tests.fuzz_support import (
    FUZZ_CONFIG,
    PROFILE,
    Fuzzed,
    Route,
    check_response,
    json_dumps,
    json_value,
    run,
    text,
)
from tests.fuzz_world import ADMIN_EMAIL, USER_EMAIL, World
from tests.oauth_helpers import REDIRECT, make_client

GRANTS = st.lists(st.sampled_from(["authorization_code", "refresh_token", "client_credentials"]))
METADATA = st.one_of(
    st.integers(900, 2500).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.sampled_from(['{"a": NaN}', '{"a": 1e999}', '{"a": 99999999999999999999999}', "[]"]),
    json_value.map(json_dumps),
)


WHO = ["admin"] * 6 + ["user", "anon"]


@pytest.fixture
def world(make_app):
    return World(make_app(**FUZZ_CONFIG))


def _restore(world: World):
    """After each request: the browsers' accounts as they were, a victim client to edit."""
    victim = make_client(world.app, name="Victim", grant_types=["client_credentials"])[0]
    state = {"victim": victim}

    def reset(request, response):
        world.restore_accounts()
        for name, email in (("admin", ADMIN_EMAIL), ("user", USER_EMAIL)):
            if world.browsers[name].get("/settings/apps").status_code != 200:
                world.sign_in(name, email)
        with world.app.app_context():
            if Client.get_or_none(Client.client_id == state["victim"]) is None:
                state["victim"] = make_client(world.app, name="Victim")[0]

    return victim, reset


def test_fuzz_admin_clients_and_users(world):
    victim, reset = _restore(world)
    clients = st.sampled_from([victim, world.conf_id, world.public_id, world.dynamic["client_id"]])
    users = st.sampled_from([world.user_id, world.admin_id, "1", "2147483648"])
    client_fields = {
        "name": text,
        "redirect_uris": st.sampled_from([REDIRECT, "jar:x", "view-source:x", f"{REDIRECT}\nws:x"]),
        "grant_types": GRANTS,
        "client_uri": st.sampled_from(["https://app.example", "javascript:x"]),
        "logo_uri": st.sampled_from(["https://app.example/l.png", "data:x"]),
        "public": st.sampled_from(["y", "on", ""]),
        "metadata": METADATA,
    }
    user_fields = {
        "name": text,
        "phone": st.sampled_from(["+1 555", "\x00", "1" * 41]),
        "app_metadata": METADATA,
        "user_metadata": METADATA,
        "is_admin": st.sampled_from(["1", "0"]),
    }
    routes = [
        Route("/admin/", ("GET",)),
        Route("/admin/clients", ("GET",)),
        Route("/admin/clients/new", ("GET", "POST"), client_fields, csrf=True),
        Route("/admin/clients/{id}", ("GET", "POST"), client_fields, {"id": clients}, csrf=True),
        Route(
            "/admin/clients/{id}/rotate-secret",
            ("GET", "POST"),
            {"grace_seconds": st.sampled_from(["0", "3600", "2592000", "5", "-1", "x", "1e9"])},
            {"id": clients},
            csrf=True,
        ),
        Route("/admin/clients/{id}/delete", ("GET", "POST"), {}, {"id": clients}, csrf=True),
        Route("/admin/users", ("GET",), {"q": text, "page": text}),
        Route("/admin/users/{id}", ("GET", "POST"), user_fields, {"id": users}, csrf=True),
        Route("/admin/users/{id}", ("POST",), user_fields, {"id": users}, csrf=True),
        Route("/admin/clients/{id}", ("POST",), client_fields, {"id": clients}, csrf=True),
        Route("/admin/users/{id}/admin", ("POST",), user_fields, {"id": users}, csrf=True),
        Route("/admin/users/{id}/disable", ("POST",), {}, {"id": users}, csrf=True),
        Route("/admin/users/{id}/enable", ("POST",), {}, {"id": users}, csrf=True),
    ]
    assert run(world.app, routes, world.browsers, csrf=world.csrf, reset=reset, who=WHO, scale=3)


def test_fuzz_admin_keys_apis_audit(world):
    _, reset = _restore(world)
    apis = st.sampled_from([str(world.api_id), "0", "2147483648", "99999999999999999999", "١"])
    algs = st.sampled_from(["", "ES256", "RS256", "EdDSA", "HS256", "none"])
    api_fields = {
        "identifier": st.sampled_from(["https://api2.example", "urn:x", '"\\é', "a" * 2049]),
        "name": text,
        "scopes": st.sampled_from(["read", "read=Read\nwrite", "a b", "=x", "\x00"]),
        "client_id": st.sampled_from([world.conf_id, world.public_id]),
    }
    routes = [
        Route("/admin/keys", ("GET",)),
        Route("/admin/keys/add", ("POST",), {"add-alg": algs, "alg": algs}, csrf=True),
        Route("/admin/keys/rotate", ("POST",), {"rotate-alg": algs}, csrf=True),
        Route("/admin/keys/{kid}/revoke", ("GET", "POST"), {}, {"kid": text}, csrf=True),
        Route("/admin/plugins", ("GET",)),
        Route("/admin/apis", ("GET", "POST"), api_fields, csrf=True),
        Route("/admin/apis/{id}", ("GET",), {}, {"id": apis}),
        Route("/admin/apis/{id}/grants", ("POST",), api_fields, {"id": apis}, csrf=True),
        Route(
            "/admin/apis/{id}/grants/{client}/revoke",
            ("GET", "POST"),
            {},
            {"id": apis, "client": st.sampled_from([world.conf_id, "x"])},
            csrf=True,
        ),
        Route("/admin/apis/{id}/delete", ("GET", "POST"), {}, {"id": apis}, csrf=True),
        Route(
            "/admin/audit",
            ("GET",),
            {"user": text, "client_id": text, "event_type": text, "page": text},
        ),
    ]
    assert run(world.app, routes, world.browsers, csrf=world.csrf, reset=reset, who=WHO, scale=3)


def test_fuzz_admin_metadata_and_profile_fields(world):
    """Well-formed admin form posts (valid CSRF token) whose JSON and text fields are hostile."""
    admin, token = world.browsers["admin"], world.csrf["admin"]
    victim = make_client(world.app, name="Victim")[0]
    profile = settings.get_profile(PROFILE)

    @settings(profile, max_examples=profile.max_examples // 2)
    @given(st.booleans(), METADATA, METADATA, text, text)
    def one(on_user, first, second, name, phone):
        if on_user:
            path = f"/admin/users/{world.user_id}"
            form = {"app_metadata": first, "user_metadata": second, "name": name, "phone": phone}
        else:
            path = f"/admin/clients/{victim}"
            form = {"metadata": first, "name": name, "redirect_uris": REDIRECT}
        response = admin.post(path, data={"csrf_token": token, **form})
        fuzzed = Fuzzed("POST", path, b"", b"", "form", {}, "admin", form)
        check_response(world.app, fuzzed, response)

    one()
