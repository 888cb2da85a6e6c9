"""Issue 9 item 9: hostile requests to the browser side (authorize, consent, sign-in, sign-up,
sign-out, settings, discovery, health, unknown paths), as an anonymous browser and a signed-in
user with valid CSRF tokens: never a 5xx, never a redirect to an unregistered URI."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from tests.fuzz_support import FUZZ_CONFIG, Route, run, text
from tests.fuzz_world import ADMIN_EMAIL, PASSWORD, USER_EMAIL, World
from tests.oauth_helpers import REDIRECT


@pytest.fixture
def world(make_app):
    return World(make_app(**FUZZ_CONFIG))


def authorize_fields(world: World) -> dict:
    return {
        "response_type": st.sampled_from(["code", "token", "code id_token", "none", ""]),
        "client_id": world.client_ids(),
        "redirect_uri": world.redirect_uris(),
        "scope": world.scopes(),
        "state": text,
        "nonce": text,
        "code_challenge": st.sampled_from([world.challenge, "a" * 43, "short"]),
        "code_challenge_method": st.sampled_from(["S256", "plain", "s256", ""]),
        "max_age": st.sampled_from(["0", "60", "١٢", "99999999999999999999", "-5", "1e3"]),
        "prompt": st.sampled_from(["none", "login", "consent", "select_account", "none login"]),
        "login_hint": text,
        "resource": world.resources(),
        "audience": world.resources(),
        "response_mode": st.sampled_from(["query", "fragment", "form_post", "web_message"]),
        "request": text,
        "request_uri": text,
        "claims": text,
        "id_token_hint": st.just(world.id_token),
        "ui_locales": text,
        "acr_values": text,
    }


def test_fuzz_authorize(world):
    pairs = [
        (world.conf_id, [REDIRECT, "http://127.0.0.1/cb", "com.example.app:/cb"]),
        (world.public_id, [REDIRECT]),
        (world.dynamic["client_id"], ["https://dyn.example/cb"]),
    ]
    routes = [Route("/oauth/authorize", ("GET",), authorize_fields(world))] + [
        Route(
            "/oauth/authorize",
            ("GET",),
            {
                **authorize_fields(world),
                "client_id": st.just(client_id),
                "redirect_uri": st.sampled_from(uris),
                "request": st.just(None),
                "request_uri": st.just(None),
            },
        )
        for client_id, uris in pairs
    ]
    assert run(world.app, routes, {k: world.browsers[k] for k in ("anon", "user")})


def test_fuzz_consent(world):
    pending = world.pending_authorizations(6)
    fields = {
        "authorization_id": st.sampled_from(pending),
        "decision": st.sampled_from(["approve", "deny", "APPROVE", ""]),
        "scope": world.scopes(),
    }
    routes = [Route("/oauth/consent", ("GET", "POST"), fields, csrf=True)]
    browsers = {k: world.browsers[k] for k in ("anon", "user", "admin")}
    assert run(world.app, routes, browsers, csrf=world.csrf)


def _next_paths():
    return st.sampled_from(
        ["/settings/profile", "/oauth/consent?authorization_id=x", "//evil.example", "/\\x"]
    )


def test_fuzz_sign_in_sign_up_sign_out(world):
    emails = st.sampled_from([USER_EMAIL, ADMIN_EMAIL, " Alice@Example.com ", "new@example.com"])
    routes = [
        Route(
            "/login",
            ("GET", "POST"),
            {
                "email": emails,
                "password": st.sampled_from([PASSWORD, "wrong password"]),
                "next": _next_paths(),
                "reauth": st.just("1"),
                "login_hint": text,
            },
            csrf=True,
        ),
        Route(
            "/signup",
            ("GET", "POST"),
            {
                "email": emails,
                "name": text,
                "password": st.just("a new long password"),
                "password_confirm": st.just("a new long password"),
                "next": _next_paths(),
            },
            csrf=True,
        ),
        Route("/logout", ("POST",), {}, csrf=True),
        Route("/", ("GET",)),
    ]
    browsers = world.browsers

    def reset(request, response):
        # A sign-in, sign-up or sign-out changed who the browser is: start it again.
        if request.path in ("/login", "/signup", "/logout") and response.status_code == 302:
            if request.browser == "anon":
                world.new_anon()
            else:
                world.sign_in(
                    request.browser, USER_EMAIL if request.browser == "user" else ADMIN_EMAIL
                )

    assert run(world.app, routes, browsers, csrf=world.csrf, reset=reset, scale=2)


def test_fuzz_settings(world):
    routes = [
        Route(
            "/settings/profile",
            ("GET", "POST"),
            {
                "name": text,
                "phone": st.sampled_from(["+1 555 0100", "\x00", "1" * 41]),
                "picture": st.sampled_from(
                    ["https://img.example/a.png", "javascript:x", "https://"]
                ),
            },
            csrf=True,
        ),
        Route(
            "/settings/password",
            ("POST",),
            {
                "current_password": st.sampled_from([PASSWORD, "wrong"]),
                "new_password": st.just("another long password"),
                "new_password_confirm": st.just("another long password"),
            },
            csrf=True,
        ),
        Route("/settings/security", ("GET",)),
        Route("/settings/security/sign-out-others", ("POST",), {}, csrf=True),
        Route("/settings/apps", ("GET",)),
        Route(
            "/settings/apps/{client_id}/revoke",
            ("POST",),
            {},
            {"client_id": world.client_ids()},
            csrf=True,
        ),
    ]
    browsers = {k: world.browsers[k] for k in ("anon", "user")}

    def reset(request, response):
        if (
            request.browser == "user"
            and response.status_code == 302
            and request.path
            in (
                "/settings/password",
                "/settings/security/sign-out-others",
            )
        ):
            if request.path == "/settings/password":
                world.set_password(world.user_id, PASSWORD)
            world.sign_in("user", USER_EMAIL)
            browsers["user"] = world.browsers["user"]

    assert run(world.app, routes, browsers, csrf=world.csrf, reset=reset, scale=2)


def test_fuzz_public_pages(world):
    routes = [
        Route("/.well-known/openid-configuration", ("GET",), {"x": text}),
        Route("/.well-known/oauth-authorization-server", ("GET",), {"x": text}),
        Route("/.well-known/jwks.json", ("GET",), {"kid": text}),
        Route("/healthz", ("GET",)),
        Route("/livez", ("GET",)),
        Route("/metrics", ("GET",), {"x": text}),
        Route("/static/{name}", ("GET",), {}, {"name": st.sampled_from(["style.css", "..%2f"])}),
        Route("/{anything}", ("GET", "POST"), {"a": text}, {"anything": text}),
        Route("/oauth/{anything}", ("GET", "POST"), {"a": text}, {"anything": text}),
        Route("/admin/{anything}", ("GET", "POST"), {"a": text}, {"anything": text}),
    ]
    assert run(world.app, routes, world.browsers, csrf=world.csrf)
