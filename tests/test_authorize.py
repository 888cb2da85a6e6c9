"""/oauth/authorize and the consent page."""

import datetime as dt
from urllib.parse import urlencode

import pytest

from oauth.storage.models import AuthorizationRequest, Consent, utcnow
from tests.oauth_helpers import REDIRECT, Flow, make_client, query


@pytest.fixture
def flow(app, client):
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    return flow


def signed_in(flow):
    flow.auth.login()
    return flow


def assert_error_page(response, code=400):
    assert response.status_code == code
    assert "Location" not in response.headers
    assert "<html" in response.get_data(as_text=True)


@pytest.mark.parametrize("login_first", [False, True])
def test_untrusted_client_or_redirect_uri_is_an_error_page(flow, login_first):
    if login_first:
        signed_in(flow)
    assert_error_page(flow.authorize(client_id="no-such-client"))
    assert_error_page(flow.authorize(client_id=None))
    assert_error_page(flow.authorize(redirect_uri="https://evil.example/callback"))
    assert_error_page(flow.authorize(redirect_uri=REDIRECT + "/"))
    assert_error_page(flow.authorize(redirect_uri=REDIRECT + "?x=1"))
    assert_error_page(flow.authorize(client_id="bad\x00id"))


def test_redirect_uri_is_required_when_the_client_has_several(app, client):
    client_id, _ = make_client(app, redirect_uris=[REDIRECT, "https://app.example/other"])
    flow = Flow(app, client, client_id=client_id)
    assert_error_page(flow.authorize(redirect_uri=None))


def test_redirect_uri_may_be_omitted_with_one_registered(flow):
    """RFC 6749 §3.1.2.3 for OAuth-only requests; OpenID Connect requires it (Core §3.1.2.1)."""
    signed_in(flow)
    response = flow.authorize(redirect_uri=None, scope="email", nonce=None)
    assert response.headers["Location"].startswith("/oauth/consent")
    refused = flow.authorize(redirect_uri=None)  # scope openid email profile
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert "redirect_uri is required" in refused.get_data(as_text=True)


@pytest.mark.parametrize("login_first", [False, True])
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "email admin:everything"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"max_age": "\u0663"}, "invalid_request"),  # ARABIC-INDIC DIGIT THREE
        ({"max_age": "9" * 40}, "invalid_request"),  # was a 500: too large for the column
        ({"resource": "not-absolute"}, "invalid_target"),
        ({"resource": "https://api.example/#frag"}, "invalid_target"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
    ],
)
def test_bad_requests_fail_at_once_with_redirect_error(flow, app, overrides, error, login_first):
    if login_first:
        signed_in(flow)
    params = flow.authorize_params(**overrides)
    response = flow.browser.get("/oauth/authorize?" + urlencode(params))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    result = query(location)
    assert result["error"] == error
    assert result["error_description"]
    assert result["state"] == params["state"]
    assert result["iss"] == app.config["ISSUER"]


def test_repeated_parameter_is_refused(flow):
    params = flow.authorize_params()
    url = "/oauth/authorize?" + urlencode(params) + "&scope=phone"
    response = flow.browser.get(url)
    assert query(response.headers["Location"])["error"] == "invalid_request"


def test_client_without_code_grant_is_unauthorized(app, client):
    client_id, _ = make_client(app, grant_types=["client_credentials"], redirect_uris=[REDIRECT])
    flow = Flow(app, client, client_id=client_id)
    assert query(flow.authorize().headers["Location"])["error"] == "unauthorized_client"


def test_anonymous_user_is_sent_to_login_and_back(flow):
    response = flow.authorize(login_hint="alice@example.com")
    assert response.status_code == 302
    login_url = response.headers["Location"]
    assert login_url.startswith("/login?")
    params = query(login_url)
    assert params["next"].startswith("/oauth/authorize?")  # the request itself, not stored
    page = flow.browser.get(login_url).get_data(as_text=True)
    assert 'value="alice@example.com"' in page  # login_hint prefills the email
    response = flow.auth.login(next=params["next"])
    assert response.headers["Location"] == params["next"]
    location, consent = flow.consent_page(flow.browser.get(params["next"]))
    assert consent.status_code == 200
    assert "Test App" in consent.get_data(as_text=True)


def test_consent_page_shows_the_app_and_scopes_in_plain_words(app, client):
    client_id, secret = make_client(
        app,
        name="Photo Printer",
        client_uri="https://printer.example",
        logo_uri="https://printer.example/logo.png",
    )
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    signed_in(flow)
    _, page = flow.consent_page(flow.authorize(scope="openid email phone"))
    html = page.get_data(as_text=True)
    for text in (
        "Photo Printer",
        "https://printer.example/logo.png",
        "https://printer.example",
        "app.example",
        "See your email address",
        "See your phone number",
        'name="decision" value="approve"',
        'name="decision" value="deny"',
        'name="csrf_token"',
    ):
        assert text in html


def test_approve_redirects_with_code_state_and_iss(flow, app):
    signed_in(flow)
    location, page = flow.consent_page(flow.authorize(state="xyz"))
    response = flow.decide(location, page, "approve")
    assert response.status_code == 302
    result = query(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT + "?")
    assert result["state"] == "xyz" and result["iss"] == app.config["ISSUER"]
    assert len(result["code"]) >= 43
    with app.app_context():
        row = AuthorizationRequest.get(AuthorizationRequest.status == "approved")
        assert row.code_hash and row.code_hash != result["code"]
        assert result["code"] not in str(list(AuthorizationRequest.select().dicts()))
        assert Consent.select().count() == 1


def test_deny_sends_access_denied(flow, app):
    signed_in(flow)
    location, page = flow.consent_page(flow.authorize(state="s1"))
    response = flow.decide(location, page, "deny")
    result = query(response.headers["Location"])
    assert result == {
        "error": "access_denied", "error_description": "The user denied the request.",
        "state": "s1", "iss": app.config["ISSUER"],
    }  # fmt: skip
    with app.app_context():
        assert Consent.select().count() == 0
    again = flow.browser.post(location, data={"decision": "approve"})
    assert again.status_code == 400  # no CSRF, and the request is already answered


def test_consent_needs_csrf_and_a_known_decision(flow, app):
    signed_in(flow)
    location, page = flow.consent_page(flow.authorize())
    assert flow.browser.post(location, data={"decision": "approve"}).status_code == 400
    from tests.conftest import csrf_token_from

    token = csrf_token_from(page.get_data(as_text=True))
    assert (
        flow.browser.post(location, data={"decision": "maybe", "csrf_token": token}).status_code
        == 400
    )
    with app.app_context():
        assert AuthorizationRequest.get().status == "pending"
    assert flow.decide(location, page).status_code == 302


def test_granted_scopes_are_not_asked_again(flow):
    signed_in(flow)
    flow.get_code(scope="openid email")
    response = flow.authorize(scope="email")
    assert response.headers["Location"].startswith(REDIRECT + "?code=")
    more = flow.authorize(scope="openid email profile")  # a new scope: ask
    assert more.headers["Location"].startswith("/oauth/consent")
    forced = flow.authorize(scope="email", prompt="consent")
    assert forced.headers["Location"].startswith("/oauth/consent")


def test_prompt_none(flow):
    result = query(flow.authorize(prompt="none").headers["Location"])
    assert result["error"] == "login_required"
    signed_in(flow)
    result = query(flow.authorize(prompt="none").headers["Location"])
    assert result["error"] == "consent_required"
    flow.get_code()
    result = query(flow.authorize(prompt="none").headers["Location"])
    assert "code" in result


def test_prompt_login_and_max_age_force_a_new_sign_in(flow):
    signed_in(flow)
    flow.get_code()
    for overrides in ({"prompt": "login"}, {"max_age": "0"}):
        response = flow.authorize(**overrides)
        location = response.headers["Location"]
        assert location.startswith("/login?"), location
        assert query(location)["reauth"] == "1"
    fine = flow.authorize(max_age="3600")
    assert fine.headers["Location"].startswith(REDIRECT + "?code=")


def test_expired_authorization_request(flow, app):
    signed_in(flow)
    location, _ = flow.consent_page(flow.authorize())
    with app.app_context():
        AuthorizationRequest.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    response = flow.browser.get(location)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_another_users_request_is_refused(flow, app):
    signed_in(flow)
    location, _ = flow.consent_page(flow.authorize())
    other_browser = app.test_client()
    from tests.conftest import AuthActions

    other = AuthActions(other_browser, app)
    other.create_user("mallory@example.com", "mallory pass")
    other.login("mallory@example.com", "mallory pass")
    assert other_browser.get(location).status_code == 403


def test_unknown_authorization_id(flow):
    signed_in(flow)
    assert flow.browser.get("/oauth/consent?authorization_id=nope").status_code == 400
    assert flow.browser.get("/oauth/consent?authorization_id=a%00b").status_code == 400


def test_pages_cannot_be_framed(flow):
    signed_in(flow)
    _, page = flow.consent_page(flow.authorize())
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"  # RFC 9700 4.2: none to other sites


def test_expired_requests_are_purged(flow, app):
    from oauth.protocol.pending import purge_expired_requests

    signed_in(flow)
    flow.authorize()
    fresh = flow.authorize()
    assert fresh.status_code == 302
    with app.app_context():
        first = AuthorizationRequest.select().order_by(AuthorizationRequest.created_at).first()
        AuthorizationRequest.update(expires_at=utcnow() - dt.timedelta(days=2)).where(
            AuthorizationRequest.id == first.id
        ).execute()
        assert purge_expired_requests() == 1
        assert AuthorizationRequest.select().count() == 1
