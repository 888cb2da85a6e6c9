"""What the second factor changes in the protocol (issue 10): aal/amr in access tokens, acr in
ID tokens, acr_values=aal2 and require_mfa clients, prompt=none; admin and CLI resets."""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

from oauth.registry import clients
from oauth.storage.models import AuditEvent, Client, TotpFactor
from tests.conftest import csrf_token_from
from tests.mfa_helpers import code_at, enrol, recovery_codes_from, second_step, secret_from
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client, query


def _flow(app, browser, **client_kwargs) -> Flow:
    client_id, secret = make_client(app, **client_kwargs)
    flow = Flow(app, browser, client_id=client_id, secret=secret)
    flow.auth.create_user()
    return flow


def _tokens_after_code(flow: Flow, location: str) -> dict:
    """From a consent location (or the redirect to the client) to the token response."""
    if location.startswith("/oauth/consent"):
        page = flow.browser.get(location)
        if page.status_code == 200:
            location = flow.decide(location, page).headers["Location"]
        else:
            location = page.headers["Location"]
    assert location.startswith(flow.redirect_uri), location
    response = flow.exchange(query(location)["code"])
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _claims(tokens: dict) -> tuple[dict, dict]:
    return decode_jwt_unverified(tokens["access_token"])[1], decode_jwt_unverified(
        tokens["id_token"]
    )[1]


def test_password_only_sign_in_is_aal1(app, client):
    flow = _flow(app, client)
    flow.auth.login()
    access, id_token = _claims(flow.tokens())
    assert access["aal"] == "aal1"
    assert [entry["method"] for entry in access["amr"]] == ["pwd"]
    assert id_token["acr"] == "aal1"


def test_a_sign_in_with_totp_is_aal2_in_every_token(app, client):
    flow = _flow(app, client)
    flow.auth.login()
    secret, _ = enrol(client)
    flow.auth.logout()
    flow.auth.login()
    assert second_step(client, code_at(secret)).status_code == 302
    tokens = flow.tokens()
    access, id_token = _claims(tokens)
    assert access["aal"] == "aal2"
    assert [entry["method"] for entry in access["amr"]] == ["pwd", "totp"]
    assert all(isinstance(entry["timestamp"], int) for entry in access["amr"])
    assert id_token["acr"] == "aal2"
    refreshed = flow.refresh(tokens["refresh_token"]).get_json()
    assert decode_jwt_unverified(refreshed["access_token"])[1]["aal"] == "aal2"


def test_recovery_code_sign_in_says_recovery(app, client):
    flow = _flow(app, client)
    flow.auth.login()
    _, codes = enrol(client)
    flow.auth.logout()
    flow.auth.login()
    second_step(client, codes[0])
    access, id_token = _claims(flow.tokens())
    assert [entry["method"] for entry in access["amr"]] == ["pwd", "recovery"]
    assert access["aal"] == "aal2" and id_token["acr"] == "aal2"


def test_discovery_lists_the_acr_values(client):
    document = client.get("/.well-known/openid-configuration").get_json()
    assert document["acr_values_supported"] == ["aal1", "aal2"]
    assert "acr" in document["claims_supported"]


def test_acr_values_aal2_is_met_by_a_sign_in_with_a_second_factor(app, client):
    flow = _flow(app, client)
    flow.auth.login()
    secret, _ = enrol(client)
    flow.auth.logout()
    flow.auth.login()
    second_step(client, code_at(secret))
    response = flow.authorize(acr_values="aal2")
    assert response.headers["Location"].startswith("/oauth/consent")


def test_acr_values_aal2_asks_an_aal1_user_for_the_second_step(app, client):
    flow = _flow(app, client)
    flow.auth.login()  # this browser signed in with a password only (aal1)...
    other = app.test_client()  # ...and the user set up the app on another one since
    other_auth = Flow(app, other, client_id=flow.client_id).auth
    other_auth.login()
    secret, _ = enrol(other)
    response = flow.authorize(acr_values="aal2")
    location = response.headers["Location"]
    assert location.startswith("/login/mfa?next=")
    next_path = query(location)["next"]
    assert next_path.startswith("/oauth/consent")
    step_page = client.get(location).get_data(as_text=True)
    assert "Signed in as alice@example.com" in step_page
    # The consent page does not approve before the second step, not even by a POST.
    page = client.get(next_path)
    assert page.headers["Location"].startswith("/login/mfa")
    token = csrf_token_from(step_page)
    post = client.post(next_path, data={"csrf_token": token, "decision": "approve"})
    assert post.headers["Location"].startswith("/login/mfa")
    done = second_step(client, code_at(secret), next_path=next_path)
    assert done.headers["Location"] == next_path
    access, id_token = _claims(_tokens_after_code(flow, next_path))
    assert access["aal"] == "aal2" and id_token["acr"] == "aal2"


def test_prompt_none_answers_interaction_required_without_the_second_factor(app, client):
    flow = _flow(app, client)
    flow.auth.login()
    flow.tokens()  # consent remembered
    response = flow.authorize(acr_values="aal2", prompt="none", state="s1")
    assert response.status_code == 302
    result = query(response.headers["Location"])
    assert response.headers["Location"].startswith(flow.redirect_uri)
    assert result["error"] == "interaction_required" and result["state"] == "s1"
    # Without acr_values the same silent request succeeds (aal1 is enough).
    silent = flow.authorize(prompt="none")
    assert "code" in query(silent.headers["Location"])


def test_a_user_without_a_factor_is_asked_to_enrol_by_a_require_mfa_client(app, client):
    flow = _flow(app, client, require_mfa=True)
    flow.auth.login()
    response = flow.authorize()
    location = response.headers["Location"]
    assert location.startswith("/login/mfa")
    next_path = query(location)["next"]
    enrol_page = client.get(location)
    assert enrol_page.status_code == 302
    security = enrol_page.headers["Location"]
    assert urlsplit(security).path == "/settings/security" and query(security)["next"] == next_path
    html = client.get(security).get_data(as_text=True)
    setup = client.post(
        "/settings/security/totp",
        data={"csrf_token": csrf_token_from(html), "next": next_path},
    )
    html = setup.get_data(as_text=True)
    secret = secret_from(html)
    done = client.post(
        "/settings/security/totp/confirm",
        data={"csrf_token": csrf_token_from(html), "code": code_at(secret), "next": next_path},
    )
    page = done.get_data(as_text=True)
    assert len(recovery_codes_from(page)) == 10
    assert f'href="{next_path}"' in page.replace("&amp;", "&")
    access, id_token = _claims(_tokens_after_code(flow, next_path))
    assert access["aal"] == "aal2" and id_token["acr"] == "aal2"


def test_require_mfa_from_the_cli_and_an_anonymous_browser(app, client, runner):
    result = runner.invoke(
        args=["clients", "create", "--name", "Bank", "--redirect-uri", "https://bank.example/cb",
              "--require-mfa", "--json"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["require_mfa"] is True
    flow = Flow(app, client, client_id=info["client_id"], secret=info["client_secret"],
                redirect_uri="https://bank.example/cb")  # fmt: skip
    flow.auth.create_user()
    flow.auth.login()
    secret, _ = enrol(client)
    flow.auth.logout()
    # Anonymous: sign-in first, then the second step, then consent.
    response = flow.authorize()
    login = response.headers["Location"]
    assert login.startswith("/login?")
    after_password = flow.auth.login(next=query(login)["next"])
    assert after_password.headers["Location"].startswith("/login/mfa")
    resume = query(after_password.headers["Location"])["next"]
    done = second_step(client, code_at(secret), next_path=resume)
    back = client.get(done.headers["Location"])
    access, _ = _claims(_tokens_after_code(flow, back.headers["Location"]))
    assert access["aal"] == "aal2"
    off = runner.invoke(args=["clients", "update", info["client_id"], "--no-require-mfa"])
    assert off.exit_code == 0 and "not required" in off.output
    with app.app_context():
        assert Client.get_by_id(info["client_id"]).require_mfa is False
    missing = runner.invoke(args=["clients", "update", "nope", "--require-mfa"])
    assert missing.exit_code == 1 and "Traceback" not in missing.output


def test_admin_sees_and_resets_factors(app, client, auth):
    auth.create_user("admin@example.com", is_admin=True)
    auth.create_user()
    auth.login()
    enrol(client)
    auth.logout()
    auth.login("admin@example.com")
    listing = client.get("/admin/users").get_data(as_text=True)
    row = listing.split("alice@example.com", 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge">totp</span>' in row
    with app.app_context():
        alice_id = TotpFactor.get().user_id
    detail = client.get(f"/admin/users/{alice_id}").get_data(as_text=True)
    assert "Reset second factors" in detail
    confirm = client.get(f"/admin/users/{alice_id}/reset-mfa")
    assert confirm.status_code == 200 and "Reset second factors" in confirm.get_data(as_text=True)
    assert client.post(f"/admin/users/{alice_id}/reset-mfa").status_code == 400  # no CSRF
    with app.app_context():
        assert TotpFactor.select().count() == 1
    token = csrf_token_from(confirm.get_data(as_text=True))
    done = client.post(f"/admin/users/{alice_id}/reset-mfa", data={"csrf_token": token})
    assert done.status_code == 302
    with app.app_context():
        assert TotpFactor.select().count() == 0
        event = AuditEvent.get(AuditEvent.event_type == "mfa.reset")
        assert event.user_id == alice_id and event.details["via"] == "admin"
        assert event.details["factors"] == ["totp"] and event.details["actor"]
    auth.logout()
    assert auth.login().headers["Location"] == "/"


def test_cli_reset_mfa(app, client, auth, runner):
    auth.create_user()
    auth.login()
    enrol(client)
    listed = runner.invoke(args=["users", "list"])
    assert "totp" in listed.output
    result = runner.invoke(args=["users", "reset-mfa", "Alice@Example.com", "--yes"])
    assert result.exit_code == 0 and "totp" in result.output, result.output
    with app.app_context():
        assert TotpFactor.select().count() == 0
        event = AuditEvent.get(AuditEvent.event_type == "mfa.reset")
        assert event.details["via"] == "cli"
    again = runner.invoke(args=["users", "reset-mfa", "alice@example.com"])
    assert again.exit_code == 0 and "nothing to reset" in again.output
    unknown = runner.invoke(args=["users", "reset-mfa", "bob@example.com"])
    assert unknown.exit_code == 1 and "no user" in unknown.output


def test_admin_client_form_sets_require_mfa(app, client, auth):
    auth.create_user("admin@example.com", is_admin=True)
    auth.login("admin@example.com")
    page = client.get("/admin/clients/new").get_data(as_text=True)
    assert 'name="require_mfa"' in page
    response = client.post(
        "/admin/clients/new",
        data={
            "csrf_token": csrf_token_from(page),
            "name": "Payroll",
            "redirect_uris": "https://payroll.example/cb",
            "grant_types": ["authorization_code"],
            "require_mfa": "y",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    with app.app_context():
        client_row = Client.get(Client.name == "Payroll")
        assert client_row.require_mfa is True
        clients.update_client(client_row, require_mfa=False)
        assert Client.get(Client.name == "Payroll").require_mfa is False


def test_acr_values_survive_the_anonymous_sign_in(app, client):
    flow = _flow(app, client)
    params = flow.authorize_params(acr_values="aal2")
    response = client.get("/oauth/authorize?" + urlencode(params))
    nxt = query(response.headers["Location"])["next"]
    assert "acr_values=aal2" in nxt
