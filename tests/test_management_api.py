"""The management REST API /api/v1: its bearer tokens, clients, problem details, ETags and
audit, through real client-credentials tokens from /oauth/token (SQLite and PostgreSQL)."""

from __future__ import annotations

import jsonschema
import pytest

from oauth.api import registry
from oauth.registry import apis, client_grants, clients, management_api
from oauth.storage.models import Client
from tests.m2m_helpers import cc_token, setup_m2m
from tests.management_api_helpers import ManagementCaller, assert_problem, events
from tests.oauth_helpers import basic_auth_header

MACHINE = {"name": "Shop", "grant_types": ["client_credentials"]}


@pytest.fixture
def mgmt_app(make_app):
    return make_app(MANAGEMENT_API=True)


@pytest.fixture
def caller(mgmt_app):
    return ManagementCaller(mgmt_app, mgmt_app.test_client())


def test_builtin_api_exists_at_start_up_with_every_scope(mgmt_app):
    with mgmt_app.app_context():
        api = apis.get_api("http://127.0.0.1:5000/api/v1")
        assert api is not None and set(management_api.SCOPES) <= set(api.scope_values)
        # idempotent: a second start (another worker) changes nothing
        assert management_api.ensure().id == api.id
        assert len(apis.list_apis()) == 1


def test_flask_apis_grant_gives_a_machine_client_access(mgmt_app):
    runner, http = mgmt_app.test_cli_runner(), mgmt_app.test_client()
    with mgmt_app.app_context():
        client, secret = clients.create_client("Bot", [], grant_types=["client_credentials"])
    result = runner.invoke(
        args=["apis", "grant", client.client_id, "http://127.0.0.1:5000/api/v1",
              "--scope", "clients:read", "--scope", "audit:read"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    token = cc_token(
        http, client.client_id, secret, audience="http://127.0.0.1:5000/api/v1"
    ).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/api/v1/clients", headers=headers).status_code == 200
    assert_problem(http.get("/api/v1/users", headers=headers), 403)


def test_missing_and_bad_tokens_are_401_invalid_token(mgmt_app, auth):
    http = mgmt_app.test_client()
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        response = http.get("/api/v1/clients", headers=headers)
        assert_problem(response, 401)
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # a signed-in admin's browser (cookies only) gets nothing either
    auth.client = http
    auth.create_user("root@example.com", "correct horse", is_admin=True)
    auth.login("root@example.com", "correct horse")
    assert http.get("/settings/profile").status_code == 200  # the cookie session works
    assert_problem(http.get("/api/v1/clients"), 401)
    assert_problem(http.post("/api/v1/users", json={"email": "x@example.com"}), 401)


def test_tokens_for_another_api_or_of_a_deleted_client_are_refused(mgmt_app):
    http = mgmt_app.test_client()
    client_id, secret = setup_m2m(mgmt_app)  # granted https://api.example.com only
    other = cc_token(http, client_id, secret, audience="https://api.example.com")
    other_token = other.get_json()["access_token"]
    response = http.get("/api/v1/clients", headers={"Authorization": f"Bearer {other_token}"})
    assert "is not for http://127.0.0.1:5000/api/v1" in assert_problem(response, 401)["detail"]

    bot = ManagementCaller(mgmt_app, http)
    assert bot.get("/clients").status_code == 200
    with mgmt_app.app_context():
        clients.delete_client(Client.get_by_id(bot.client_id))
    assert_problem(bot.get("/clients"), 401)


def test_revoked_token_is_refused(caller):
    http = caller.http
    response = http.post(
        "/oauth/revoke",
        data={"token": caller.token},
        headers=basic_auth_header(caller.client_id, caller.secret),
    )
    assert response.status_code == 200
    assert_problem(caller.get("/clients"), 401)


def test_scopes_are_enforced_per_operation(mgmt_app):
    reader = ManagementCaller(mgmt_app, mgmt_app.test_client(), scopes=["clients:read"])
    assert reader.get("/clients").status_code == 200
    response = reader.post("/clients", json={"name": "Nope"})
    body = assert_problem(response, 403)
    assert "clients:write" in body["detail"]
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert_problem(reader.post("/users", json={"email": "a@example.com"}), 403)
    with mgmt_app.app_context():
        assert Client.select().count() == 1  # nothing was created


def test_client_secret_is_returned_on_create_and_rotate_only(caller, mgmt_app):
    response = caller.post(
        "/clients",
        json={"name": "Shop", "redirect_uris": ["https://shop.example/cb"]},
    )
    assert response.status_code == 201
    created = response.get_json()
    secret = created["client_secret"]
    assert secret and created["client_type"] == "confidential"
    client_id = created["client_id"]
    read = caller.get(f"/clients/{client_id}")
    assert read.status_code == 200 and "client_secret" not in read.get_json()
    assert secret not in read.get_data(as_text=True)
    assert all("client_secret" not in row for row in caller.walk("/clients", 10))

    rotated = caller.post(f"/clients/{client_id}/rotate-secret", json={})
    assert rotated.status_code == 200
    new_secret = rotated.get_json()["client_secret"]
    assert new_secret != secret
    with mgmt_app.app_context():
        client = clients.get_client(client_id)
        assert client.check_client_secret(new_secret)
        assert not client.check_client_secret(secret)
    public = caller.post("/clients", json={"name": "SPA", "public": True,
                                           "redirect_uris": ["https://spa.example/cb"]})  # fmt: skip
    assert public.status_code == 201 and public.get_json()["client_secret"] is None
    public_id = public.get_json()["client_id"]
    assert_problem(caller.post(f"/clients/{public_id}/rotate-secret", json={}), 409)


def test_patch_and_delete_honour_if_match(caller, mgmt_app):
    client_id = caller.post("/clients", json=MACHINE).get_json()["client_id"]
    read = caller.get(f"/clients/{client_id}")
    etag = read.headers["ETag"]
    assert etag.startswith('"')

    stale = caller.patch(f"/clients/{client_id}", json={"name": "X"}, headers={"If-Match": '"x"'})
    assert_problem(stale, 412)
    changed = caller.patch(f"/clients/{client_id}", json={"name": "Shop 2"},
                           headers={"If-Match": etag})  # fmt: skip
    assert changed.status_code == 200 and changed.get_json()["name"] == "Shop 2"
    assert changed.headers["ETag"] != etag
    # the old ETag no longer matches: nothing is deleted
    assert_problem(caller.delete(f"/clients/{client_id}", headers={"If-Match": etag}), 412)
    gone = caller.delete(f"/clients/{client_id}", headers={"If-Match": changed.headers["ETag"]})
    assert gone.status_code == 204
    assert_problem(caller.get(f"/clients/{client_id}"), 404)


def test_bad_input_is_a_problem_never_a_500(caller, mgmt_app):
    body = assert_problem(caller.post("/clients", json={"name": "A", "colour": "red"}), 422)
    assert body["errors"][0]["loc"] == ["body", "colour"]
    assert_problem(caller.post("/clients", json={"name": 5}), 422)
    assert_problem(caller.post("/clients", json={"name": "A\u0000"}), 422)
    assert_problem(
        caller.call("POST", "/clients", data="name=A",
                    headers={"Content-Type": "application/x-www-form-urlencoded"}),
        415,
    )  # fmt: skip
    assert_problem(
        caller.call("POST", "/clients", data="{", headers={"Content-Type": "application/json"}),
        400,
    )
    assert_problem(caller.post("/clients", json={"name": "A", "redirect_uris": ["nope"]}), 422)
    assert_problem(caller.get("/clients?cursor=garbage"), 400)
    assert_problem(caller.get("/clients?limit=0"), 400)
    assert_problem(caller.get("/clients/no-such-client"), 404)
    assert_problem(caller.get("/clients/%00"), 404)
    assert_problem(caller.get("/no-such-thing"), 404)
    not_allowed = caller.call("PUT", "/clients")
    assert_problem(not_allowed, 405)
    assert "GET" in not_allowed.headers["Allow"]
    with mgmt_app.app_context():
        assert Client.select().count() == 1  # only the caller


def test_every_call_is_audited_with_the_client_as_actor(caller, mgmt_app):
    client_id = caller.post("/clients", json=MACHINE).get_json()["client_id"]
    caller.patch(f"/clients/{client_id}", json={"name": "Shop 2"})
    caller.get(f"/clients/{client_id}")
    (created,) = [e for e in events(mgmt_app, "client.created") if e.client_id == client_id]
    (updated,) = events(mgmt_app, "client.updated")
    for event in (created, updated):
        assert event.details["actor_type"] == "client"
        assert event.details["actor_client_id"] == caller.client_id
    reads = events(mgmt_app, "management_api.read")
    assert [(e.client_id, e.details["operation"], e.details["target"]) for e in reads] == [
        (caller.client_id, "get_client", client_id)
    ]
    listed = caller.get(f"/audit-events?actor={caller.client_id}&event_type=client.updated")
    assert [e["id"] for e in listed.get_json()["data"]] == [updated.id]


def test_openapi_document_is_valid_and_covers_every_operation(mgmt_app):
    http = mgmt_app.test_client()
    document = http.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    operations = [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]
    assert len(operations) == len(registry.operations) >= 30
    for method, path, op in operations:
        assert op["security"][0]["oauth2"][0] in management_api.SCOPES, (method, path)
        assert any(code.startswith("2") for code in op["responses"]), (method, path)
        assert "401" in op["responses"] and "403" in op["responses"]
        if method in ("post", "patch") and "requestBody" in op:
            assert "422" in op["responses"] and "415" in op["responses"]
    create = document["paths"]["/api/v1/users"]["post"]["requestBody"]
    schema = document["components"]["schemas"]["UserCreate"]
    assert create["content"]["application/json"]["schema"]["$ref"].endswith("/UserCreate")
    assert schema["additionalProperties"] is False
    jsonschema.Draft202012Validator.check_schema(schema)


def test_grants_can_be_made_for_the_builtin_api_through_the_api(caller, mgmt_app):
    with mgmt_app.app_context():
        bot, secret = clients.create_client("Bot 2", [], grant_types=["client_credentials"])
        api_id = management_api.ensure().id
    made = caller.post("/client-grants", json={"client_id": bot.client_id, "api_id": api_id,
                                               "scopes": ["keys:read"]})  # fmt: skip
    assert made.status_code == 201
    token = cc_token(caller.http, bot.client_id, secret, audience=caller.identifier)
    headers = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    assert caller.http.get("/api/v1/keys", headers=headers).status_code == 200
    assert_problem(caller.http.get("/api/v1/clients", headers=headers), 403)
    assert_problem(caller.delete(f"/apis/{api_id}"), 409)
    with mgmt_app.app_context():
        assert client_grants.get_grant(bot, apis.get_api_by_id(api_id)) is not None


def test_deeply_nested_or_unstorable_json_is_refused(caller, mgmt_app):
    deep: dict = {}
    for _ in range(40):
        deep = {"a": deep}
    body = assert_problem(caller.post("/clients", json={**MACHINE, "metadata": deep}), 422)
    assert body["errors"][0]["type"] == "too_deep"
    surrogate = '{"name": "\\ud800", "grant_types": ["client_credentials"]}'
    response = caller.call(
        "POST", "/clients", data=surrogate, headers={"Content-Type": "application/json"}
    )
    assert assert_problem(response, 422)["errors"][0]["type"] == "string_unstorable"
    with mgmt_app.app_context():
        assert Client.select().count() == 1
