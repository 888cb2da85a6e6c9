"""Issue 11, OpenID Connect gaps: what an OpenID Foundation certification run checks.

POST to /oauth/authorize, ``Allow`` on every 405, ``redirect_uri`` required with ``openid``,
unknown scopes ignored, ``id_token_hint`` for another user, the ``claims`` parameter, the
ID token algorithm per client (with a current key of every algorithm), and PKCE made optional
for an admin-registered confidential client (which must then send a nonce).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from oauth.registry import clients
from oauth.storage.models import AuthorizationRequest, Client, OAuthSession
from tests.oauth_helpers import REDIRECT, Flow, decode_jwt_unverified, make_client, query
from tests.test_admin import ADMIN_EMAIL, create_client_form, csrf


@pytest.fixture
def flow(app, client):
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user(name="Alice", phone="+15550001")
    flow.auth.login()
    return flow


def verified_id_token(flow, token: str) -> dict:
    """The ID token's claims, its signature checked with our published JWKS (joserfc)."""
    jwks = KeySet.import_key_set(flow.browser.get("/.well-known/jwks.json").get_json())
    header, _ = decode_jwt_unverified(token)
    decoded = jose_jwt.decode(token, jwks, algorithms=[header["alg"]])
    return decoded.claims


# -- POST /oauth/authorize (Core §3.1.2.1) -----------------------------------------------------


def test_post_to_authorize_is_the_same_request_as_get(flow):
    params = flow.authorize_params()
    response = flow.browser.post("/oauth/authorize", data=params)
    location, page = flow.consent_page(response)
    assert page.status_code == 200
    answer = flow.decide(location, page)
    result = query(answer.headers["Location"])
    assert result["state"] == params["state"]
    tokens = flow.exchange(result["code"]).get_json()
    claims = verified_id_token(flow, tokens["id_token"])
    assert claims["nonce"] == params["nonce"] and claims["aud"] == flow.client_id


def test_post_to_authorize_validates_and_resumes_like_get(app, client):
    client_id, _ = make_client(app)
    flow = Flow(app, client, client_id=client_id)
    flow.auth.create_user()
    bad = flow.browser.post("/oauth/authorize", data=flow.authorize_params(response_type="token"))
    assert bad.status_code == 302
    assert query(bad.headers["Location"])["error"] == "unsupported_response_type"
    anonymous = flow.browser.post("/oauth/authorize", data=flow.authorize_params())
    assert anonymous.headers["Location"].startswith("/login?")
    # The sign-in page brings the browser back with a GET carrying the same request.
    resume = query(anonymous.headers["Location"])["next"]
    assert resume.startswith("/oauth/authorize?") and f"client_id={client_id}" in resume
    with app.app_context():
        assert AuthorizationRequest.select().count() == 0


# -- 405 answers carry Allow (RFC 9110 §15.5.6) ------------------------------------------------


def test_every_405_names_the_allowed_methods(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        allowed = set(rule.methods or ()) - {"HEAD", "OPTIONS"}
        missing = next(m for m in ("DELETE", "PATCH", "PUT", "POST", "GET") if m not in allowed)
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "x").replace(f"<path:{argument}>", "x")
            path = path.replace(f"<int:{argument}>", "1")
        response = client.open(path, method=missing)
        assert response.status_code == 405, (rule.rule, missing, response.status_code)
        named = {m.strip() for m in response.headers.get("Allow", "").split(",")}
        assert allowed <= named, (rule.rule, response.headers.get("Allow"))
        checked += 1
    assert checked > 20
    json_answer = client.get("/oauth/token")
    assert json_answer.get_json()["error"] == "invalid_request"
    assert "POST" in json_answer.headers["Allow"]
    html_answer = client.get("/logout")
    assert html_answer.mimetype == "text/html" and "POST" in html_answer.headers["Allow"]


# -- redirect_uri and scopes ---------------------------------------------------------------


def test_openid_request_without_redirect_uri_is_refused_on_our_page(flow):
    response = flow.authorize(redirect_uri=None)
    assert response.status_code == 400 and "Location" not in response.headers
    oauth_only = flow.authorize(redirect_uri=None, scope="email")
    assert oauth_only.headers["Location"].startswith("/oauth/consent")


def test_unknown_scopes_are_ignored_with_openid_and_the_grant_says_what_was_granted(flow, app):
    code, _ = flow.get_code(scope="openid email unknown:thing another")
    tokens = flow.exchange(code).get_json()
    assert tokens["scope"] == "openid email"
    _, access = decode_jwt_unverified(tokens["access_token"])
    assert access["scope"] == "openid email"
    with app.app_context():
        [consent] = list(Client.get_by_id(flow.client_id).consents)
        assert sorted(consent.scopes) == ["email", "openid"]
    refused = flow.authorize(scope="email unknown:thing")  # OAuth only: RFC 6749 invalid_scope
    assert query(refused.headers["Location"])["error"] == "invalid_scope"


# -- id_token_hint ---------------------------------------------------------------------------


def test_id_token_hint_of_another_user(flow):
    alice_id_token = flow.tokens()["id_token"]
    flow.auth.logout()
    flow.auth.create_user(email="bob@example.com")
    flow.auth.login(email="bob@example.com")
    silent = flow.authorize(id_token_hint=alice_id_token, prompt="none")
    assert query(silent.headers["Location"])["error"] == "login_required"
    asked = flow.authorize(id_token_hint=alice_id_token)
    location = asked.headers["Location"]
    assert location.startswith("/login?") and "reauth=1" in location
    # Alice signs in on that page: the request resumes for her, never for Bob.
    signed_in = flow.auth.login(next=query(location)["next"])
    resumed = flow.browser.get(signed_in.headers["Location"])
    code = query(resumed.headers["Location"])["code"]  # Alice consented before
    tokens = flow.exchange(code).get_json()
    alice = decode_jwt_unverified(alice_id_token)[1]["sub"]
    assert decode_jwt_unverified(tokens["id_token"])[1]["sub"] == alice


def test_id_token_hint_of_the_signed_in_user_and_bad_hints(flow):
    id_token = flow.tokens()["id_token"]
    code, _ = flow.get_code(id_token_hint=id_token, prompt="none")
    assert flow.exchange(code).status_code == 200
    forged = id_token[:-4] + ("AAAA" if not id_token.endswith("AAAA") else "BBBB")
    refused = flow.authorize(id_token_hint=forged)
    assert query(refused.headers["Location"])["error"] == "invalid_request"


# -- the claims parameter (Core §5.5) ----------------------------------------------------------


def test_claims_parameter_for_id_token_and_userinfo(flow, app):
    request = {
        "id_token": {"email": {"essential": True}, "name": None, "no_such_claim": None},
        "userinfo": {"phone_number": {"essential": True}, "picture": None},
    }
    code, _ = flow.get_code(scope="openid", claims=json.dumps(request))
    tokens = flow.exchange(code).get_json()
    assert tokens["scope"] == "openid"
    id_claims = verified_id_token(flow, tokens["id_token"])
    assert id_claims["email"] == "alice@example.com" and id_claims["name"] == "Alice"
    assert "no_such_claim" not in id_claims and "phone_number" not in id_claims
    info = flow.userinfo(tokens["access_token"]).get_json()
    assert info["phone_number"] == "+15550001" and "picture" in info
    assert "email" not in info and "name" not in info
    # Kept with the OAuth session: a refreshed ID token and UserInfo still honour it.
    refreshed = flow.refresh(tokens["refresh_token"]).get_json()
    assert decode_jwt_unverified(refreshed["id_token"])[1]["name"] == "Alice"
    assert flow.userinfo(refreshed["access_token"]).get_json()["phone_number"] == "+15550001"
    with app.app_context():
        session = OAuthSession.get()
        assert set(session.claims["id_token"]) == {"email", "name"}


def test_claims_parameter_is_shown_on_the_consent_page(flow):
    request = {"userinfo": {"phone_number": None}}
    response = flow.authorize(scope="openid", claims=json.dumps(request))
    _, page = flow.consent_page(response)
    html = page.get_data(as_text=True)
    assert "phone" in html.lower()


@pytest.mark.parametrize(
    "claims",
    ["not json", "[]", '{"id_token": []}', '{"userinfo": {"email": 3}}',
     '{"id_token": {"email": {"essential": "yes"}}}'],
)  # fmt: skip
def test_malformed_claims_parameter(flow, claims):
    response = flow.authorize(claims=claims)
    assert query(response.headers["Location"])["error"] == "invalid_request"


def test_requested_sub_value_must_be_the_signed_in_user(flow):
    other = {"id_token": {"sub": {"value": "someone-else"}}}
    silent = flow.authorize(claims=json.dumps(other), prompt="none")
    assert query(silent.headers["Location"])["error"] == "login_required"


def test_discovery_advertises_claims_and_both_algorithms(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["claims_parameter_supported"] is True
    assert set(doc["id_token_signing_alg_values_supported"]) == {"ES256", "RS256"}


# -- the ID token's algorithm per client -------------------------------------------------------


def test_id_tokens_are_rs256_by_default_and_access_tokens_keep_signing_alg(flow):
    tokens = flow.tokens()
    assert decode_jwt_unverified(tokens["id_token"])[0]["alg"] == "RS256"
    assert decode_jwt_unverified(tokens["access_token"])[0]["alg"] == "ES256"
    assert verified_id_token(flow, tokens["id_token"])["aud"] == flow.client_id


def test_registered_id_token_alg(app, client):
    client_id, secret = make_client(app, metadata={"id_token_signed_response_alg": "ES256"})
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    tokens = flow.tokens()
    assert decode_jwt_unverified(tokens["id_token"])[0]["alg"] == "ES256"
    verified_id_token(flow, tokens["id_token"])
    refreshed = flow.refresh(tokens["refresh_token"]).get_json()
    assert decode_jwt_unverified(refreshed["id_token"])[0]["alg"] == "ES256"
    with app.app_context():
        info = clients.client_info(Client.get_by_id(client_id))
        assert info["id_token_signed_response_alg"] == "ES256"


def test_id_token_alg_is_checked(app_context):
    with pytest.raises(clients.ClientError, match="id_token_signed_response_alg"):
        clients.create_client("X", [REDIRECT], metadata={"id_token_signed_response_alg": "HS256"})
    assert clients.ID_TOKEN_ALGS == ("ES256", "RS256")


def test_cli_client_options(app, runner):
    created = runner.invoke(
        args=["clients", "create", "--name", "Suite", "--redirect-uri", REDIRECT,
              "--id-token-alg", "ES256", "--no-require-pkce", "--json"]
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    info = json.loads(created.output)
    assert info["id_token_signed_response_alg"] == "ES256" and info["require_pkce"] is False
    public = runner.invoke(
        args=["clients", "create", "--name", "SPA", "--public", "--redirect-uri", REDIRECT,
              "--no-require-pkce"]
    )  # fmt: skip
    assert public.exit_code == 1 and "confidential" in public.output
    assert "Traceback" not in public.output


# -- PKCE optional for an admin-registered confidential client (OAuth 2.1 §7.5.1) ------------


@pytest.fixture
def no_pkce_flow(app, client):
    client_id, secret = make_client(app, metadata={"require_pkce": False})
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    return flow


def test_confidential_client_without_pkce_must_send_nonce(no_pkce_flow):
    flow = no_pkce_flow
    code, _ = flow.get_code(code_challenge=None, code_challenge_method=None)
    response = flow.exchange(code, verifier="")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "id_token" in response.get_json()
    missing_nonce = flow.authorize(code_challenge=None, code_challenge_method=None, nonce=None)
    error = query(missing_nonce.headers["Location"])
    assert error["error"] == "invalid_request" and "nonce" in error["error_description"]
    # OAuth-only requests need no nonce; a verifier without a challenge is refused.
    code, _ = flow.get_code(code_challenge=None, code_challenge_method=None, scope="email")
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"
    # PKCE still works, and is still checked, for such a client.
    code, _ = flow.get_code()
    assert flow.exchange(code, verifier="x" * 43).get_json()["error"] == "invalid_grant"


def test_pkce_stays_required_for_everyone_else(flow, app):
    response = flow.authorize(code_challenge=None, code_challenge_method=None)
    assert query(response.headers["Location"])["error"] == "invalid_request"
    with pytest.raises(clients.ClientError, match="confidential"):
        make_client(app, public=True, metadata={"require_pkce": False})


def test_dynamic_registration_cannot_turn_pkce_off(make_app):
    app = make_app(ALLOW_DYNAMIC_REGISTRATION=True)
    http = app.test_client()
    body = {
        "redirect_uris": [REDIRECT],
        "require_pkce": False,
        "metadata": {"require_pkce": False},
        "id_token_signed_response_alg": "ES256",
    }
    registered = http.post("/oauth/register", json=body).get_json()
    assert registered["id_token_signed_response_alg"] == "ES256"
    assert "require_pkce" not in registered
    with app.app_context():
        client = Client.get_by_id(registered["client_id"])
        assert not clients.pkce_optional(client)
    bad = http.post("/oauth/register", json={**body, "id_token_signed_response_alg": "none"})
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_client_metadata"
    params = {
        "response_type": "code",
        "client_id": registered["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "openid",
        "nonce": "n",
    }
    refused = http.get("/oauth/authorize?" + urlencode(params))
    assert refused.status_code == 400  # a self-registered client sees errors on our page


# -- the rest of the Basic OP plan that had no test of its own ----------------------------------


def test_request_without_nonce_succeeds_for_code_flow(flow):
    tokens = flow.tokens(nonce=None)
    claims = verified_id_token(flow, tokens["id_token"])
    assert "nonce" not in claims and claims["sub"]


def test_optional_and_unknown_parameters_are_accepted(flow):
    extras = {
        "display": "popup", "ui_locales": "fr-CA fr en", "claims_locales": "de",
        "login_hint": "alice@example.com", "unknown_parameter": "ignored",
    }  # fmt: skip
    for display in ("page", "popup"):
        code, _ = flow.get_code(**{**extras, "display": display})
        assert "id_token" in flow.exchange(code).get_json()


def test_scope_order_and_unsupported_scopes_with_openid(flow):
    # oidcc-scope-address / -all: "address" is not supported, so it is ignored (Core §3.1.2.1).
    for scope in ("email openid", "openid profile email phone address", "address openid"):
        tokens = flow.tokens(scope=scope)
        assert "address" not in tokens["scope"].split() and "openid" in tokens["scope"].split()
        info = flow.userinfo(tokens["access_token"]).get_json()
        assert "address" not in info and info["sub"]


def test_admin_form_sets_the_id_token_alg_and_pkce_choice(app, client, auth):
    auth.create_user(ADMIN_EMAIL, is_admin=True)
    auth.login(ADMIN_EMAIL)
    page = client.get("/admin/clients/new").get_data(as_text=True)
    assert 'name="id_token_alg"' in page and 'name="pkce_optional"' in page
    response = create_client_form(client, id_token_alg="ES256", pkce_optional="y")
    assert response.status_code == 201
    refused = create_client_form(client, name="SPA", public="y", pkce_optional="y")
    assert refused.status_code == 400 and "confidential" in refused.get_data(as_text=True)
    with app.app_context():
        created = Client.get(Client.name == "Billing")
        assert created.metadata == {"id_token_signed_response_alg": "ES256", "require_pkce": False}
    edit = f"/admin/clients/{created.client_id}"
    form = client.get(edit).get_data(as_text=True)
    assert 'value="ES256" selected' in form or 'selected value="ES256"' in form
    saved = client.post(
        edit,
        data={
            "csrf_token": csrf(client, edit), "name": "Billing",
            "redirect_uris": "https://billing.example/cb",
            "grant_types": ["authorization_code", "refresh_token"],
            "metadata": '{"team": "ops"}', "id_token_alg": "",
        },
    )  # fmt: skip
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with app.app_context():
        assert Client.get_by_id(created.client_id).metadata == {"team": "ops"}  # defaults again
