"""Hooks are called the pluggy way (by argument name), misspellings stop start-up, every
protected claim is guarded, and a dry run goes through the real pipeline without counting."""

import json
import logging

import pytest

from oauth.storage.models import Client
from tests.m2m_helpers import API, cc_token, setup_m2m
from tests.oauth_helpers import decode_jwt_unverified
from tests.test_plugins import user_flow, write_plugin


def test_arguments_are_passed_by_name_in_any_order(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "reordered",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(context, claims):
            return {"seen_grant": context.grant_type, "seen_sub": claims["sub"]}
        @hookimpl
        def customize_client_credentials_token(context, audience, scope, client):
            return {"cc": [client.client_id, audience, scope, context.grant_type]}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    claims = decode_jwt_unverified(flow.tokens()["access_token"])[1]
    assert claims["seen_grant"] == "authorization_code" and claims["seen_sub"] == claims["sub"]
    client_id, secret = setup_m2m(app)
    response = cc_token(app.test_client(), client_id, secret, audience=API)
    machine = decode_jwt_unverified(response.get_json()["access_token"])[1]
    assert machine["cc"] == [client_id, API, ["read:things", "write:things"], "client_credentials"]


def test_an_implementation_may_take_fewer_arguments(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "minimal",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims):
            return {"minimal": True}
        @hookimpl
        def customize_id_token():
            return {"id_minimal": True}
        @hookimpl
        def customize_client_credentials_token(audience):
            return {"aud_seen": audience}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    tokens = user_flow(app).tokens(scope="openid email")
    assert decode_jwt_unverified(tokens["access_token"])[1]["minimal"] is True
    assert decode_jwt_unverified(tokens["id_token"])[1]["id_minimal"] is True
    client_id, secret = setup_m2m(app)
    response = cc_token(app.test_client(), client_id, secret, audience=API)
    assert response.status_code == 200, response.get_json()
    assert decode_jwt_unverified(response.get_json()["access_token"])[1]["aud_seen"] == API


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "@hookimpl\ndef customise_access_token(claims, context):\n    pass\n",
            "unknown hook 'customise_access_token' (did you mean 'customize_access_token'?)",
        ),
        (
            "@hookimpl\ndef customize_access_token(claim, context):\n    pass\n",
            "hook customize_access_token has no argument 'claim' (did you mean 'claims'?)",
        ),
        (
            "@hookimpl\ndef customize_client_credentials_token(client, scopes):\n    pass\n",
            "no argument 'scopes' (did you mean 'scope'?)",
        ),
    ],
)
def test_misspellings_stop_start_up_naming_the_closest_name(
    make_app, plugin_dir, source, expected, capsys
):
    (plugin_dir / "typo.py").write_text("from oauth import hookimpl\n" + source)
    with pytest.raises(SystemExit):
        make_app(PLUGINS_DIR=str(plugin_dir))
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "typo" in err and expected in err


def test_session_id_is_protected(make_app, plugin_dir, caplog):
    write_plugin(
        plugin_dir,
        "detach",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims):
            return {"session_id": None}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    code, _ = flow.get_code()
    with caplog.at_level(logging.ERROR):
        response = flow.exchange(code)
    assert (response.status_code, response.get_json()["error"]) == (500, "server_error")
    assert "detach" not in response.get_json()["error_description"]
    assert "detach" in caplog.text and "'session_id'" in caplog.text


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("aud", "someone-else"),
        ("nonce", "forged"),
        ("at_hash", "x"),
        ("auth_time", 1),
        ("acr", "aal2"),
    ],
)
def test_id_token_binding_claims_are_protected(make_app, plugin_dir, claim, value, caplog):
    write_plugin(
        plugin_dir,
        "forge",
        f"""
        from oauth import hookimpl
        @hookimpl
        def customize_id_token(claims):
            return {{{claim!r}: {value!r}}}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    code, _ = flow.get_code(scope="openid email", nonce="n-0S6_WzA2Mj")
    with caplog.at_level(logging.ERROR):
        response = flow.exchange(code)
    assert (response.status_code, response.get_json()["error"]) == (500, "server_error")
    assert f"'{claim}'" in caplog.text and "forge" in caplog.text


def test_a_dry_run_is_not_counted_and_uses_the_real_pipeline(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "tagger",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_client_credentials_token(scope):
            return {"scope": scope + ["extra"], "stage": "auth0"}
        @hookimpl
        def customize_access_token(claims, context):
            return {"dry": context.dry_run, "scope_seen": claims["scope"]}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    client_id, _ = setup_m2m(app)
    runner = app.test_cli_runner()
    args = ["plugins", "try", "customize_access_token", "--client", client_id, "--audience", API]
    claims = json.loads(runner.invoke(args=args).output)
    assert claims["dry"] is True and claims["stage"] == "auth0"
    assert claims["scope_seen"] == "read:things write:things extra"
    first_hook_only = runner.invoke(args=["plugins", "try", "customize_client_credentials_token",
                                          "--client", client_id, "--audience", API])  # fmt: skip
    assert "dry" not in json.loads(first_hook_only.output)
    listing = json.loads(runner.invoke(args=["plugins", "list", "--json"]).output)
    (tagger,) = [p for p in listing if p["name"] == "tagger"]
    assert tagger["calls"] == 0 and tagger["per_hook"] == {}


def test_machine_clients_record_when_they_were_last_used(make_app):
    app = make_app()
    client_id, secret = setup_m2m(app)
    with app.app_context():
        assert Client.get(Client.client_id == client_id).last_used_at is None
    http = app.test_client()
    assert cc_token(http, client_id, secret, audience=API).status_code == 200
    with app.app_context():
        first = Client.get(Client.client_id == client_id).last_used_at
    assert first is not None
    assert cc_token(http, client_id, secret, audience=API).status_code == 200
    with app.app_context():  # at most one write a minute per client
        assert Client.get(Client.client_id == client_id).last_used_at == first


def test_a_claim_that_is_not_json_fails_in_the_plugin_that_returned_it(
    make_app, plugin_dir, caplog
):
    """A claim JSON cannot hold (a datetime here) is the plugin's failure, logged with its
    name and counted against it, for user and machine tokens alike; values JSON holds but
    orjson alone does not (an integer beyond 64 bits, an integer key) still work."""
    write_plugin(
        plugin_dir,
        "clock",
        """
        import datetime
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(context, claims):
            if context.grant_type == "client_credentials":
                return {"big": 2 ** 70, "by_id": {7: "seven"}}
            return {"signed_in": datetime.datetime(2026, 1, 1)}
        @hookimpl
        def customize_client_credentials_token():
            return {"tags": {"a", "b"}}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    code, _ = flow.get_code()
    client_id, secret = setup_m2m(app)
    with caplog.at_level(logging.ERROR):
        user = flow.exchange(code)
        machine = cc_token(app.test_client(), client_id, secret, audience=API)
    for response in (user, machine):
        assert (response.status_code, response.get_json()["error"]) == (500, "server_error")
        assert "clock" not in response.get_json()["error_description"]
    assert "Plugin 'clock' returned a claim that is not JSON from customize_access_token" in (
        caplog.text
    )
    assert "from customize_client_credentials_token: Object of type set" in caplog.text
    listing = json.loads(app.test_cli_runner().invoke(args=["plugins", "list", "--json"]).output)
    (clock,) = [p for p in listing if p["name"] == "clock"]
    assert clock["per_hook"]["customize_access_token"]["failures"] == 1

    (plugin_dir / "clock.py").write_text(
        "from oauth import hookimpl\n"
        "@hookimpl\n"
        "def customize_access_token():\n"
        "    return {'big': 2 ** 70, 'by_id': {7: 'seven'}}\n"
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    client_id, secret = setup_m2m(app, name="M2M 2")
    response = cc_token(app.test_client(), client_id, secret, audience=API)
    claims = decode_jwt_unverified(response.get_json()["access_token"])[1]
    assert claims["big"] == 2**70 and claims["by_id"] == {"7": "seven"}
