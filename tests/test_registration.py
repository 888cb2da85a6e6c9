"""Dynamic client registration (RFC 7591), its management API (RFC 7592), and the purge CLI."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest

from oauth.security import sha256_hex
from oauth.storage.models import AuditEvent, Client, Consent, OAuthSession, utcnow
from tests.oauth_helpers import Flow, make_client

REDIRECT = "https://mcp.example/callback"


@pytest.fixture
def reg_app(make_app):
    return make_app(ALLOW_DYNAMIC_REGISTRATION=True)


@pytest.fixture
def http(reg_app):
    return reg_app.test_client()


def register(http, **metadata):
    payload = {"redirect_uris": [REDIRECT], **metadata}
    return http.post("/oauth/register", json=payload)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def error_of(response) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]


def dynamic_event(event_type: str) -> AuditEvent:
    """The one audit event of this type (recorded once, by the client service)."""
    events = list(AuditEvent.select().where(AuditEvent.event_type == event_type))
    assert len(events) == 1, events
    return events[0]


def client_count(app) -> int:
    with app.app_context():
        return Client.select().count()


# --- switched off -----------------------------------------------------------------------------


def test_registration_is_disabled_by_default(app, client):
    response = client.post("/oauth/register", json={"redirect_uris": [REDIRECT]})
    assert response.status_code == 403
    assert response.get_json() == {
        "error": "access_denied",
        "error_description": "Dynamic client registration is disabled.",
    }
    assert client.get("/oauth/register/anything").status_code == 403
    assert client_count(app) == 0


def test_discovery_lists_the_endpoints(app, client, reg_app, http):
    document = client.get("/.well-known/openid-configuration").get_json()
    issuer = app.config["ISSUER"]
    assert document["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert document["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert "registration_endpoint" not in document
    enabled = http.get("/.well-known/oauth-authorization-server").get_json()
    assert enabled["registration_endpoint"] == f"{issuer}/oauth/register"
    assert enabled["revocation_endpoint"] == f"{issuer}/oauth/revoke"


# --- registering ------------------------------------------------------------------------------


def test_public_registration_end_to_end(reg_app, http):
    response = register(
        http,
        client_name="MCP Inspector",
        token_endpoint_auth_method="none",
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        scope="openid email",
        software_id="mcp-inspector",
        software_version="1.2.3",
        contacts=["ops@mcp.example"],
        jwks_uri="https://mcp.example/jwks",  # unsupported: ignored
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    info = response.get_json()
    client_id = info["client_id"]
    assert "client_secret" not in info and "client_secret_expires_at" not in info
    assert info["client_name"] == "MCP Inspector"
    assert info["token_endpoint_auth_method"] == "none"
    assert info["redirect_uris"] == [REDIRECT]
    assert info["grant_types"] == ["authorization_code", "refresh_token"]
    assert info["response_types"] == ["code"]
    assert info["scope"] == "openid email"
    assert info["software_id"] == "mcp-inspector" and info["software_version"] == "1.2.3"
    assert info["contacts"] == ["ops@mcp.example"]
    assert "jwks_uri" not in info
    assert isinstance(info["client_id_issued_at"], int)
    assert len(info["registration_access_token"]) >= 43
    issuer = reg_app.config["ISSUER"]
    assert info["registration_client_uri"] == f"{issuer}/oauth/register/{client_id}"
    with reg_app.app_context():
        row = Client.get_by_id(client_id)
        assert row.registration_type == "dynamic"
        assert row.is_public and row.client_secret_hash is None
        assert row.registration_access_token_hash == sha256_hex(info["registration_access_token"])
        assert row.metadata["software_id"] == "mcp-inspector"
        event = dynamic_event("client.created")
        assert event.client_id == client_id
        for recorded in AuditEvent.select():
            assert info["registration_access_token"] not in str(recorded.details)

    flow = Flow(reg_app, http, client_id=client_id, redirect_uri=REDIRECT)
    flow.auth.create_user()
    flow.auth.login()
    location, page = flow.consent_page(flow.authorize())
    html = page.get_data(as_text=True)
    assert "Self-registered app" in html
    assert "This application registered itself. Only continue if you trust it." in html
    response = flow.decide(location, page)
    code = response.headers["Location"].split("code=")[1].split("&")[0]
    tokens = flow.exchange(code).get_json()
    assert tokens["access_token"] and tokens["refresh_token"]
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    with reg_app.app_context():
        assert Client.get_by_id(client_id).last_used_at is not None


def test_confidential_registration_end_to_end(reg_app, http):
    response = register(http, client_name="Web App", client_uri="https://mcp.example")
    assert response.status_code == 201
    info = response.get_json()
    assert info["token_endpoint_auth_method"] == "client_secret_basic"  # RFC 7591 default
    assert info["grant_types"] == ["authorization_code", "refresh_token"]
    assert info["client_secret_expires_at"] == 0
    assert len(info["client_secret"]) >= 43
    assert info["client_uri"] == "https://mcp.example"
    with reg_app.app_context():
        row = Client.get_by_id(info["client_id"])
        assert row.client_secret_hash == sha256_hex(info["client_secret"])
        assert row.last_used_at is None

    flow = Flow(reg_app, http, client_id=info["client_id"], secret=info["client_secret"])
    flow.redirect_uri = REDIRECT
    flow.auth.create_user()
    flow.auth.login()
    tokens = flow.tokens()
    assert tokens["access_token"]
    code, _ = flow.get_code()
    assert flow.exchange(code, auth="post").status_code == 200
    with reg_app.app_context():
        assert Client.get_by_id(info["client_id"]).last_used_at is not None


def test_defaults_for_a_minimal_request(reg_app, http):
    info = register(http).get_json()
    assert info["client_name"] == "Unnamed app"
    assert info["grant_types"] == ["authorization_code", "refresh_token"]


def test_manual_clients_carry_no_self_registered_notice(app, client):
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    _, page = flow.consent_page(flow.authorize())
    assert "Self-registered app" not in page.get_data(as_text=True)


@pytest.mark.parametrize(
    "metadata",
    [
        {"redirect_uris": ["javascript:alert(1)"]},
        {"redirect_uris": ["https://mcp.example/cb#fragment"]},
        {"redirect_uris": []},
        {"redirect_uris": "https://mcp.example/callback"},
    ],
)
def test_bad_redirect_uris(reg_app, http, metadata):
    response = http.post("/oauth/register", json=metadata)
    assert error_of(response) == (400, "invalid_redirect_uri")
    assert response.get_json()["error_description"]
    assert client_count(reg_app) == 0


@pytest.mark.parametrize(
    "metadata",
    [
        {"grant_types": ["client_credentials"]},
        {"grant_types": ["authorization_code", "client_credentials"]},
        {"grant_types": ["implicit"]},
        {"grant_types": ["refresh_token"]},
        {"grant_types": "authorization_code"},
        {"response_types": ["token"]},
        {"response_types": ["code", "id_token"]},
        {"token_endpoint_auth_method": "private_key_jwt"},
        {"client_name": 42},
        {"client_name": "x" * 500},
        {"client_uri": "javascript:alert(1)"},
        {"logo_uri": "http://evil.example/logo.png"},
        {"contacts": "ops@mcp.example"},
        {"scope": ["openid"]},
        {"software_id": "a\nb"},
    ],
)
def test_bad_metadata(reg_app, http, metadata):
    response = register(http, **metadata)
    assert error_of(response) == (400, "invalid_client_metadata")
    assert client_count(reg_app) == 0


def test_body_must_be_a_json_object(reg_app, http):
    form = http.post("/oauth/register", data={"redirect_uris": REDIRECT})
    assert error_of(form) == (400, "invalid_client_metadata")
    broken = http.post("/oauth/register", data="{nope", content_type="application/json")
    assert error_of(broken) == (400, "invalid_client_metadata")
    array = http.post("/oauth/register", json=[REDIRECT])
    assert error_of(array) == (400, "invalid_client_metadata")
    assert client_count(reg_app) == 0


def test_registrations_are_rate_limited_per_ip(make_app):
    app = make_app(ALLOW_DYNAMIC_REGISTRATION=True, REGISTRATION_RATE_LIMIT="2 per hour")
    http = app.test_client()
    assert register(http).status_code == 201
    assert register(http).status_code == 201
    response = register(http)
    assert response.status_code == 429
    body = response.get_json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] and body["error_description"]
    assert client_count(app) == 2


# --- RFC 7592 -------------------------------------------------------------------------------


@pytest.fixture
def registered(http):
    info = register(http, client_name="Managed", scope="email").get_json()
    return info


def test_read_with_the_registration_token(reg_app, http, registered):
    response = http.get(
        f"/oauth/register/{registered['client_id']}",
        headers=bearer(registered["registration_access_token"]),
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    info = response.get_json()
    assert info["client_id"] == registered["client_id"]
    assert info["client_name"] == "Managed" and info["scope"] == "email"
    assert info["registration_client_uri"] == registered["registration_client_uri"]
    assert "client_secret" not in info


def test_bad_registration_tokens_are_401(reg_app, http, registered):
    path = f"/oauth/register/{registered['client_id']}"
    other = register(http, client_name="Other").get_json()
    manual_id, _ = make_client(reg_app)
    attempts = [
        http.get(path),
        http.get(path, headers=bearer("wrong")),
        http.get(
            path, headers={"Authorization": "Basic " + registered["registration_access_token"]}
        ),
        http.get(path, headers=bearer(other["registration_access_token"])),
        http.get(
            "/oauth/register/unknown", headers=bearer(registered["registration_access_token"])
        ),
        http.get(f"/oauth/register/{manual_id}", headers=bearer("anything")),
        http.put(path, json={"client_id": registered["client_id"]}, headers=bearer("wrong")),
        http.delete(path, headers=bearer("wrong")),
    ]
    for response in attempts:
        assert error_of(response) == (401, "invalid_token")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client_count(reg_app) == 3


def test_update_replaces_the_metadata(reg_app, http, registered):
    path = f"/oauth/register/{registered['client_id']}"
    token = registered["registration_access_token"]
    response = http.put(
        path,
        json={
            "client_id": registered["client_id"],
            "client_secret": registered["client_secret"],
            "client_name": "Renamed",
            "redirect_uris": ["https://mcp.example/new"],
            "grant_types": ["authorization_code"],
            "software_version": "2.0",
        },
        headers=bearer(token),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    info = response.get_json()
    assert info["client_name"] == "Renamed"
    assert info["redirect_uris"] == ["https://mcp.example/new"]
    assert info["grant_types"] == ["authorization_code"]
    assert info["software_version"] == "2.0"
    assert "scope" not in info  # replaced, not merged
    assert "client_secret" not in info
    with reg_app.app_context():
        row = Client.get_by_id(registered["client_id"])
        assert row.name == "Renamed" and row.redirect_uris == ["https://mcp.example/new"]
        assert row.check_client_secret(registered["client_secret"])
        assert dynamic_event("client.updated").client_id == registered["client_id"]
    assert http.get(path, headers=bearer(token)).get_json()["client_name"] == "Renamed"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": None}, "invalid_client_metadata"),
        ({"client_id": "someone-else"}, "invalid_client_metadata"),
        ({"client_secret": "wrong"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
        ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
    ],
)
def test_bad_updates_change_nothing(reg_app, http, registered, change, error):
    payload = {"client_id": registered["client_id"], "redirect_uris": [REDIRECT], **change}
    payload = {k: v for k, v in payload.items() if v is not None}
    response = http.put(
        f"/oauth/register/{registered['client_id']}",
        json=payload,
        headers=bearer(registered["registration_access_token"]),
    )
    assert error_of(response) == (400, error)
    with reg_app.app_context():
        assert Client.get_by_id(registered["client_id"]).name == "Managed"


def test_public_client_may_not_become_confidential(reg_app, http):
    info = register(http, token_endpoint_auth_method="none").get_json()
    path = f"/oauth/register/{info['client_id']}"
    headers = bearer(info["registration_access_token"])
    payload = {"client_id": info["client_id"], "redirect_uris": [REDIRECT]}
    switched = http.put(
        path, json={**payload, "token_endpoint_auth_method": "client_secret_post"}, headers=headers
    )
    assert error_of(switched) == (400, "invalid_client_metadata")
    # omitting the method keeps the current one
    kept = http.put(path, json={**payload, "client_name": "Still public"}, headers=headers)
    assert kept.status_code == 200
    assert kept.get_json()["token_endpoint_auth_method"] == "none"
    form = http.put(path, data={"client_id": info["client_id"]}, headers=headers)
    assert error_of(form) == (400, "invalid_client_metadata")


def test_delete_removes_the_client_and_its_tokens(reg_app, http, registered):
    flow = Flow(
        reg_app, http, client_id=registered["client_id"], secret=registered["client_secret"]
    )
    flow.redirect_uri = REDIRECT
    flow.auth.create_user()
    flow.auth.login()
    tokens = flow.tokens()
    path = f"/oauth/register/{registered['client_id']}"
    headers = bearer(registered["registration_access_token"])
    response = http.delete(path, headers=headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert error_of(http.get(path, headers=headers)) == (401, "invalid_token")
    assert flow.userinfo(tokens["access_token"]).status_code == 401
    with reg_app.app_context():
        assert Client.get_or_none(Client.client_id == registered["client_id"]) is None
        assert OAuthSession.select().count() == 0 and Consent.select().count() == 0
        assert dynamic_event("client.deleted").client_id == registered["client_id"]


# --- flask clients purge --------------------------------------------------------------------


def test_purge_unused_dynamic_clients(reg_app, http):
    ids = {name: register(http, client_name=name).get_json()["client_id"] for name in "ABCD"}
    manual_id, _ = make_client(reg_app, name="Manual")
    old = utcnow() - dt.timedelta(days=100)
    recent = utcnow() - dt.timedelta(days=2)
    with reg_app.app_context():
        # A: never used, old; B: used long ago; C: old but used recently; D: new and unused
        Client.update(created_at=old).where(
            Client.client_id.in_([ids["A"], ids["B"], ids["C"], manual_id])
        ).execute()
        Client.update(last_used_at=old).where(Client.client_id == ids["B"]).execute()
        Client.update(last_used_at=recent).where(Client.client_id == ids["C"]).execute()
    runner = reg_app.test_cli_runner()

    dry = runner.invoke(args=["clients", "purge", "--unused-days", "30", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "2" in dry.output.splitlines()[0]
    assert ids["A"] in dry.output and ids["B"] in dry.output
    assert ids["C"] not in dry.output and ids["D"] not in dry.output
    assert manual_id not in dry.output
    assert client_count(reg_app) == 5

    # Not a terminal and no --yes: refused, nothing deleted.
    refused = runner.invoke(args=["clients", "purge", "--unused-days", "30"])
    assert refused.exit_code == 1 and "--yes" in refused.output, refused.output
    assert client_count(reg_app) == 5

    result = runner.invoke(args=["clients", "purge", "--unused-days", "30", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Purged 2" in result.output
    with reg_app.app_context():
        left = {row.client_id for row in Client.select()}
    assert left == {ids["C"], ids["D"], manual_id}
    with reg_app.app_context():
        purged = AuditEvent.select().where(AuditEvent.event_type == "client.purged")
        assert sorted(event.client_id for event in purged) == sorted([ids["A"], ids["B"]])

    again = runner.invoke(args=["clients", "purge", "--unused-days", "30"])  # nothing to ask
    assert again.exit_code == 0 and "Purged 0" in again.output


def test_purge_needs_a_positive_number_of_days(reg_app):
    runner = reg_app.test_cli_runner()
    for args in ([], ["--unused-days", "0"], ["--unused-days", "soon"]):
        result = runner.invoke(args=["clients", "purge", *args])
        assert result.exit_code == 1
        assert "Traceback" not in result.output


def _authorize_query(client_id: str, **overrides) -> str:
    params = {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
        "state": "s",
        **overrides,
    }
    return "/oauth/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})


@pytest.mark.parametrize(
    "overrides",
    [
        {"response_type": "token"},
        {"scope": "email admin:everything"},
        {"code_challenge_method": "plain"},
        {"prompt": "none"},  # nobody signed in: login_required, without any interaction
    ],
)
def test_a_self_registered_client_gets_no_silent_error_redirects(http, overrides):
    """RFC 9700 §4.11.2: no redirect to an unvetted URI without user interaction."""
    client_id = register(http, client_name="Anyone").get_json()["client_id"]
    response = http.get(_authorize_query(client_id, **overrides))
    assert 400 <= response.status_code < 500
    assert "Location" not in response.headers
    assert REDIRECT not in response.get_data(as_text=True)


def test_a_manual_client_still_gets_its_error_redirects(reg_app, http):
    client_id, _ = make_client(reg_app, redirect_uris=(REDIRECT,))
    response = http.get(_authorize_query(client_id, response_type="token"))
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT)
    assert "error=unsupported_response_type" in response.headers["Location"]
