"""Issue 9 item 9: hostile requests to the protocol endpoints (token, revoke, introspect,
userinfo, registration, authorize, consent, discovery, health) never get a 5xx, never a
redirect to an unregistered URI, and the JSON endpoints answer JSON errors.

Each test builds its world once (both databases) and sends ``fuzz_support.PROFILE``'s number
of generated requests through the Flask test client.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_support import (
    FUZZ_CONFIG,
    PROFILE,
    Fuzzed,
    Route,
    authorization_headers,
    check_response,
    json_value,
    run,
    text,
)
from tests.fuzz_world import World


@pytest.fixture
def world(make_app):
    return World(make_app(**FUZZ_CONFIG))


GRANT_TYPES = st.sampled_from(
    ["authorization_code", "refresh_token", "client_credentials", "password", "implicit", ""]
)


def test_fuzz_token_endpoint(world):
    fields = {
        "grant_type": GRANT_TYPES,
        "code": text,
        "redirect_uri": world.redirect_uris(),
        "code_verifier": st.sampled_from(["a" * 43, "a" * 129, "~" * 50]),
        "refresh_token": st.just(world.refresh_token),
        "scope": world.scopes(),
        "resource": world.resources(),
        "audience": world.resources(),
        "client_id": world.client_ids(),
        "client_secret": st.just(world.secret),
        "client_assertion": text,
        "client_assertion_type": text,
    }
    machine = {
        "grant_type": st.just("client_credentials"),
        "scope": world.scopes(),
        "audience": world.resources(),
        "resource": world.resources(),
    }
    refresh = {
        "grant_type": st.just("refresh_token"),
        "refresh_token": st.just(world.refresh_token),
        "scope": world.scopes(),
        "resource": world.resources(),
    }
    routes = [
        Route("/oauth/token", ("POST",), fields),
        Route("/oauth/token", ("POST",), machine),
        Route("/oauth/token", ("POST",), refresh),
    ]
    auth = authorization_headers(world.basic_headers())
    assert run(world.app, routes, world.browsers, auth=auth) > 0


def test_fuzz_revoke_and_introspect(world):
    fields = {
        "token": world.tokens(),
        "token_type_hint": st.sampled_from(["access_token", "refresh_token", "id_token", ""]),
        "client_id": world.client_ids(),
        "client_secret": st.just(world.secret),
    }
    routes = [
        Route("/oauth/revoke", ("POST",), fields),
        Route("/oauth/introspect", ("POST",), fields),
    ]
    auth = authorization_headers(world.basic_headers())
    assert run(world.app, routes, world.browsers, auth=auth) > 0


def test_fuzz_userinfo(world):
    fields = {"access_token": world.tokens(), "claims": text, "scope": world.scopes()}
    routes = [Route("/oauth/userinfo", ("GET", "POST"), fields)]
    valid = [f"Bearer {world.access_token}", f"bearer  {world.access_token} "]
    assert run(world.app, routes, world.browsers, auth=authorization_headers(valid)) > 0


REGISTRATION_FIELDS = [
    "redirect_uris",
    "client_name",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "scope",
    "client_uri",
    "logo_uri",
    "contacts",
    "client_id",
    "client_secret",
    "jwks",
    "software_statement",
]


@st.composite
def registration_body(draw, world: World) -> dict:
    """A client metadata document: plausible values or any JSON, for any subset of fields."""
    plausible = {
        "redirect_uris": st.lists(st.one_of(world.redirect_uris(), text), max_size=3),
        "grant_types": st.lists(
            st.sampled_from(["authorization_code", "refresh_token", "client_credentials"])
        ),
        "response_types": st.sampled_from([["code"], ["token"], []]),
        "token_endpoint_auth_method": st.sampled_from(
            ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
        ),
        "client_id": st.just(world.dynamic["client_id"]),
        "client_secret": st.just(world.dynamic["client_secret"]),
    }
    body = {}
    for name in draw(st.lists(st.sampled_from(REGISTRATION_FIELDS), unique=True)):
        body[name] = draw(st.one_of(plausible.get(name, text), json_value))
    return body


def test_fuzz_dynamic_registration(world):
    dynamic = world.dynamic
    path = "/oauth/register/" + dynamic["client_id"]
    fields = {name: st.just(None) for name in REGISTRATION_FIELDS}
    routes = [
        Route("/oauth/register", ("POST",), fields),
        Route("/oauth/register/{id}", ("GET", "PUT", "DELETE"), fields, {"id": world.client_ids()}),
    ]
    valid = [f"Bearer {dynamic['registration_access_token']}"]

    def reset(request, response):
        if request.method == "DELETE" and request.path == path and response.status_code == 204:
            world.dynamic = world._register()  # keep a registered client to attack

    assert run(world.app, routes, world.browsers, auth=authorization_headers(valid), reset=reset)


def test_fuzz_registration_documents(world):
    """Well-formed JSON requests with hostile metadata, to POST and (authorized) PUT."""
    app, browser = world.app, world.browsers["anon"]

    @settings(settings.get_profile(PROFILE))
    @given(registration_body(world), st.booleans())
    def one(body, update):
        headers = {}
        path = "/oauth/register"
        if update:
            path += "/" + world.dynamic["client_id"]
            headers["Authorization"] = f"Bearer {world.dynamic['registration_access_token']}"
        method = "PUT" if update else "POST"
        response = browser.open(path, method=method, json=body, headers=headers)
        response.close()
        check_response(app, Fuzzed(method, path, b"", b"", "json", headers, "anon", body), response)

    one()
