"""Who may introspect which token (RFC 7662, issue 9 item 11): the client a token was issued
to, and the resource server of an API named in an access token's ``aud``. Everyone else, a
self-registered client above all, gets ``{"active": false}`` and learns nothing."""

from __future__ import annotations

import pytest

from oauth.registry import apis, clients, resource_servers
from oauth.storage.models import AuditEvent
from tests.m2m_helpers import cc_token, setup_m2m
from tests.oauth_helpers import Flow, make_client
from tests.oauth_helpers import basic_auth_header as basic

API = "https://api.example/"
OTHER_API = "https://other.example/"
INACTIVE = {"active": False}


def introspect(http, credentials, token: str) -> dict:
    response = http.post("/oauth/introspect", data={"token": token}, headers=basic(*credentials))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def link(app, identifier: str, client_id: str | None) -> None:
    with app.app_context():
        api = apis.get_api(identifier) or apis.create_api(identifier, identifier)
        resource_servers.set_resource_server(
            api, clients.get_client(client_id) if client_id else None
        )


@pytest.fixture
def app(make_app):
    return make_app(ALLOW_DYNAMIC_REGISTRATION=True)


@pytest.fixture
def issued(flow, app) -> dict:
    """Alice's tokens, issued to the flow's app for API."""
    link(app, API, None)
    return flow.tokens(resource=API)


def test_own_tokens_are_active(flow, issued):
    own = (flow.client_id, flow.secret)
    for token in (issued["access_token"], issued["refresh_token"]):
        result = introspect(flow.browser, own, token)
        assert result["active"] is True and result["client_id"] == flow.client_id
        assert result["username"] == "alice@example.com"


def test_another_clients_tokens_are_inactive(flow, app, issued):
    other = make_client(app, name="Other App")
    for token in (issued["access_token"], issued["refresh_token"]):
        assert introspect(flow.browser, other, token) == INACTIVE
    # a client that may *call* the API (a client grant) is not its resource server either
    consumer = setup_m2m(app, identifier=API, name="Consumer")
    assert introspect(flow.browser, consumer, issued["access_token"]) == INACTIVE


def test_the_resource_server_in_aud_sees_access_tokens_only(flow, app, issued):
    server = make_client(app, name="API server")
    assert introspect(flow.browser, server, issued["access_token"]) == INACTIVE
    link(app, API, server[0])
    result = introspect(flow.browser, server, issued["access_token"])
    assert result["active"] is True and result["aud"] == API
    assert result["username"] == "alice@example.com"
    # a refresh token is only ever for its own client
    assert introspect(flow.browser, server, issued["refresh_token"]) == INACTIVE
    # the server of another API sees nothing; unlinking takes the right away
    elsewhere = make_client(app, name="Elsewhere")
    link(app, OTHER_API, elsewhere[0])
    assert introspect(flow.browser, elsewhere, issued["access_token"]) == INACTIVE
    link(app, API, None)
    assert introspect(flow.browser, server, issued["access_token"]) == INACTIVE
    with app.app_context():
        changes = AuditEvent.select().where(AuditEvent.event_type == "api.updated")
        assert {"identifier": API, "resource_server": server[0]} in [e.details for e in changes]


def test_default_audience_tokens_are_for_their_client_only(flow, app):
    issued = flow.tokens()  # aud = DEFAULT_AUDIENCE, no API
    server = make_client(app, name="API server")
    link(app, API, server[0])
    assert introspect(flow.browser, server, issued["access_token"]) == INACTIVE
    assert introspect(flow.browser, (flow.client_id, flow.secret), issued["access_token"])["active"]


def test_machine_tokens(app, client):
    machine = setup_m2m(app, identifier=API)
    token = cc_token(client, *machine, audience=API).get_json()["access_token"]
    server = make_client(app, name="API server")
    assert introspect(client, machine, token)["active"] is True  # its own
    assert introspect(client, server, token) == INACTIVE
    link(app, API, server[0])
    assert introspect(client, server, token)["client_id"] == machine[0]
    other_machine = setup_m2m(app, identifier=API, name="Other machine")
    assert introspect(client, other_machine, token) == INACTIVE


def test_a_self_registered_client_cannot_read_another_users_email(flow, app, issued):
    registered = flow.browser.post(
        "/oauth/register",
        json={"redirect_uris": ["https://mcp.example/callback"], "client_name": "Curious"},
    )
    assert registered.status_code == 201, registered.get_data(as_text=True)
    document = registered.get_json()
    stranger = (document["client_id"], document["client_secret"])
    for token in (issued["access_token"], issued["refresh_token"]):
        response = flow.browser.post(
            "/oauth/introspect", data={"token": token}, headers=basic(*stranger)
        )
        assert response.status_code == 200
        assert response.get_json() == INACTIVE
        assert b"alice" not in response.get_data()
    # even with its own user: Alice's token for another app stays closed to it
    own = Flow(app, flow.browser, client_id=stranger[0], secret=stranger[1])
    own.redirect_uri = "https://mcp.example/callback"
    mine = own.tokens()
    assert introspect(flow.browser, stranger, mine["access_token"])["active"] is True
    assert introspect(flow.browser, stranger, issued["access_token"]) == INACTIVE


def test_a_public_client_cannot_be_a_resource_server(app):
    public_id, _ = make_client(app, public=True, name="SPA")
    with app.app_context():
        api = apis.create_api(API, "Example API")
        with pytest.raises(apis.ApiError, match="public"):
            resource_servers.set_resource_server(api, clients.get_client(public_id))


def test_cli_links_and_unlinks(app, runner):
    server_id, _ = make_client(app, name="API server")
    with app.app_context():
        apis.create_api(API, "Example API")
    assert runner.invoke(args=["apis", "resource-server", API]).output.strip() == "(none)"
    result = runner.invoke(args=["apis", "resource-server", API, server_id])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["apis", "resource-server", API]).output.strip() == server_id
    listing = runner.invoke(args=["apis", "list"]).output
    assert f"resource server: {server_id}" in listing
    result = runner.invoke(args=["apis", "resource-server", API, "--unlink"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert apis.get_api(API).resource_server_id is None
    both = runner.invoke(args=["apis", "resource-server", API, server_id, "--unlink"])
    assert both.exit_code == 1
