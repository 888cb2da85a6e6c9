"""OIDC RP-Initiated Logout 1.0 at /oauth/logout (issue 11), on both databases."""

import time
from urllib.parse import urlencode

from oauth.storage.models import AuditEvent, BrowserSession, OAuthSession
from oauth.tokens import keys
from tests.conftest import csrf_token_from
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client, query

BACK = "https://app.example/signed-out"


def _flow(app, client, **client_kwargs) -> Flow:
    metadata = {"post_logout_redirect_uris": [BACK], **client_kwargs.pop("metadata", {})}
    client_id, secret = make_client(app, metadata=metadata, **client_kwargs)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    return flow


def _signed_in(flow) -> bool:
    return flow.browser.get("/settings/profile").status_code == 200


def _logout(flow, method="get", **params):
    if method == "get":
        return flow.browser.get("/oauth/logout?" + urlencode(params))
    return flow.browser.post("/oauth/logout", data=params)


def test_discovery_advertises_logout(client):
    document = client.get("/.well-known/openid-configuration").get_json()
    assert document["end_session_endpoint"].endswith("/oauth/logout")
    assert document["backchannel_logout_supported"] is True
    assert document["backchannel_logout_session_supported"] is True
    assert document["frontchannel_logout_supported"] is False


def test_id_token_carries_the_public_sid_of_the_browser_session(app, client):
    flow = _flow(app, client)
    tokens = flow.tokens()
    _, claims = decode_jwt_unverified(tokens["id_token"])
    with app.app_context():
        row = BrowserSession.get()
        assert claims["sid"] == row.sid and len(row.sid) >= 20
        assert OAuthSession.get().browser_sid == row.sid
    cookie = flow.browser.get_cookie("session")
    assert claims["sid"] not in (cookie.value if cookie else "")
    refreshed = flow.refresh(tokens["refresh_token"]).get_json()
    assert decode_jwt_unverified(refreshed["id_token"])[1]["sid"] == claims["sid"]


def test_valid_hint_signs_out_and_returns_with_state(app, client):
    flow = _flow(app, client)
    id_token = flow.tokens()["id_token"]
    response = _logout(flow, id_token_hint=id_token, post_logout_redirect_uri=BACK, state="s1")
    assert response.status_code == 303
    assert response.headers["Location"] == BACK + "?state=s1"
    assert not _signed_in(flow)
    with app.app_context():
        assert BrowserSession.select().count() == 0
        assert AuditEvent.select().where(AuditEvent.event_type == "logout").count() == 1


def test_form_post_from_the_relying_party_and_ui_locales_ignored(app, client):
    flow = _flow(app, client)
    id_token = flow.tokens()["id_token"]
    response = _logout(
        flow, "post", id_token_hint=id_token, post_logout_redirect_uri=BACK, ui_locales="fr"
    )
    assert response.status_code == 303 and response.headers["Location"] == BACK
    assert not _signed_in(flow)


def test_expired_hint_of_ours_is_accepted(app, client):
    flow = _flow(app, client)
    _, claims = decode_jwt_unverified(flow.tokens()["id_token"])
    with app.app_context():
        expired = keys.sign_jwt({**claims, "iat": 1000, "exp": int(time.time()) - 3600})
    response = _logout(flow, id_token_hint=expired, post_logout_redirect_uri=BACK)
    assert response.status_code == 303 and not _signed_in(flow)


def test_forged_or_foreign_hints_are_refused(app, client):
    flow = _flow(app, client)
    id_token = flow.tokens()["id_token"]
    head, body, signature = id_token.split(".")
    tampered = f"{head}.{body}.{signature[:-4]}AAAA"
    access = flow.tokens()["access_token"]  # ours, but not an ID token
    _, claims = decode_jwt_unverified(id_token)
    with app.app_context():
        other_issuer = keys.sign_jwt({**claims, "iss": "https://evil.example"})
    for hint in (tampered, access, other_issuer, "not-a-jwt"):
        response = _logout(flow, id_token_hint=hint, post_logout_redirect_uri=BACK)
        assert response.status_code == 400, hint
        assert "Location" not in response.headers
    assert _signed_in(flow)


def test_post_logout_redirect_uri_must_match_exactly(app, client):
    flow = _flow(app, client)
    id_token = flow.tokens()["id_token"]
    for uri in (BACK + "/", BACK + "?x=1", "https://app.example/other", BACK.upper()):
        response = _logout(flow, id_token_hint=id_token, post_logout_redirect_uri=uri)
        assert response.status_code == 400 and "Location" not in response.headers, uri
    # without a client the URI cannot be checked at all
    assert _logout(flow, post_logout_redirect_uri=BACK).status_code == 400
    # client_id disagreeing with the hint
    other_id, _ = make_client(app, name="Other", metadata={"post_logout_redirect_uris": [BACK]})
    response = _logout(flow, id_token_hint=id_token, client_id=other_id)
    assert response.status_code == 400
    assert _signed_in(flow)


def test_without_hint_the_user_confirms_with_a_csrf_form(app, client):
    flow = _flow(app, client)
    params = {"client_id": flow.client_id, "post_logout_redirect_uri": BACK, "state": "xyz"}
    page = _logout(flow, **params)
    assert page.status_code == 200 and "Sign out?" in page.get_data(as_text=True)
    assert _signed_in(flow)
    # a cross-site form that does not carry our CSRF token changes nothing
    forged = flow.browser.post("/oauth/logout", data={**params, "decision": "logout"})
    assert forged.status_code == 400 and _signed_in(flow)
    token = csrf_token_from(page.get_data(as_text=True))
    stay = flow.browser.post(
        "/oauth/logout", data={**params, "decision": "stay", "csrf_token": token}
    )
    assert stay.status_code == 303 and _signed_in(flow)
    confirmed = flow.browser.post(
        "/oauth/logout", data={**params, "decision": "logout", "csrf_token": token}
    )
    assert confirmed.status_code == 303
    assert query(confirmed.headers["Location"]) == {"state": "xyz"}
    assert not _signed_in(flow)


def test_hint_for_another_user_asks_first(app, client):
    flow = _flow(app, client)
    id_token = flow.tokens()["id_token"]
    flow.auth.create_user("bob@example.com")
    flow.auth.login("bob@example.com")
    page = _logout(flow, id_token_hint=id_token, post_logout_redirect_uri=BACK)
    assert page.status_code == 200 and "another account" in page.get_data(as_text=True)
    assert _signed_in(flow)


def test_without_a_redirect_our_own_signed_out_page(app, client):
    flow = _flow(app, client)
    id_token = flow.tokens()["id_token"]
    response = _logout(flow, id_token_hint=id_token)
    assert response.status_code == 200 and "You are signed out" in response.get_data(as_text=True)
    assert not _signed_in(flow)
    # nobody signed in any more, no hint: nothing to confirm
    again = _logout(flow)
    assert again.status_code == 200 and "You are signed out" in again.get_data(as_text=True)


def test_refresh_tokens_survive_logout_by_default(app, client):
    flow = _flow(app, client)
    tokens = flow.tokens()
    _logout(flow, id_token_hint=tokens["id_token"])
    assert flow.refresh(tokens["refresh_token"]).status_code == 200


def test_client_choosing_logout_revokes_tokens(app, client):
    flow = _flow(app, client, metadata={"logout_revokes_tokens": True})
    tokens = flow.tokens()
    response = _logout(flow, id_token_hint=tokens["id_token"], post_logout_redirect_uri=BACK)
    assert response.status_code == 303
    refused = flow.refresh(tokens["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    with app.app_context():
        assert OAuthSession.get().revoked_reason == "logout"
        event = AuditEvent.get(AuditEvent.event_type == "logout.tokens_revoked")
        assert event.client_id == flow.client_id


def test_bad_parameters_answer_400_never_500(app, client):
    flow = _flow(app, client)
    for query_string in (
        "client_id=nope",
        "client_id=a&client_id=b",
        "id_token_hint=" + "a" * 9000,
        "client_id=%00",
        "id_token_hint=a.b.c",
    ):
        response = flow.browser.get("/oauth/logout?" + query_string)
        assert response.status_code == 400, query_string
    assert _signed_in(flow)
