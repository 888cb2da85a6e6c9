"""A client's logout settings (issue 11): set by the CLI, the admin page and dynamic
registration, checked the same way everywhere, on both databases."""

import json

from oauth.registry import clients
from oauth.storage.models import Client
from tests.conftest import AuthActions, csrf_token_from

REDIRECT = "https://app.example/callback"
BACK = "https://app.example/bye"
BACKCHANNEL = "https://app.example/backchannel"


def _client(app, client_id) -> Client:
    with app.app_context():
        return clients.get_client(client_id)


def test_cli_create_and_update(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "clients", "create", "--name", "RP", "--redirect-uri", REDIRECT,
            "--post-logout-redirect-uri", BACK, "--backchannel-logout-uri", BACKCHANNEL,
            "--backchannel-logout-session-required", "--json",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["post_logout_redirect_uris"] == [BACK]
    assert info["backchannel_logout_uri"] == BACKCHANNEL
    assert info["backchannel_logout_session_required"] is True
    client_id = info["client_id"]

    result = runner.invoke(
        args=[
            "clients",
            "update",
            client_id,
            "--logout-revokes-tokens",
            "--backchannel-logout-uri",
            "",
        ]
    )
    assert result.exit_code == 0, result.output
    client = _client(app, client_id)
    assert client.metadata == {
        "post_logout_redirect_uris": [BACK],
        "backchannel_logout_session_required": True,
        "logout_revokes_tokens": True,
    }
    for bad in (
        ["--post-logout-redirect-uri", "javascript:alert(1)"],
        ["--post-logout-redirect-uri", "http://app.example/bye"],
        ["--backchannel-logout-uri", "https://app.example/b#frag"],
        ["--backchannel-logout-uri", "ftp://app.example/b"],
    ):
        result = runner.invoke(args=["clients", "update", client_id, *bad])
        assert result.exit_code == 1 and "Error" in result.output, bad
    assert _client(app, client_id).metadata == client.metadata
    unknown = runner.invoke(args=["clients", "update", "nope", "--logout-revokes-tokens"])
    assert unknown.exit_code == 1


def test_dynamic_registration_metadata(make_app):
    app = make_app(ALLOW_DYNAMIC_REGISTRATION=True)
    http = app.test_client()
    body = {
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": [BACK],
        "backchannel_logout_uri": BACKCHANNEL,
        "backchannel_logout_session_required": True,
    }
    response = http.post("/oauth/register", json=body)
    assert response.status_code == 201, response.get_json()
    document = response.get_json()
    assert document["post_logout_redirect_uris"] == [BACK]
    assert document["backchannel_logout_uri"] == BACKCHANNEL
    assert document["backchannel_logout_session_required"] is True
    # RFC 7592 replace: omitted logout fields go away
    update = {"client_id": document["client_id"], "redirect_uris": [REDIRECT]}
    headers = {"Authorization": "Bearer " + document["registration_access_token"]}
    replaced = http.put(f"/oauth/register/{document['client_id']}", json=update, headers=headers)
    assert replaced.status_code == 200, replaced.get_json()
    assert "post_logout_redirect_uris" not in replaced.get_json()
    assert _client(app, document["client_id"]).metadata == {}
    for bad in (
        {"post_logout_redirect_uris": BACK},
        {"post_logout_redirect_uris": ["https://*.example/bye"]},
        {"backchannel_logout_uri": "http://app.example/b"},
        {"backchannel_logout_session_required": "yes"},
    ):
        refused = http.post("/oauth/register", json={"redirect_uris": [REDIRECT], **bad})
        assert refused.status_code == 400, bad
        assert refused.get_json()["error"] == "invalid_client_metadata"


def test_admin_client_form(app, client):
    auth = AuthActions(client, app)
    auth.create_user("root@example.com", is_admin=True)
    auth.login("root@example.com")
    page = client.get("/admin/clients/new")
    form = {
        "csrf_token": csrf_token_from(page.get_data(as_text=True)),
        "name": "RP",
        "redirect_uris": REDIRECT,
        "grant_types": ["authorization_code", "refresh_token"],
        "post_logout_redirect_uris": f"{BACK}\n{BACK}2",
        "backchannel_logout_uri": BACKCHANNEL,
        "logout_revokes_tokens": "y",
    }
    assert client.post("/admin/clients/new", data=form).status_code == 201
    with app.app_context():
        created = Client.get(Client.name == "RP")
    assert created.metadata == {
        "post_logout_redirect_uris": [BACK, BACK + "2"],
        "backchannel_logout_uri": BACKCHANNEL,
        "logout_revokes_tokens": True,
    }
    edit_path = f"/admin/clients/{created.client_id}"
    page = client.get(edit_path).get_data(as_text=True)
    assert BACKCHANNEL in page and "logout_revokes_tokens" not in page.split("Metadata")[-1]
    form.update(csrf_token=csrf_token_from(page), metadata='{"team": "a"}')
    form.pop("logout_revokes_tokens")
    form["backchannel_logout_uri"] = "not a url"
    assert client.post(edit_path, data=form).status_code == 400
    form["backchannel_logout_uri"] = ""
    assert client.post(edit_path, data=form).status_code == 302
    assert _client(app, created.client_id).metadata == {
        "post_logout_redirect_uris": [BACK, BACK + "2"],
        "team": "a",
    }
