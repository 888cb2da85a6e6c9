"""The client registry (oauth/clients.py), the Client model's Authlib checks, and ``flask clients``."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from oauth.accounts import users as accounts
from oauth.registry import clients
from oauth.registry.clients import ClientError, create_client
from oauth.security import sha256_hex
from oauth.storage.db import database
from oauth.storage.models import (
    AuthorizationRequest,
    Client,
    Consent,
    OAuthSession,
    RefreshToken,
    utcnow,
)

WEB = "https://app.example/cb"


def _confidential(**kwargs):
    kwargs.setdefault("redirect_uris", [WEB])
    return create_client("Web App", **kwargs)


def _raises(error_code: str, fn, *args, **kwargs) -> ClientError:
    with pytest.raises(ClientError) as info:
        fn(*args, **kwargs)
    assert info.value.error == error_code, info.value.message
    assert info.value.message and str(info.value) == info.value.message
    return info.value


# --- secrets -------------------------------------------------------------------------------


def test_confidential_secret_is_256_bits_and_stored_only_hashed(app_context):
    client, secret = _confidential()
    assert len(secret) >= 43
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    stored = Client.get_by_id(client.client_id)
    assert stored.client_secret_hash == sha256_hex(secret)
    cursor = database.execute_sql("SELECT * FROM client")
    rows = cursor.fetchall()
    assert len(rows) == 1
    assert all(secret not in str(value) for value in rows[0])
    _, other_secret = _confidential()
    assert other_secret != secret


def test_check_client_secret(app_context):
    client, secret = _confidential()
    client = clients.get_client(client.client_id)
    assert client.check_client_secret(secret)
    assert not client.check_client_secret(secret + "x")
    assert not client.check_client_secret(secret[:-1])
    assert not client.check_client_secret("")
    assert not client.check_client_secret(sha256_hex(secret))
    public, none = create_client("SPA", [WEB], public=True)
    assert none is None
    assert not public.check_client_secret("")
    assert not public.check_client_secret(secret)


def test_confidential_and_public_defaults(app_context):
    confidential, secret = _confidential()
    assert secret
    assert uuid_like(confidential.client_id)
    assert not confidential.is_public
    assert confidential.token_endpoint_auth_method == "client_secret_basic"
    assert confidential.grant_types == ["authorization_code", "refresh_token"]
    assert confidential.registration_type == "manual"
    assert confidential.metadata == {}

    public, no_secret = create_client("  SPA  ", ["com.example.app:/callback"], public=True)
    assert no_secret is None
    stored = Client.get_by_id(public.client_id)
    assert stored.name == "SPA"
    assert stored.is_public and stored.client_secret_hash is None
    assert stored.token_endpoint_auth_method == "none"
    assert stored.grant_types == ["authorization_code", "refresh_token"]
    assert stored.redirect_uris == ["com.example.app:/callback"]


def uuid_like(value: str) -> bool:
    import uuid

    return str(uuid.UUID(value)) == value


def test_explicit_options_are_stored(app_context):
    client, secret = create_client(
        "Machine",
        grant_types=["client_credentials"],
        token_endpoint_auth_method="client_secret_post",
        client_uri="https://app.example/",
        logo_uri="http://127.0.0.1:8000/logo.png",
        registration_type="dynamic",
        metadata={"team": "billing", "tier": 2},
    )
    stored = Client.get_by_id(client.client_id)
    assert secret and stored.redirect_uris == []
    assert stored.grant_types == ["client_credentials"]
    assert stored.token_endpoint_auth_method == "client_secret_post"
    assert stored.client_uri == "https://app.example/"
    assert stored.logo_uri == "http://127.0.0.1:8000/logo.png"
    assert stored.registration_type == "dynamic"
    assert stored.metadata == {"team": "billing", "tier": 2}


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", None, "x" * 201, "a\nb"])
def test_bad_names(app_context, name):
    _raises("invalid_client_metadata", create_client, name, [WEB])
    assert Client.select().count() == 0


def test_name_of_200_characters_is_fine(app_context):
    client, _ = create_client("x" * 200, [WEB])
    assert client.name == "x" * 200


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "view-source:https://app.example/cb",
        "jar:https://app.example/x.jar!/cb",
        "ws://127.0.0.1/cb",
        "wss://app.example/cb",
        "https://app.example/cb#frag",
        "https://app.example/cb#",
        "http://app.example/cb",
        "http://192.168.1.10/cb",
        "/relative/cb",
        "",
        " https://app.example/cb",
        "https://app.example/c b",
        "https://*.example/cb",
        "https:///cb",
        "https://app.example/" + "x" * 2048,
    ],
)
def test_refused_redirect_uris(app_context, uri):
    _raises("invalid_redirect_uri", create_client, "App", [WEB, uri])
    assert Client.select().count() == 0


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb",
        "https://app.example/cb?x=1",
        "http://127.0.0.1:8123/cb",
        "http://127.0.0.1/cb",
        "http://localhost:3000/cb",
        "http://[::1]:8080/cb",
        "com.example.app:/callback",
        "com.example.app://callback",
    ],
)
def test_accepted_redirect_uris(app_context, uri):
    client, _ = create_client("App", [uri])
    assert Client.get_by_id(client.client_id).redirect_uris == [uri]


def test_redirect_uris_deduplicated_in_order_and_limited(app_context):
    uris = ["https://b.example/cb", WEB, "https://b.example/cb", WEB]
    client, _ = create_client("App", uris)
    assert client.redirect_uris == ["https://b.example/cb", WEB]
    twenty = [f"https://app.example/cb{i}" for i in range(20)]
    assert len(create_client("App", twenty + twenty[:3])[0].redirect_uris) == 20
    _raises("invalid_redirect_uri", create_client, "App", [*twenty, "https://app.example/x"])
    assert Client.select().count() == 2


def test_redirect_uris_must_be_a_list_of_strings(app_context):
    _raises("invalid_redirect_uri", create_client, "App", WEB)
    _raises("invalid_redirect_uri", create_client, "App", [WEB, 42])


def test_authorization_code_needs_a_redirect_uri(app_context):
    _raises("invalid_redirect_uri", create_client, "App")
    _raises("invalid_redirect_uri", create_client, "App", [], grant_types=["authorization_code"])
    _raises("invalid_redirect_uri", create_client, "SPA", public=True)
    assert Client.select().count() == 0


def test_grant_type_rules(app_context):
    _raises("invalid_client_metadata", create_client, "App", [WEB], grant_types=["implicit"])
    _raises("invalid_client_metadata", create_client, "App", [WEB], grant_types=["password"])
    _raises("invalid_client_metadata", create_client, "App", [WEB], grant_types=[])
    _raises("invalid_client_metadata", create_client, "App", [WEB], grant_types=["refresh_token"])
    _raises(
        "invalid_client_metadata",
        create_client,
        "SPA",
        [WEB],
        public=True,
        grant_types=["authorization_code", "client_credentials"],
    )
    assert Client.select().count() == 0
    client, _ = create_client(
        "App",
        [WEB],
        grant_types=["authorization_code", "client_credentials", "authorization_code"],
    )
    assert client.grant_types == ["authorization_code", "client_credentials"]
    machine, _ = create_client("M2M", grant_types=["client_credentials"])
    assert machine.redirect_uris == []


def test_auth_method_rules(app_context):
    _raises(
        "invalid_client_metadata",
        create_client,
        "App",
        [WEB],
        token_endpoint_auth_method="private_key_jwt",
    )
    _raises(
        "invalid_client_metadata",
        create_client,
        "App",
        [WEB],
        public=True,
        token_endpoint_auth_method="client_secret_basic",
    )
    _raises(
        "invalid_client_metadata",
        create_client,
        "App",
        [WEB],
        token_endpoint_auth_method="none",
    )
    assert Client.select().count() == 0
    public, secret = create_client("SPA", [WEB], public=True, token_endpoint_auth_method="none")
    assert public.is_public and secret is None


@pytest.mark.parametrize("field", ["client_uri", "logo_uri"])
@pytest.mark.parametrize(
    "value",
    [
        "http://app.example/",
        "javascript:alert(1)",
        "app.example",
        "/logo.png",
        "https://app.example/#top",
        "ftp://app.example/logo.png",
        "https://app.example/" + "x" * 2048,
        "https://app.example/a b",
        "https://app.example:99999/",
    ],
)
def test_refused_client_and_logo_uris(app_context, field, value):
    _raises("invalid_client_metadata", create_client, "App", [WEB], **{field: value})
    assert Client.select().count() == 0


@pytest.mark.parametrize("field", ["client_uri", "logo_uri"])
def test_accepted_client_and_logo_uris(app_context, field):
    for value in ("https://app.example/logo.png?v=2", "http://localhost:8000/", ""):
        client, _ = create_client("App", [WEB], **{field: value})
        assert getattr(Client.get_by_id(client.client_id), field) == value


@pytest.mark.parametrize("metadata", [["a"], "text", {"when": dt.datetime(2024, 1, 1)}])
def test_metadata_must_be_a_json_object(app_context, metadata):
    _raises("invalid_client_metadata", create_client, "App", [WEB], metadata=metadata)
    assert Client.select().count() == 0


def test_registration_type_is_checked(app_context):
    _raises("invalid_client_metadata", create_client, "App", [WEB], registration_type="other")


# --- redirect URI matching and auth methods on the model -----------------------------------


def test_check_redirect_uri_exact_and_loopback_any_port(app_context):
    client, _ = create_client(
        "App", [WEB, "http://127.0.0.1/cb", "http://localhost:8000/callback?x=1"]
    )
    client = clients.get_client(client.client_id)
    assert client.check_redirect_uri(WEB)
    assert not client.check_redirect_uri(WEB + "/")
    assert not client.check_redirect_uri("https://APP.example/cb")
    assert not client.check_redirect_uri("https://app.example/cb?x=1")
    assert not client.check_redirect_uri("https://app.example:443/cb")
    assert not client.check_redirect_uri("https://evil.example/cb")
    assert client.check_redirect_uri("http://127.0.0.1/cb")
    assert client.check_redirect_uri("http://127.0.0.1:53211/cb")
    assert not client.check_redirect_uri("http://127.0.0.1:53211/other")
    assert not client.check_redirect_uri("http://127.0.0.1:53211/cb?x=1")
    assert not client.check_redirect_uri("http://localhost:53211/cb")
    assert not client.check_redirect_uri("http://127.0.0.2:53211/cb")
    assert not client.check_redirect_uri("https://127.0.0.1:53211/cb")
    assert client.check_redirect_uri("http://localhost:9999/callback?x=1")
    assert not client.check_redirect_uri("http://localhost:9999/callback")
    assert not client.check_redirect_uri("http://127.0.0.1:abc/cb")


def test_check_endpoint_auth_method(app_context):
    for method in ("client_secret_basic", "client_secret_post"):
        client, _ = _confidential(token_endpoint_auth_method=method)
        for endpoint in ("token", "revocation", "introspection"):
            assert client.check_endpoint_auth_method("client_secret_basic", endpoint)
            assert client.check_endpoint_auth_method("client_secret_post", endpoint)
            assert not client.check_endpoint_auth_method("none", endpoint)
    public, _ = create_client("SPA", [WEB], public=True)
    for endpoint in ("token", "revocation", "introspection"):
        assert public.check_endpoint_auth_method("none", endpoint)
        assert not public.check_endpoint_auth_method("client_secret_basic", endpoint)
        assert not public.check_endpoint_auth_method("client_secret_post", endpoint)


def test_grant_and_response_type_checks(app_context):
    client, _ = _confidential()
    assert client.check_grant_type("authorization_code")
    assert client.check_grant_type("refresh_token")
    assert not client.check_grant_type("client_credentials")
    assert client.check_response_type("code")
    assert not client.check_response_type("token")
    machine, _ = create_client("M2M", grant_types=["client_credentials"])
    assert not machine.check_response_type("code")


# --- lookup, rotation, update, deletion ----------------------------------------------------


def test_get_and_list(app_context):
    first, _ = create_client("First", [WEB])
    second, _ = create_client("Second", [WEB], public=True)
    assert clients.get_client(first.client_id).name == "First"
    for junk in ("nope", "", None, 42, "x" * 65, "a\x00b"):
        assert clients.get_client(junk) is None
    assert [c.client_id for c in clients.list_clients()] == [first.client_id, second.client_id]


def test_rotate_secret_invalidates_the_old_one(app_context):
    client, old = _confidential()
    new = clients.rotate_secret(client)
    assert new != old and len(new) >= 43
    stored = clients.get_client(client.client_id)
    assert stored.check_client_secret(new)
    assert not stored.check_client_secret(old)
    assert client.check_client_secret(new)  # the instance is updated too


def test_rotate_secret_refuses_public_clients(app_context):
    public, _ = create_client("SPA", [WEB], public=True)
    error = _raises("invalid_client_metadata", clients.rotate_secret, public)
    assert "public clients have no secret" in error.message
    assert clients.get_client(public.client_id).client_secret_hash is None


def test_update_client(app_context):
    client, secret = _confidential()
    updated = clients.update_client(
        client,
        name=" Renamed ",
        redirect_uris=["https://new.example/cb", "https://new.example/cb"],
        grant_types=["authorization_code", "client_credentials"],
        client_uri="https://new.example/",
        logo_uri="https://new.example/logo.png",
        metadata={"a": 1},
        token_endpoint_auth_method="client_secret_post",
    )
    assert updated is client
    stored = clients.get_client(client.client_id)
    assert stored.name == "Renamed"
    assert stored.redirect_uris == ["https://new.example/cb"]
    assert stored.grant_types == ["authorization_code", "client_credentials"]
    assert stored.client_uri == "https://new.example/"
    assert stored.logo_uri == "https://new.example/logo.png"
    assert stored.metadata == {"a": 1}
    assert stored.token_endpoint_auth_method == "client_secret_post"
    assert stored.check_client_secret(secret)
    assert stored.updated_at >= stored.created_at


def test_update_client_validates_and_changes_nothing_on_error(app_context):
    client, _ = _confidential()
    before = Client.select().where(Client.client_id == client.client_id).dicts().get()
    _raises("invalid_client_metadata", clients.update_client, client, name="")
    _raises("invalid_redirect_uri", clients.update_client, client, redirect_uris=["javascript:x"])
    _raises("invalid_redirect_uri", clients.update_client, client, name="OK", redirect_uris=[])
    _raises("invalid_client_metadata", clients.update_client, client, grant_types=["implicit"])
    _raises("invalid_client_metadata", clients.update_client, client, grant_types=["refresh_token"])
    _raises("invalid_client_metadata", clients.update_client, client, logo_uri="http://x.example/")
    _raises("invalid_client_metadata", clients.update_client, client, metadata=[1])
    _raises(
        "invalid_client_metadata", clients.update_client, client, token_endpoint_auth_method="none"
    )
    with pytest.raises(TypeError):
        clients.update_client(client, client_secret_hash="x")
    after = Client.select().where(Client.client_id == client.client_id).dicts().get()
    assert after == before
    assert client.name == "Web App" and client.redirect_uris == [WEB]
    public, _ = create_client("SPA", [WEB], public=True)
    _raises(
        "invalid_client_metadata", clients.update_client, public, grant_types=["client_credentials"]
    )
    # Dropping redirect URIs is fine once the client no longer uses the code flow.
    clients.update_client(client, redirect_uris=[], grant_types=["client_credentials"])
    assert clients.get_client(client.client_id).redirect_uris == []


def test_delete_cascades(app_context):
    user = accounts.create_user("ann@example.com", "password123")
    client, _ = _confidential()
    other, _ = _confidential()
    for owner in (client, other):
        AuthorizationRequest.create(
            id=f"req-{owner.client_id}",
            client=owner,
            user=user,
            redirect_uri=WEB,
            code_challenge="x" * 43,
            expires_at=utcnow() + dt.timedelta(minutes=10),
        )
        Consent.create(user=user, client=owner, scopes=["email"])
        session = OAuthSession.create(
            user=user, client=owner, audience="authenticated", auth_time=1
        )
        first = RefreshToken.create(session=session, token_hash=sha256_hex(f"1-{owner.client_id}"))
        RefreshToken.create(
            session=session, token_hash=sha256_hex(f"2-{owner.client_id}"), parent=first
        )
    clients.delete_client(client)
    assert clients.get_client(client.client_id) is None
    for model in (AuthorizationRequest, Consent, OAuthSession):
        assert model.select().where(model.client == client.client_id).count() == 0
        assert model.select().where(model.client == other.client_id).count() == 1
    assert RefreshToken.select().count() == 2
    assert clients.get_client(other.client_id) is not None
    assert accounts.find_by_email("ann@example.com") is not None


def test_touch_last_used(app_context, monkeypatch):
    from oauth.storage import models

    client, _ = _confidential()
    assert client.last_used_at is None
    clients.touch_last_used(client)
    first = clients.get_client(client.client_id).last_used_at
    assert first is not None and client.last_used_at == first
    clients.touch_last_used(client)  # within the interval: no write
    assert clients.get_client(client.client_id).last_used_at == first
    monkeypatch.setattr(models, "LAST_USED_EVERY", 0)  # as if the interval had passed
    clients.touch_last_used(client)
    assert clients.get_client(client.client_id).last_used_at >= first


def test_client_info(app_context):
    client, secret = create_client("App", [WEB], client_uri="https://app.example/")
    info = clients.client_info(client, secret)
    assert info["client_id"] == client.client_id
    assert info["client_secret"] == secret and info["client_secret_expires_at"] == 0
    assert info["client_name"] == "App" and info["client_uri"] == "https://app.example/"
    assert info["response_types"] == ["code"]
    assert "logo_uri" not in info
    assert "client_secret" not in clients.client_info(client)
    json.dumps(info)


# --- CLI -------------------------------------------------------------------------------------


def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_cli_create_confidential_human(runner, app):
    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "Web App",
            "--redirect-uri",
            WEB,
            "--redirect-uri",
            "http://127.0.0.1:8123/cb",
        ]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    with app.app_context():
        (client,) = clients.list_clients()
        assert client.client_id in out
        secret = out.split("client_secret:")[1].split()[0]
        assert client.check_client_secret(secret)
        assert client.redirect_uris == [WEB, "http://127.0.0.1:8123/cb"]
    assert "confidential" in out and WEB in out and "http://127.0.0.1:8123/cb" in out
    assert "authorization_code" in out and "refresh_token" in out
    assert "shown only once" in out


def test_cli_create_json(runner, app):
    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "Web App",
            "--redirect-uri",
            WEB,
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "client_credentials",
            "--client-uri",
            "https://app.example/",
            "--logo-uri",
            "https://app.example/logo.png",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["client_name"] == "Web App"
    assert data["redirect_uris"] == [WEB]
    assert data["grant_types"] == ["authorization_code", "client_credentials"]
    assert data["token_endpoint_auth_method"] == "client_secret_basic"
    assert data["client_uri"] == "https://app.example/"
    assert data["logo_uri"] == "https://app.example/logo.png"
    assert len(data["client_secret"]) >= 43
    with app.app_context():
        client = clients.get_client(data["client_id"])
        assert client.check_client_secret(data["client_secret"])


def test_cli_create_public_json(runner, app):
    result = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "com.example.app:/callback",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert "client_secret" not in data
    assert data["token_endpoint_auth_method"] == "none"
    assert data["grant_types"] == ["authorization_code", "refresh_token"]
    human = runner.invoke(
        args=["clients", "create", "--name", "SPA2", "--public", "--redirect-uri", WEB]
    )
    assert human.exit_code == 0 and "public" in human.output
    assert "client_secret" not in human.output and "shown only once" not in human.output
    with app.app_context():
        assert clients.get_client(data["client_id"]).is_public


def test_cli_create_errors_are_one_line(runner, app):
    _one_line_error(
        runner.invoke(
            args=["clients", "create", "--name", "X", "--redirect-uri", "javascript:alert(1)"]
        ),
        "javascript",
    )
    _one_line_error(
        runner.invoke(
            args=["clients", "create", "--name", "X", "--redirect-uri", "http://app.example/cb"]
        ),
        "loopback",
    )
    _one_line_error(runner.invoke(args=["clients", "create", "--name", "X"]), "redirect URI")
    _one_line_error(
        runner.invoke(
            args=[
                "clients",
                "create",
                "--name",
                "X",
                "--redirect-uri",
                WEB,
                "--grant-type",
                "implicit",
            ]
        ),
        "implicit",
    )
    _one_line_error(
        runner.invoke(
            args=[
                "clients",
                "create",
                "--name",
                "X",
                "--public",
                "--grant-type",
                "client_credentials",
            ]
        ),
        "public",
    )
    _one_line_error(runner.invoke(args=["clients", "create", "--redirect-uri", WEB]), "--name")
    _one_line_error(runner.invoke(args=["clients", "create", "--name", " "]), "name")
    with app.app_context():
        assert clients.list_clients() == []


def test_cli_list(runner, app):
    assert runner.invoke(args=["clients", "list", "--json"]).output.strip() == "[]"
    ids = []
    for name in ("First", "Second"):
        out = runner.invoke(
            args=["clients", "create", "--name", name, "--redirect-uri", WEB, "--json"]
        ).output
        ids.append(json.loads(out)["client_id"])
    listing = runner.invoke(args=["clients", "list"])
    assert listing.exit_code == 0
    lines = listing.output.strip().splitlines()
    assert len(lines) == 2 and ids[0] in lines[0] and "First" in lines[0] and ids[1] in lines[1]
    data = json.loads(runner.invoke(args=["clients", "list", "--json"]).output)
    assert [c["client_id"] for c in data] == ids
    assert all("client_secret" not in c for c in data)


def test_cli_delete(runner, app):
    out = runner.invoke(args=["clients", "create", "--name", "X", "--redirect-uri", WEB, "--json"])
    client_id = json.loads(out.output)["client_id"]
    result = runner.invoke(args=["clients", "delete", client_id, "--yes"])
    assert result.exit_code == 0 and client_id in result.output
    with app.app_context():
        assert clients.get_client(client_id) is None
    _one_line_error(runner.invoke(args=["clients", "delete", client_id]), "no client")


def test_cli_rotate_secret(runner, app):
    out = runner.invoke(args=["clients", "create", "--name", "X", "--redirect-uri", WEB, "--json"])
    created = json.loads(out.output)
    rotated = runner.invoke(
        args=["clients", "rotate-secret", created["client_id"], "--json", "--yes"]
    )
    assert rotated.exit_code == 0, rotated.output
    data = json.loads(rotated.output)
    assert data["client_id"] == created["client_id"]
    assert data["client_secret"] != created["client_secret"]
    human = runner.invoke(args=["clients", "rotate-secret", created["client_id"], "-y"])
    assert human.exit_code == 0 and "shown only once" in human.output
    newest = human.output.split("client_secret:")[1].split()[0]
    with app.app_context():
        client = clients.get_client(created["client_id"])
        assert client.check_client_secret(newest)
        assert not client.check_client_secret(data["client_secret"])
        assert not client.check_client_secret(created["client_secret"])
    _one_line_error(runner.invoke(args=["clients", "rotate-secret", "nope"]), "no client")
    public = runner.invoke(
        args=["clients", "create", "--name", "P", "--public", "--redirect-uri", WEB, "--json"]
    )
    _one_line_error(
        runner.invoke(args=["clients", "rotate-secret", json.loads(public.output)["client_id"]]),
        "public clients have no secret",
    )


def test_demo_creates_a_client(runner, app):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    out = result.output
    client_id = out.split("client_id:")[1].split()[0]
    secret = out.split("client_secret:")[1].split()[0]
    verifier = out.split("code_verifier:")[1].split()[0]
    with app.app_context():
        client = clients.get_client(client_id)
        assert client is not None and client.name == "Demo App"
        assert not client.is_public and client.check_client_secret(secret)
        assert client.redirect_uris == [
            "http://127.0.0.1:8000/callback",
            "http://localhost:8000/callback",
        ]
        assert client.grant_types == ["authorization_code", "refresh_token"]
        issuer = app.config["ISSUER"].rstrip("/")
    import base64
    import hashlib

    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert (
        f"{issuer}/oauth/authorize?response_type=code&client_id={client_id}"
        "&redirect_uri=http://127.0.0.1:8000/callback&scope=openid%20email%20profile&state=demo"
        f"&code_challenge={challenge.decode()}&code_challenge_method=S256"
    ) in out
    assert f"-u {client_id}:{secret}" in out and f"{issuer}/oauth/token" in out
    assert f"code_verifier={verifier}" in out and "grant_type=authorization_code" in out
    second = runner.invoke(args=["demo"])
    assert "nothing created" in second.output and "client_secret:" not in second.output
    with app.app_context():
        assert len(clients.list_clients()) == 1
