"""APIs (resource servers) and client grants (oauth/apis.py) and ``flask apis``."""

from __future__ import annotations

import json

import pytest

from oauth.registry import apis, client_grants, clients
from oauth.registry.apis import ApiError, create_api
from oauth.registry.client_grants import grant
from oauth.registry.clients import create_client
from oauth.storage.models import Api, AuditEvent, ClientGrant

API = "https://api.example.com"
WEB = "https://app.example/cb"


def _m2m(name="M2M"):
    client, _ = create_client(name, [], grant_types=["client_credentials"])
    return client


def _api(identifier=API, scopes=("read:things", "write:things", "delete:things"), **kwargs):
    return create_api(identifier, "Things API", scopes, **kwargs)


def _raises(fn, *args, **kwargs) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args, **kwargs)
    assert info.value.message and str(info.value) == info.value.message
    return info.value


def _events(event_type: str) -> list[AuditEvent]:
    return list(
        AuditEvent.select().where(AuditEvent.event_type == event_type).order_by(AuditEvent.id)
    )


# --- creating APIs -------------------------------------------------------------------------


def test_create_api_defaults_and_storage(app_context):
    api = create_api(API, "  Things API  ")
    assert api.identifier == API
    assert api.name == "Things API"
    assert api.scopes == [] and api.scope_values == []
    assert api.token_ttl == 3600
    stored = apis.get_api(API)
    assert stored.id == api.id and stored.name == "Things API" and stored.token_ttl == 3600
    assert apis.get_api_by_id(api.id).identifier == API


def test_default_token_ttl_follows_config(make_app):
    app = make_app(ACCESS_TOKEN_TTL=900)
    with app.app_context():
        assert create_api(API, "X").token_ttl == 900
        assert create_api(API + "/2", "X", token_ttl=120).token_ttl == 120


def test_default_token_ttl_out_of_range_is_explained(make_app):
    app = make_app(ACCESS_TOKEN_TTL=30)
    with app.app_context():
        error = _raises(create_api, API, "X")
        assert "ACCESS_TOKEN_TTL" in error.message
        assert create_api(API, "X", token_ttl=60).token_ttl == 60


def test_scope_forms(app_context):
    api = create_api(
        API,
        "X",
        [
            "read:things",
            "write:things=Change your things",
            " admin = Everything ",
            "empty:desc=",
            "eq=a=b",
            ("pair", "From a pair"),
            ["list-pair", None],
            {"value": "dict", "description": "From a dict"},
            {"value": "dict-no-desc"},
        ],
    )
    expected = [
        {"value": "read:things", "description": ""},
        {"value": "write:things", "description": "Change your things"},
        {"value": "admin", "description": "Everything"},
        {"value": "empty:desc", "description": ""},
        {"value": "eq", "description": "a=b"},
        {"value": "pair", "description": "From a pair"},
        {"value": "list-pair", "description": ""},
        {"value": "dict", "description": "From a dict"},
        {"value": "dict-no-desc", "description": ""},
    ]
    assert api.scopes == expected
    assert apis.get_api(API).scopes == expected
    assert apis.get_api(API).scope_values == [s["value"] for s in expected]


def test_scope_token_syntax_edges_accepted(app_context):
    # Every printable ASCII character except space, '"' and '\'.
    edge = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\=')
    api = create_api(API, "X", [(edge, ""), ("a=b", "")])
    assert api.scope_values == [edge, "a=b"]


@pytest.mark.parametrize(
    "identifier",
    [
        "https://api.example.com",
        "https://api.example.com/v1/",
        "https://api.example.com:8443/v1?tenant=a",
        "http://localhost:8080/api",
        "http://api.internal",
        "urn:example:things-api",
        "URN:Example:Thing:v2",
        "https://api.example.com/" + "a" * (2048 - len("https://api.example.com/")),
    ],
)
def test_identifiers_accepted(app_context, identifier):
    api = create_api(identifier, "X")
    assert apis.get_api(identifier).id == api.id


@pytest.mark.parametrize(
    "identifier, needle",
    [
        (None, "required"),
        (42, "required"),
        ("", "required"),
        ("api.example.com", "absolute URI"),
        ("/relative/path", "absolute URI"),
        ("ftp://files.example.com", "absolute URI"),
        ("mailto:api@example.com", "absolute URI"),
        ("https://", "absolute URL"),
        ("https:api.example.com", "absolute URL"),
        ("https:///path", "absolute URL"),
        ("https://api.example.com:99999", "not a valid URL"),
        ("https://api.example.com/#section", "fragment"),
        ("https://api.example.com#", "fragment"),
        (" https://api.example.com", "spaces"),
        ("https://api.example.com ", "spaces"),
        ("https://api.example.com/a b", "spaces"),
        ("https://api.example.com/\x00", "control"),
        ("https://api.example.com/\n", "control"),
        ("https://api.example.com/\x7f", "control"),
        ("https://api.example.com/\u2028", "control"),
        ("https://bücher.example", "ASCII"),
        ("urn:x", "URN"),
        ("urn::thing", "URN"),
        ("urn:example", "URN"),
        ("https://api.example.com/" + "a" * 2048, "2048"),
    ],
)
def test_identifiers_refused(app_context, identifier, needle):
    error = _raises(create_api, identifier, "X")
    assert needle in error.message
    assert "\x00" not in error.message and "\n" not in error.message
    assert Api.select().count() == 0
    assert _events("api.created") == []


def test_duplicate_identifier_refused(app_context):
    _api()
    error = _raises(create_api, API, "Other")
    assert "already exists" in error.message and API in error.message
    assert Api.select().count() == 1
    # Identifiers are compared exactly, as audiences are.
    create_api(API + "/", "Other")
    assert Api.select().count() == 2


@pytest.mark.parametrize(
    "name, needle",
    [
        (None, "required"),
        ("", "required"),
        ("   ", "required"),
        (7, "required"),
        ("x" * 201, "200"),
        ("Bad\nname", "control"),
        ("Bad\x00name", "control"),
    ],
)
def test_names_refused(app_context, name, needle):
    assert needle in _raises(create_api, API, name).message
    assert Api.select().count() == 0


def test_name_limit(app_context):
    assert create_api(API, " " + "x" * 200 + " ").name == "x" * 200


@pytest.mark.parametrize(
    "scopes, needle",
    [
        ("read:things", "list"),
        (b"read", "list"),
        ({"value": "read"}, "list"),
        (42, "list"),
        (["has space"], "not a valid scope token"),
        (['quote"d'], "not a valid scope token"),
        (["back\\slash"], "not a valid scope token"),
        (["café"], "not a valid scope token"),
        (["nul\x00"], "not a valid scope token"),
        (["tab\tx"], "not a valid scope token"),
        ([""], "non-empty"),
        (["=description only"], "non-empty"),
        ([("", "d")], "non-empty"),
        ([(None, "d")], "non-empty"),
        ([("a", "b", "c")], "pair"),
        ([("a",)], "pair"),
        ([{"value": "a", "extra": 1}], "unknown scope fields"),
        ([{"description": "no value"}], "non-empty"),
        ([("a", 5)], "description"),
        (["a=bad\ndescription"], "control"),
        ([("a", "x" * 501)], "500"),
        (["x" * 256], "255"),
        ([42], "each scope"),
        ([None], "each scope"),
        (["read", "read"], "duplicate"),
        (["read=One", ("read", "Two")], "duplicate"),
    ],
)
def test_scopes_refused(app_context, scopes, needle):
    error = _raises(create_api, API, "X", scopes)
    assert needle in error.message
    assert Api.select().count() == 0


@pytest.mark.parametrize("ttl", [59, 2_592_001, 0, -60, "3600", 3600.0, True, False])
def test_token_ttl_refused(app_context, ttl):
    assert "token_ttl" in _raises(create_api, API, "X", token_ttl=ttl).message
    assert Api.select().count() == 0


@pytest.mark.parametrize("ttl", [60, 2_592_000])
def test_token_ttl_limits_accepted(app_context, ttl):
    assert create_api(API, "X", token_ttl=ttl).token_ttl == ttl
    assert apis.get_api(API).token_ttl == ttl


# --- looking APIs up -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "identifier",
    [
        None,
        42,
        b"https://api.example.com",
        "",
        API + "\x00",
        "\x00",
        "https://api.example.com/" + "a" * 2048,
        "https://other.example",
    ],
)
def test_get_api_junk_is_none(app_context, identifier):
    _api()
    assert apis.get_api(identifier) is None


@pytest.mark.parametrize("api_id", [None, "", "abc", "1.5", -1, 0, 2**31, 2**63, True, 1.0, "٣"])
def test_get_api_by_id_junk_is_none(app_context, api_id):
    _api()
    assert apis.get_api_by_id(api_id) is None


def test_get_api_by_id_accepts_digit_strings(app_context):
    api = _api()
    assert apis.get_api_by_id(str(api.id)).identifier == API
    assert apis.get_api_by_id(api.id + 1) is None


def test_list_apis_oldest_first(app_context):
    assert apis.list_apis() == []
    first = create_api("https://b.example", "B")
    second = create_api("https://a.example", "A")
    third = create_api("urn:example:c", "C")
    assert [api.id for api in apis.list_apis()] == [first.id, second.id, third.id]


# --- updating and deleting APIs ------------------------------------------------------------


def test_update_api(app_context):
    api = _api()
    same = apis.update_api(api)
    assert same is api
    apis.update_api(api, name="  Renamed ", token_ttl=120)
    assert api.name == "Renamed" and api.token_ttl == 120
    apis.update_api(api, scopes=["read:things=Read", ("new:scope", "New")])
    stored = apis.get_api(API)
    assert stored.name == "Renamed" and stored.token_ttl == 120
    assert stored.scopes == [
        {"value": "read:things", "description": "Read"},
        {"value": "new:scope", "description": "New"},
    ]
    assert stored.updated_at >= stored.created_at
    assert stored.identifier == API
    (event,) = [e for e in _events("api.updated") if "added_scopes" in e.details]
    assert event.details["identifier"] == API
    assert event.details["added_scopes"] == ["new:scope"]
    assert event.details["removed_scopes"] == ["write:things", "delete:things"]


@pytest.mark.parametrize(
    "changes",
    [
        {"name": " "},
        {"name": "x" * 201},
        {"scopes": ["bad scope"]},
        {"scopes": ["a", "a"]},
        {"scopes": "read:things"},
        {"token_ttl": 10},
        {"name": "Good", "token_ttl": 10},
    ],
)
def test_update_api_validates_and_changes_nothing_on_error(app_context, changes):
    api = _api()
    _raises(apis.update_api, api, **changes)
    stored = apis.get_api(API)
    assert stored.name == "Things API" and stored.token_ttl == 3600
    assert stored.scope_values == ["read:things", "write:things", "delete:things"]
    assert api.name == "Things API"
    assert _events("api.updated") == []


def test_update_deleted_api_fails(app_context):
    api = _api()
    apis.delete_api(api)
    assert "no longer exists" in _raises(apis.update_api, api, name="New").message


def test_removing_api_scopes_trims_grants(app_context):
    api = _api()
    other_api = create_api("urn:example:other", "Other", ["write:things", "read:things"])
    first, second = _m2m("First"), _m2m("Second")
    grant(first, api)
    grant(second, api, ["write:things"])
    grant(first, other_api)
    apis.update_api(api, scopes=["read:things", "audit:things"])
    assert client_grants.get_grant(first, api).scopes == ["read:things"]
    assert client_grants.get_grant(second, api).scopes == []
    # Grants of other APIs keep their scopes even where the names are the same.
    assert client_grants.get_grant(first, other_api).scopes == ["write:things", "read:things"]
    event = _events("api.updated")[-1]
    assert event.details["removed_scopes"] == ["write:things", "delete:things"]
    assert sorted(event.details["trimmed_grants"]) == sorted([first.client_id, second.client_id])


def test_delete_api_cascades_to_grants(app_context):
    api = _api()
    other_api = create_api("urn:example:other", "Other", ["x"])
    client = _m2m()
    grant(client, api)
    grant(client, other_api)
    apis.delete_api(api)
    assert apis.get_api(API) is None
    assert [g.api.identifier for g in client_grants.list_grants(client=client)] == [
        "urn:example:other"
    ]
    assert ClientGrant.select().count() == 1
    (deleted,) = _events("api.deleted")
    assert deleted.details["identifier"] == API
    assert deleted.details["revoked_grants"] == [client.client_id]
    (revoked,) = _events("client_grant.revoked")
    assert revoked.client_id == client.client_id
    assert revoked.details["identifier"] == API and revoked.details["reason"] == "api_deleted"
    apis.delete_api(api)  # already gone: nothing happens
    assert len(_events("api.deleted")) == 1


def test_deleting_a_client_removes_its_grants(app_context):
    api = _api()
    doomed, kept = _m2m("Doomed"), _m2m("Kept")
    grant(doomed, api)
    grant(kept, api, ["read:things"])
    clients.delete_client(doomed)
    assert [g.client_id for g in client_grants.list_grants(api=api)] == [kept.client_id]
    assert apis.get_api(API) is not None


# --- client grants -------------------------------------------------------------------------


def test_grant_defaults_to_every_api_scope(app_context):
    api = _api()
    client = _m2m()
    row = grant(client, api)
    assert row.scopes == ["read:things", "write:things", "delete:things"]
    assert row.client.client_id == client.client_id and row.api.identifier == API
    stored = client_grants.get_grant(client, api)
    assert stored.id == row.id and stored.scopes == row.scopes


def test_grant_subset_deduplicated_and_empty(app_context):
    api = _api()
    client = _m2m()
    assert grant(client, api, ["write:things", "read:things", "write:things"]).scopes == [
        "write:things",
        "read:things",
    ]
    assert grant(client, api, []).scopes == []
    assert client_grants.get_grant(client, api).scopes == []


def test_grant_replaces(app_context):
    api = _api()
    client = _m2m()
    first = grant(client, api, ["read:things"])
    second = grant(client, api, ["write:things", "delete:things"])
    assert second.id == first.id
    assert ClientGrant.select().count() == 1
    assert client_grants.get_grant(client, api).scopes == ["write:things", "delete:things"]
    created = _events("client_grant.created")
    assert [e.details["replaced"] for e in created] == [False, True]
    assert created[-1].details["scopes"] == ["write:things", "delete:things"]


def test_grant_unknown_scope_refused(app_context):
    api = _api()
    client = _m2m()
    grant(client, api, ["read:things"])
    error = _raises(grant, client, api, ["read:things", "fly:things", "sing"])
    assert "fly:things" in error.message and "sing" in error.message
    assert "read:things" not in error.message
    assert client_grants.get_grant(client, api).scopes == ["read:things"]  # unchanged
    empty_api = create_api("urn:example:empty", "Empty")
    assert "read:things" in _raises(grant, client, empty_api, ["read:things"]).message
    assert grant(client, empty_api).scopes == []


@pytest.mark.parametrize("scopes", ["read:things", b"read", {"read:things": 1}, [1], [None], 5])
def test_grant_scopes_must_be_a_list_of_strings(app_context, scopes):
    api = _api()
    client = _m2m()
    assert "list of strings" in _raises(grant, client, api, scopes).message
    assert client_grants.get_grant(client, api) is None


def test_grant_refused_to_public_client(app_context):
    api = _api()
    public, _ = create_client("SPA", [WEB], public=True)
    error = _raises(grant, public, api)
    assert f"client {public.client_id} cannot use client_credentials" in error.message
    assert "public" in error.message
    assert ClientGrant.select().count() == 0
    assert _events("client_grant.created") == []


def test_grant_refused_without_client_credentials(app_context):
    api = _api()
    web, _ = create_client("Web", [WEB])
    error = _raises(grant, web, api, ["read:things"])
    assert f"client {web.client_id} cannot use client_credentials" in error.message
    assert "grant types" in error.message
    assert ClientGrant.select().count() == 0


def test_grant_checks_the_client_as_stored(app_context):
    api = _api()
    client = _m2m()
    stale = clients.get_client(client.client_id)
    clients.update_client(client, grant_types=["authorization_code"], redirect_uris=[WEB])
    assert "grant types" in _raises(grant, stale, api).message
    clients.delete_client(client)
    assert "no longer exists" in _raises(grant, stale, api).message
    assert ClientGrant.select().count() == 0


def test_grant_for_deleted_api_fails(app_context):
    api = _api()
    client = _m2m()
    apis.delete_api(api)
    assert "no longer exists" in _raises(grant, client, api).message


def test_grant_checks_the_api_as_stored(app_context):
    api = _api()
    stale = apis.get_api(API)
    apis.update_api(api, scopes=["read:things"])
    client = _m2m()
    assert grant(client, stale).scopes == ["read:things"]
    assert "write:things" in _raises(grant, client, stale, ["write:things"]).message


def test_revoke_grant(app_context):
    api = _api()
    client, other = _m2m("A"), _m2m("B")
    grant(client, api, ["read:things"])
    grant(other, api)
    assert client_grants.revoke_grant(client, api) is True
    assert client_grants.get_grant(client, api) is None
    assert client_grants.get_grant(other, api) is not None
    assert client_grants.revoke_grant(client, api) is False
    (event,) = _events("client_grant.revoked")
    assert event.client_id == client.client_id
    assert event.details == {"identifier": API, "scopes": ["read:things"]}


def test_list_grants_filters(app_context):
    api = _api()
    other_api = create_api("urn:example:other", "Other", ["x"])
    a, b = _m2m("A"), _m2m("B")
    g1 = grant(a, api)
    g2 = grant(b, api, ["read:things"])
    g3 = grant(a, other_api)
    assert [g.id for g in client_grants.list_grants()] == [g1.id, g2.id, g3.id]
    assert [g.id for g in client_grants.list_grants(api=api)] == [g1.id, g2.id]
    assert [g.id for g in client_grants.list_grants(client=a)] == [g1.id, g3.id]
    assert [g.id for g in client_grants.list_grants(api=other_api, client=b)] == []
    assert [g.id for g in client_grants.list_grants(api=other_api, client=a)] == [g3.id]
    assert client_grants.list_grants(api=api)[1].client.name == "B"


def test_audit_events(app_context):
    client, secret = create_client("M2M", [], grant_types=["client_credentials"])
    api = _api(scopes=["read:things=Read"])
    grant(client, api)
    apis.update_api(api, name="Renamed")
    client_grants.revoke_grant(client, api)
    apis.delete_api(api)
    types = [
        e.event_type
        for e in AuditEvent.select().order_by(AuditEvent.id)
        if e.event_type.startswith(("api.", "client_grant."))
    ]
    assert types == [
        "api.created",
        "client_grant.created",
        "api.updated",
        "client_grant.revoked",
        "api.deleted",
    ]
    (created,) = _events("api.created")
    assert created.client_id is None
    assert created.details == {
        "identifier": API,
        "name": "Things API",
        "scopes": ["read:things"],
        "token_ttl": 3600,
    }
    (granted,) = _events("client_grant.created")
    assert granted.client_id == client.client_id
    assert granted.details["identifier"] == API and granted.details["scopes"] == ["read:things"]
    (updated,) = _events("api.updated")
    assert updated.details == {"identifier": API, "name": "Renamed"}
    for event in AuditEvent.select():
        assert secret not in json.dumps(event.details)


def test_api_info(app_context):
    api = _api(scopes=["read:things=Read"])
    client = _m2m()
    grant(client, api)
    info = apis.api_info(api)
    assert info["identifier"] == API and info["name"] == "Things API"
    assert info["scopes"] == [{"value": "read:things", "description": "Read"}]
    assert info["token_ttl"] == 3600 and info["created_at"].endswith("Z")
    assert "grants" not in info
    with_grants = apis.api_info(api, client_grants.list_grants(api=api))
    assert with_grants["grants"] == [
        {"client_id": client.client_id, "client_name": "M2M", "scopes": ["read:things"]}
    ]
    json.dumps(with_grants)


# --- CLI -------------------------------------------------------------------------------------


def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output


def _cli_m2m(runner, name="M2M") -> str:
    out = runner.invoke(
        args=["clients", "create", "--name", name, "--grant-type", "client_credentials", "--json"]
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.output)["client_id"]


def _cli_api(runner, identifier=API, *scopes: str):
    args = ["apis", "create", identifier, "--name", "Things API"]
    for scope in scopes or ("read:things", "write:things"):
        args += ["--scope", scope]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return result


def test_cli_create_human(runner, app):
    result = runner.invoke(
        args=[
            "apis",
            "create",
            API,
            "--name",
            "Things API",
            "--scope",
            "read:things=Read your things",
            "--scope",
            "write:things",
            "--token-ttl",
            "600",
        ]
    )
    assert result.exit_code == 0, result.output
    assert API in result.output and "read:things write:things" in result.output
    assert "600" in result.output
    with app.app_context():
        api = apis.get_api(API)
        assert api.name == "Things API" and api.token_ttl == 600
        assert api.scopes == [
            {"value": "read:things", "description": "Read your things"},
            {"value": "write:things", "description": ""},
        ]


def test_cli_create_json(runner, app):
    result = runner.invoke(args=["apis", "create", "urn:example:api", "--name", "X", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["identifier"] == "urn:example:api" and data["name"] == "X"
    assert data["scopes"] == [] and data["token_ttl"] == 3600


def test_cli_create_errors_are_one_line(runner, app):
    _cli_api(runner)
    _one_line_error(
        runner.invoke(args=["apis", "create", API, "--name", "Again"]), "already exists"
    )
    _one_line_error(runner.invoke(args=["apis", "create", "not-a-uri", "--name", "X"]), "URI")
    _one_line_error(
        runner.invoke(args=["apis", "create", "https://a.example/#x", "--name", "X"]), "fragment"
    )
    _one_line_error(
        runner.invoke(args=["apis", "create", "https://a.example/\x00", "--name", "X"]), "control"
    )
    _one_line_error(
        runner.invoke(args=["apis", "create", "https://" + "a" * 2100, "--name", "X"]), "2048"
    )
    _one_line_error(
        runner.invoke(
            args=["apis", "create", "https://a.example", "--name", "X", "--scope", "a b"]
        ),
        "scope",
    )
    _one_line_error(
        runner.invoke(
            args=["apis", "create", "https://a.example", "--name", "X", "--scope", "a=x\ny"]
        ),
        "control",
    )
    _one_line_error(
        runner.invoke(
            args=["apis", "create", "https://a.example", "--name", "X"]
            + ["--scope", "a", "--scope", "a=again"]
        ),
        "duplicate",
    )
    _one_line_error(
        runner.invoke(
            args=["apis", "create", "https://a.example", "--name", "X", "--token-ttl", "10"]
        ),
        "token_ttl",
    )
    _one_line_error(
        runner.invoke(
            args=["apis", "create", "https://a.example", "--name", "X", "--token-ttl", "soon"]
        ),
        "--token-ttl",
    )
    _one_line_error(runner.invoke(args=["apis", "create", "https://a.example"]), "--name")
    _one_line_error(runner.invoke(args=["apis", "create", "--name", "X"]), "IDENTIFIER")
    _one_line_error(runner.invoke(args=["apis", "create", "https://a.example", "--name", " "]))
    _one_line_error(runner.invoke(args=["apis", "frobnicate"]), "frobnicate")
    with app.app_context():
        assert [api.identifier for api in apis.list_apis()] == [API]


def test_cli_list(runner, app):
    assert runner.invoke(args=["apis", "list", "--json"]).output.strip() == "[]"
    assert "No APIs" in runner.invoke(args=["apis", "list"]).output
    _cli_api(runner)
    _cli_api(runner, "urn:example:second", "x:y")
    client_id = _cli_m2m(runner)
    granted = runner.invoke(args=["apis", "grant", client_id, API, "--scope", "read:things"])
    assert granted.exit_code == 0, granted.output
    listing = runner.invoke(args=["apis", "list"])
    assert listing.exit_code == 0, listing.output
    out = listing.output
    assert out.index(API) < out.index("urn:example:second")
    assert "read:things write:things" in out and "x:y" in out
    assert f"{client_id} (M2M): read:things" in out
    data = json.loads(runner.invoke(args=["apis", "list", "--json"]).output)
    assert [api["identifier"] for api in data] == [API, "urn:example:second"]
    assert data[0]["scopes"][0] == {"value": "read:things", "description": ""}
    assert data[0]["grants"] == [
        {"client_id": client_id, "client_name": "M2M", "scopes": ["read:things"]}
    ]
    assert data[1]["grants"] == []


def test_cli_delete(runner, app):
    _cli_api(runner)
    client_id = _cli_m2m(runner)
    runner.invoke(args=["apis", "grant", client_id, API])
    result = runner.invoke(args=["apis", "delete", API, "--yes"])
    assert result.exit_code == 0, result.output
    assert API in result.output and "1 client grant" in result.output
    with app.app_context():
        assert apis.get_api(API) is None
        assert ClientGrant.select().count() == 0
    _one_line_error(runner.invoke(args=["apis", "delete", API]), "no API")
    _one_line_error(runner.invoke(args=["apis", "delete", API + "\x00"]), "no API")
    _one_line_error(runner.invoke(args=["apis", "delete", "https://" + "a" * 3000]), "no API")


def test_cli_grant_and_revoke(runner, app):
    _cli_api(runner)
    client_id = _cli_m2m(runner)
    result = runner.invoke(args=["apis", "grant", client_id, API])
    assert result.exit_code == 0, result.output
    assert client_id in result.output and "read:things write:things" in result.output
    with app.app_context():
        row = client_grants.get_grant(clients.get_client(client_id), apis.get_api(API))
        assert row.scopes == ["read:things", "write:things"]
    result = runner.invoke(args=["apis", "grant", client_id, API, "--scope", "write:things"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        (row,) = client_grants.list_grants()
        assert row.scopes == ["write:things"]
    revoked = runner.invoke(args=["apis", "revoke", client_id, API, "-y"])
    assert revoked.exit_code == 0, revoked.output
    assert client_id in revoked.output
    with app.app_context():
        assert client_grants.list_grants() == []
    _one_line_error(runner.invoke(args=["apis", "revoke", client_id, API]), "no grant")


def test_cli_grant_errors_are_one_line(runner, app):
    _cli_api(runner)
    client_id = _cli_m2m(runner)
    public_id = json.loads(
        runner.invoke(
            args=["clients", "create", "--name", "SPA", "--public", "--redirect-uri", WEB, "--json"]
        ).output
    )["client_id"]
    web_id = json.loads(
        runner.invoke(
            args=["clients", "create", "--name", "Web", "--redirect-uri", WEB, "--json"]
        ).output
    )["client_id"]
    _one_line_error(runner.invoke(args=["apis", "grant", "nope", API]), "no client")
    _one_line_error(runner.invoke(args=["apis", "grant", "a\x00b", API]), "no client")
    _one_line_error(runner.invoke(args=["apis", "grant", client_id, "urn:x:y"]), "no API")
    _one_line_error(
        runner.invoke(args=["apis", "grant", client_id, API, "--scope", "fly:things"]),
        "unknown scope",
        "fly:things",
    )
    _one_line_error(runner.invoke(args=["apis", "grant", public_id, API]), "public")
    _one_line_error(runner.invoke(args=["apis", "grant", web_id, API]), "client_credentials")
    _one_line_error(runner.invoke(args=["apis", "grant", client_id]), "IDENTIFIER")
    _one_line_error(runner.invoke(args=["apis", "revoke", "nope", API]), "no client")
    _one_line_error(runner.invoke(args=["apis", "revoke", client_id, "urn:x:y"]), "no API")
    with app.app_context():
        assert client_grants.list_grants() == []


def test_scope_with_a_trailing_newline_is_refused(app_context):
    # a regex anchored with $ would accept "read:things\n"
    with pytest.raises(apis.ApiError, match="not a valid scope"):
        apis.create_api("https://newline.example", "Newline API", [{"value": "read:things\n"}])
