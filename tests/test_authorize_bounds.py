"""Issue 9 item 4: what an anonymous /oauth/authorize request may make the server keep.

Nothing is stored for an anonymous browser (the sign-in page carries the request back),
every parameter has a length limit, and expired requests go without an admin.
"""

import datetime as dt
import time
from urllib.parse import urlencode

import pytest

from oauth.protocol import pending
from oauth.storage.models import AuthorizationRequest, utcnow
from tests.oauth_helpers import REDIRECT, Flow, make_client, query


@pytest.fixture
def flow(app, client):
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    return flow


def stored(app) -> int:
    with app.app_context():
        return AuthorizationRequest.select().count()


def sign_in_through(flow, response):
    """Follow an anonymous /oauth/authorize to the login page, sign in, come back."""
    location = response.headers["Location"]
    assert location.startswith("/login?"), location
    next_path = query(location)["next"]
    assert next_path.startswith("/oauth/authorize?")
    signed = flow.auth.login(next=next_path)
    assert signed.headers["Location"] == next_path
    return flow.browser.get(next_path)


def test_anonymous_requests_store_nothing(flow, app):
    for i in range(40):
        response = flow.authorize(state="s" * 2048, nonce=f"n{i}", login_hint="a@example.com")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?")
    silent = flow.authorize(prompt="none")
    assert query(silent.headers["Location"])["error"] == "login_required"
    assert stored(app) == 0


def test_anonymous_flow_signs_in_then_stores_one_request_and_issues_a_code(flow, app):
    state = "é" * 1024  # 2048 bytes: at the limit
    response = flow.authorize(state=state, scope="openid email")
    assert stored(app) == 0
    back = sign_in_through(flow, response)
    assert stored(app) == 1
    consent_location, page = flow.consent_page(back)
    assert page.status_code == 200
    decided = flow.decide(consent_location, page)
    result = query(decided.headers["Location"])
    assert decided.headers["Location"].startswith(REDIRECT + "?")
    assert result["state"] == state
    tokens = flow.exchange(result["code"])
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    assert tokens.get_json()["scope"] == "openid email"
    # The helpers' flow works as before, now with the remembered consent.
    code, _ = flow.get_code(scope="openid email")
    assert flow.exchange(code).status_code == 200


def test_the_flow_helpers_sign_in_on_the_way(flow, app):
    tokens = flow.tokens(scope="openid email")  # anonymous: sign in, consent, code, tokens
    assert flow.userinfo(tokens["access_token"]).status_code == 200
    assert stored(app) == 1


@pytest.mark.parametrize("overrides", [{"prompt": "login"}, {"max_age": "0"}])
def test_the_sign_in_on_the_way_satisfies_prompt_login_and_max_age(flow, app, overrides):
    response = flow.authorize(**overrides)
    back = sign_in_through(flow, response)
    location, page = flow.consent_page(back)  # not sent to sign in again
    assert page.status_code == 200


def test_a_forged_or_transplanted_arrival_time_does_not_skip_prompt_login(flow, app):
    flow.auth.login()
    flow.get_code()  # consent remembered
    old = int(time.time()) - 60
    forged = flow.authorize(prompt="login", **{pending.ARRIVED: f"{old}.{'0' * 32}"})
    assert forged.headers["Location"].startswith("/login?")
    # A genuine stamp from another request (different state) does not carry over either.
    flow.auth.logout()
    params = flow.authorize_params(prompt="login", state="one")

    def authorize(**changes):
        return flow.browser.get("/oauth/authorize?" + urlencode({**params, **changes}))

    genuine = query(query(authorize().headers["Location"])["next"])[pending.ARRIVED]
    flow.auth.login()
    moved = authorize(state="two", **{pending.ARRIVED: genuine})
    assert moved.headers["Location"].startswith("/login?")
    kept = authorize(**{pending.ARRIVED: genuine})
    assert kept.headers["Location"].startswith(REDIRECT + "?code=")


@pytest.mark.parametrize("login_first", [False, True])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("state", "s" * 2049),
        ("state", "é" * 1025),  # 2050 bytes
        ("nonce", "n" * 513),
        ("login_hint", "a" * 310 + "@example.com"),
        ("scope", "openid " + "email " * 200),
        ("resource", "https://api.example/" + "r" * 2048),
        ("ui_locales", "fr " * 100),
        ("acr_values", "x" * 513),
        ("claims_locales", "x" * 257),
        ("display", "x" * 33),
        ("id_token_hint", "x" * 8193),
    ],
)
def test_long_parameters_are_refused(flow, app, name, value, login_first):
    if login_first:
        flow.auth.login()
    params = flow.authorize_params(**{name: value})
    response = flow.browser.get("/oauth/authorize?" + urlencode(params))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT + "?")
    result = query(response.headers["Location"])
    assert result["error"] == "invalid_request"
    assert name in result["error_description"]
    if name == "state":
        assert "state" not in result  # never echoed back
    else:
        assert result["state"] == params["state"]
    assert stored(app) == 0


def test_expired_requests_are_purged_by_the_next_one(flow, app):
    flow.auth.login()
    flow.consent_page(flow.authorize())  # pending
    flow.get_code()  # approved (code not exchanged)
    with app.app_context():
        assert AuthorizationRequest.select().count() == 2
        AuthorizationRequest.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    flow.consent_page(flow.authorize(prompt="consent"))
    with app.app_context():
        statuses = sorted(r.status for r in AuthorizationRequest.select())
        assert statuses == ["approved", "pending"]  # the expired pending one is gone
        # An answered request is kept a day (code replay detection), then goes too.
        AuthorizationRequest.update(expires_at=utcnow() - dt.timedelta(days=1, seconds=1)).where(
            AuthorizationRequest.status == "approved"
        ).execute()
    flow.consent_page(flow.authorize(prompt="consent"))
    with app.app_context():
        assert sorted(r.status for r in AuthorizationRequest.select()) == ["pending", "pending"]


def test_pending_requests_of_one_user_are_bounded(flow, app):
    flow.auth.login()
    for _ in range(pending.MAX_PENDING_PER_USER + 5):
        flow.consent_page(flow.authorize())
    assert stored(app) == pending.MAX_PENDING_PER_USER


def test_pending_requests_expire_after_authorization_ttl(flow, app):
    flow.auth.login()
    location, _ = flow.consent_page(flow.authorize())
    with app.app_context():
        row = AuthorizationRequest.get()
        ttl = (row.expires_at - row.created_at).total_seconds()
        assert ttl == app.config["AUTHORIZATION_TTL"] == 600
