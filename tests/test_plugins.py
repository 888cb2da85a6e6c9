"""The plugin system: loading, ordering, safety, observability, the HTTP hook, the docs."""

import base64
import hashlib
import hmac
import json
import logging
import re
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from oauth import audit
from oauth.plugins import hookspecs as hooks
from oauth.storage.models import AuthorizationRequest, OAuthSession, RefreshToken
from tests.conftest import AuthActions, csrf_token_from
from tests.m2m_helpers import API, cc_token, setup_m2m
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client

ROOT = Path(__file__).resolve().parent.parent


def write_plugin(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def user_flow(app, email="alice@example.com"):
    client_id, secret = make_client(app)
    flow = Flow(app, app.test_client(), client_id=client_id, secret=secret)
    flow.auth.create_user(email, app_metadata={"roles": ["editor", "viewer"]})
    flow.auth.login(email)
    return flow


def test_hooks_run_in_order_each_seeing_the_previous_result(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "b_second",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims, context):
            return {"trail": claims["trail"] + ["b"]}
    """,
    )
    write_plugin(
        plugin_dir,
        "a_first",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims, context):
            return {"trail": ["a"]}
    """,
    )
    write_plugin(
        plugin_dir,
        "z_tryfirst",
        """
        from oauth import hookimpl
        @hookimpl(tryfirst=True)
        def customize_access_token(claims, context):
            assert "trail" not in claims
            return {"early": True}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    tokens = user_flow(app).tokens()
    claims = decode_jwt_unverified(tokens["access_token"])[1]
    assert claims["trail"] == ["a", "b"]
    assert claims["early"] is True
    client_id, secret = setup_m2m(app)  # machine tokens go through the same hook
    machine = cc_token(app.test_client(), client_id, secret, audience=API).get_json()
    assert decode_jwt_unverified(machine["access_token"])[1]["trail"] == ["a", "b"]


def test_context_carries_what_the_contract_promises(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "ctx",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims, context):
            return {"seen": {
                "client_id": context.client.client_id, "client_name": context.client.name,
                "metadata": context.client.metadata, "user": context.user.email if context.user else None,
                "grant_type": context.grant_type, "method": context.authentication_method,
                "scopes": context.scopes, "audience": context.audience,
                "has_request": context.request is not None}}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    tokens = flow.tokens(scope="openid email")
    seen = decode_jwt_unverified(tokens["access_token"])[1]["seen"]
    assert seen == {
        "client_id": flow.client_id,
        "client_name": "Test App",
        "metadata": {},
        "user": "alice@example.com",
        "grant_type": "authorization_code",
        "method": "client_secret_basic",
        "scopes": ["openid", "email"],
        "audience": "authenticated",
        "has_request": True,
    }
    refreshed = flow.refresh(tokens["refresh_token"]).get_json()
    assert (
        decode_jwt_unverified(refreshed["access_token"])[1]["seen"]["grant_type"] == "refresh_token"
    )


CRASH_ONCE = """
    from pathlib import Path
    from oauth import hookimpl
    FLAG = Path(__file__).with_suffix(".crashed")
    @hookimpl
    def customize_access_token(claims, context):
        if not FLAG.exists():
            FLAG.write_text("1")
            raise RuntimeError("database password is hunter2")
"""


def test_a_crashing_plugin_is_server_error_and_nothing_is_consumed(make_app, plugin_dir, caplog):
    write_plugin(plugin_dir, "flaky", CRASH_ONCE)
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    code, _ = flow.get_code()
    with caplog.at_level(logging.ERROR):
        response = flow.exchange(code)
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "server_error"
    assert "hunter2" not in body["error_description"] and "flaky" not in body["error_description"]
    assert "hunter2" in caplog.text and "Traceback" in caplog.text and "flaky" in caplog.text
    with app.app_context():
        assert AuthorizationRequest.get().status == "approved"  # not consumed
        assert OAuthSession.select().count() == 0
    assert flow.exchange(code).status_code == 200  # the code still works


def test_a_crashing_plugin_does_not_rotate_the_refresh_token(make_app, plugin_dir):
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    tokens = flow.tokens()
    write_plugin(plugin_dir, "flaky", CRASH_ONCE)
    app2 = make_app(PLUGINS_DIR=str(plugin_dir))  # a restarted server with the new plugin
    flow.browser = app2.test_client()
    assert flow.refresh(tokens["refresh_token"]).status_code == 500
    with app2.app_context():
        assert RefreshToken.select().where(RefreshToken.rotated_at.is_null(False)).count() == 0
    # not a reuse: the same token refreshes normally afterwards
    again = flow.refresh(tokens["refresh_token"])
    assert again.status_code == 200
    assert flow.refresh(again.get_json()["refresh_token"]).status_code == 200


def test_protected_claims_cannot_change(make_app, plugin_dir, caplog):
    write_plugin(
        plugin_dir,
        "sneaky",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims, context):
            return {"sub": "admin", "iss": claims["iss"]}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    code, _ = flow.get_code()
    with caplog.at_level(logging.ERROR):
        response = flow.exchange(code)
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "server_error"
    # The operator learns which plugin and claim in the log; the client learns neither.
    assert "sneaky" not in body["error_description"] and "sub" not in body["error_description"]
    assert "sneaky" in caplog.text and "'sub'" in caplog.text
    client_id, secret = setup_m2m(app)
    assert cc_token(app.test_client(), client_id, secret, audience=API).status_code == 500


@pytest.mark.parametrize(
    ("error", "status"), [("access_denied", 403), ("invalid_scope", 400), ("invalid_request", 400)]
)
def test_token_denied_answers_its_error_and_consumes_nothing(make_app, plugin_dir, error, status):
    write_plugin(
        plugin_dir,
        "gate",
        f"""
        from oauth import TokenDenied, hookimpl
        @hookimpl
        def customize_client_credentials_token(client, scope, audience, context):
            raise TokenDenied("{error}", "not today")
        @hookimpl
        def customize_access_token(claims, context):
            if context.user is not None and context.user.email == "alice@example.com":
                raise TokenDenied("{error}", "not today")
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    client_id, secret = setup_m2m(app)
    response = cc_token(app.test_client(), client_id, secret, audience=API)
    assert (response.status_code, response.get_json()) == (
        status,
        {"error": error, "error_description": "not today"},
    )
    flow = user_flow(app)
    code, _ = flow.get_code()
    assert flow.exchange(code).status_code == status
    with app.app_context():
        assert AuthorizationRequest.get().status == "approved"


def test_token_denied_rejects_unknown_errors():
    with pytest.raises(ValueError, match="must be one of"):
        hooks.TokenDenied("server_error", "x")


def test_client_credentials_hook_changes_scopes_and_claims(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "m2m",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_client_credentials_token(client, scope, audience, context):
            assert isinstance(scope, list) and audience == "https://api.example.com"
            return {"scope": [s for s in scope if s != "write:things"] + ["audit"], "tenant": client.name}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    client_id, secret = setup_m2m(app)
    body = cc_token(app.test_client(), client_id, secret, audience=API).get_json()
    assert body["scope"] == "read:things audit"
    claims = decode_jwt_unverified(body["access_token"])[1]
    assert claims["tenant"] == "M2M" and claims["scope"] == "read:things audit"


def test_disabled_plugins_are_not_loaded(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "noisy",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims, context):
            return {"noisy": True}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir), DISABLED_PLUGINS=["noisy"])
    claims = decode_jwt_unverified(user_flow(app).tokens()["access_token"])[1]
    assert "noisy" not in claims
    with app.app_context():
        assert [p["name"] for p in app.extensions["portcullis.plugins"].describe()] == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import not_a_module_anywhere\n", "ModuleNotFoundError"),
        (
            "from oauth import hookimpl\n@hookimpl\ndef customise_access_token(claims, context):\n    pass\n",
            "customise_access_token",
        ),
        (
            "from oauth import hookimpl\n@hookimpl\ndef register_scopes():\n    return {'bad scope': 'x'}\n",
            "not a valid scope",
        ),
    ],
)
def test_broken_plugins_stop_start_up_with_one_line(make_app, plugin_dir, source, message, capsys):
    path = plugin_dir / "broken.py"
    path.write_text(source)
    with pytest.raises(SystemExit):
        make_app(PLUGINS_DIR=str(plugin_dir))
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "broken" in err and message in err


def test_entry_point_plugins_are_loaded(make_app, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "tenant_claims").mkdir(parents=True)
    (site / "tenant_claims" / "__init__.py").write_text(
        textwrap.dedent("""
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims, context):
            return {"tenant": "acme"}
    """)
    )
    dist = site / "tenant_claims-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tenant-claims\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[portcullis]\ntenant = tenant_claims\n")
    monkeypatch.syspath_prepend(str(site))
    app = make_app()
    with app.app_context():
        (info,) = app.extensions["portcullis.plugins"].describe()
    assert info["name"] == "tenant" and "entry point" in info["source"]
    assert decode_jwt_unverified(user_flow(app).tokens()["access_token"])[1]["tenant"] == "acme"
    disabled = make_app(DISABLED_PLUGINS=["tenant"])
    other_flow = user_flow(disabled, "bob@example.com")
    assert "tenant" not in decode_jwt_unverified(other_flow.tokens()["access_token"])[1]


def test_registered_scopes_reach_consent_and_discovery(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "calendar",
        """
        from oauth import hookimpl
        @hookimpl
        def register_scopes():
            return {"calendar:read": "Read your calendar"}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    location, page = flow.consent_page(flow.authorize(scope="openid calendar:read"))
    assert "Read your calendar" in page.get_data(as_text=True)
    assert (
        "calendar:read"
        in flow.browser.get("/.well-known/openid-configuration").get_json()["scopes_supported"]
    )
    response = flow.decide(location, page)
    assert "code=" in response.headers["Location"]


def test_id_token_and_userinfo_hooks(make_app, plugin_dir):
    shutil_copy(ROOT / "plugins" / "examples" / "rbac_roles.py", plugin_dir)
    write_plugin(
        plugin_dir,
        "locale",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_id_token(claims, context):
            return {"locale": "fr"}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    tokens = flow.tokens(scope="openid email roles")
    access = decode_jwt_unverified(tokens["access_token"])[1]
    assert access["user_role"] == "editor" and access["user_roles"] == ["editor", "viewer"]
    assert decode_jwt_unverified(tokens["id_token"])[1]["locale"] == "fr"
    assert flow.userinfo(tokens["access_token"]).get_json()["roles"] == ["editor", "viewer"]


def shutil_copy(source: Path, folder: Path) -> None:
    (folder / source.name).write_text(source.read_text())


def test_block_clients_example(make_app, plugin_dir):
    shutil_copy(ROOT / "plugins" / "examples" / "block_clients.py", plugin_dir)
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    client_id, secret = setup_m2m(app)
    assert cc_token(app.test_client(), client_id, secret, audience=API).status_code == 200
    app.config["BLOCKED_CLIENTS"] = [client_id]
    response = cc_token(app.test_client(), client_id, secret, audience=API)
    assert response.status_code == 403 and response.get_json()["error"] == "access_denied"


def test_before_user_created_can_refuse_and_shape_sign_ups(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "corporate",
        """
        from oauth import SignupDenied, hookimpl
        @hookimpl
        def before_user_created(user):
            if not user.email.endswith("@example.com"):
                raise SignupDenied("Only example.com addresses may sign up.")
            user.app_metadata = {"roles": ["member"]}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    browser = app.test_client()
    token = csrf_token_from(browser.get("/signup").get_data(as_text=True))
    refused = browser.post(
        "/signup", data={"email": "x@gmail.test", "password": "long enough", "csrf_token": token}
    )
    assert "Only example.com addresses may sign up." in refused.get_data(as_text=True)
    accepted = browser.post(
        "/signup", data={"email": "y@example.com", "password": "long enough", "csrf_token": token}
    )
    assert accepted.status_code == 302
    from oauth.storage.models import User

    with app.app_context():
        assert [u.email for u in User.select()] == ["y@example.com"]
        assert User.get().app_metadata == {"roles": ["member"]}
    cli = app.test_cli_runner().invoke(
        args=["users", "create", "z@other.test", "--password", "long enough"]
    )
    assert cli.exit_code == 1 and "Only example.com" in cli.output


def test_on_event_sees_committed_events_and_cannot_break_requests(make_app, plugin_dir, tmp_path):
    log_file = tmp_path / "events.jsonl"
    write_plugin(
        plugin_dir,
        "observer",
        f"""
        import json
        from oauth import hookimpl
        @hookimpl
        def on_event(event):
            with open({str(log_file)!r}, "a") as f:
                f.write(json.dumps(event) + "\\n")
            raise RuntimeError("observers may fail")
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = user_flow(app)
    assert flow.tokens()["access_token"]
    with app.app_context():
        audit.flush_spool()  # token.issued is spooled; on_event hears of it when it is ingested
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    types = [e["type"] for e in events]
    assert "consent.granted" in types and "token.issued" in types
    issued = next(e for e in events if e["type"] == "token.issued")
    assert (
        issued["client_id"] == flow.client_id
        and issued["details"]["grant_type"] == "authorization_code"
    )
    with app.app_context():
        (info,) = app.extensions["portcullis.plugins"].describe()
    assert info["failures"] >= 2


def test_statistics_and_the_cli(make_app, plugin_dir):
    write_plugin(
        plugin_dir,
        "counter",
        """
        from oauth import hookimpl
        @hookimpl
        def customize_access_token(claims, context):
            return {"counted": True}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    client_id, secret = setup_m2m(app)
    http = app.test_client()
    for _ in range(3):
        assert cc_token(http, client_id, secret, audience=API).status_code == 200
    runner = app.test_cli_runner()
    listing = json.loads(runner.invoke(args=["plugins", "list", "--json"]).output)
    assert listing == [
        {
            "name": "counter",
            "source": f"file {plugin_dir / 'counter.py'}",
            "hooks": ["customize_access_token"],
            "calls": 3,
            "failures": 0,
            "denials": 0,
            "mean_ms": listing[0]["mean_ms"],
            "per_hook": {
                "customize_access_token": {
                    "calls": 3, "failures": 0, "denials": 0, "mean_ms": listing[0]["mean_ms"],
                },
            },
        }
    ]  # fmt: skip
    text = runner.invoke(args=["plugins", "list"]).output
    assert "calls: 3" in text and "customize_access_token: 3 calls, 0 failures" in text
    tried = runner.invoke(
        args=["plugins", "try", "customize_access_token", "--client", client_id, "--audience", API]
    )
    assert tried.exit_code == 0, tried.output
    claims = json.loads(tried.output)
    assert (
        claims["counted"] is True and claims["gty"] == "client-credentials" and claims["aud"] == API
    )
    AuthActions(http, app).create_user()
    tried = runner.invoke(
        args=[
            "plugins",
            "try",
            "customize_access_token",
            "--client",
            client_id,
            "--user",
            "alice@example.com",
            "--scope",
            "openid",
        ]
    )
    assert json.loads(tried.output)["email"] == "alice@example.com"
    unknown = runner.invoke(args=["plugins", "try", "customize_access_token", "--client", "nope"])
    assert unknown.exit_code == 1 and "no client" in unknown.output
    with app.app_context():
        from oauth.storage.models import OAuthSession as Session

        assert Session.select().count() == 0  # a dry run saves nothing


def test_plugins_try_reports_denials(make_app, plugin_dir):
    shutil_copy(ROOT / "plugins" / "examples" / "block_clients.py", plugin_dir)
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    client_id, _ = setup_m2m(app)
    app.config["BLOCKED_CLIENTS"] = [client_id]
    result = app.test_cli_runner().invoke(
        args=["plugins", "try", "customize_access_token", "--client", client_id, "--audience", API]
    )
    assert result.exit_code == 1 and "denied: access_denied" in result.output


class HookServer:
    """A local HTTP server standing in for a customer's hook endpoint."""

    def __init__(self, answer, delay=0.0):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.requests.append((dict(self.headers), body))
                if delay:
                    import time

                    time.sleep(delay)
                status, payload = answer(json.loads(body))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


SECRET = "v1,whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_http_hook_signs_the_request_and_merges_claims(make_app):
    server = HookServer(lambda payload: (200, {"claims": {**payload["claims"], "plan": "gold"}}))
    try:
        app = make_app(HTTP_HOOK_URL=server.url, HTTP_HOOK_SECRET=SECRET)
        claims = decode_jwt_unverified(user_flow(app).tokens()["access_token"])[1]
        assert claims["plan"] == "gold"
        headers, body = server.requests[0]
        headers = {k.lower(): v for k, v in headers.items()}
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(
            hmac.new(b"0123456789abcdef0123456789abcdef", signed, hashlib.sha256).digest()
        ).decode()
        assert headers["webhook-signature"] == "v1," + expected
        payload = json.loads(body)
        assert payload["context"]["user"]["email"] == "alice@example.com"
        assert payload["context"]["grant_type"] == "authorization_code"
        assert payload["claims"]["sub"] == claims["sub"]
    finally:
        server.close()


def test_http_hook_refusal_and_failure_modes(make_app):
    refuse = HookServer(
        lambda payload: (200, {"error": {"http_code": 403, "message": "suspended"}})
    )
    broken = HookServer(lambda payload: (500, {"oops": True}))
    slow = HookServer(lambda payload: (200, {"claims": {}}), delay=2.0)
    try:
        app = make_app(HTTP_HOOK_URL=refuse.url)
        flow = user_flow(app)
        code, _ = flow.get_code()
        response = flow.exchange(code)
        assert (response.status_code, response.get_json()["error"]) == (403, "access_denied")
        assert response.get_json()["error_description"] == "suspended"
        for server, extra in ((broken, {}), (slow, {"HTTP_HOOK_TIMEOUT": 0.5})):
            app.config.update(HTTP_HOOK_URL=server.url, **extra)
            response = flow.exchange(code)
            assert (response.status_code, response.get_json()["error"]) == (500, "server_error")
            assert "http_hook" not in response.get_json()["error_description"]
        app.config.update(HTTP_HOOK_URL="http://127.0.0.1:9/unreachable")
        assert flow.exchange(code).status_code == 500
        with app.app_context():
            assert AuthorizationRequest.get().status == "approved"  # never consumed
    finally:
        for server in (refuse, broken, slow):
            server.close()


def test_every_hook_is_documented():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    specs = [name for name in vars(hooks.PortcullisHookspecs) if not name.startswith("_")]
    assert len(specs) >= 7
    for name in specs:
        section = re.search(rf"^### `{name}`\n(.*?)(?=^### |^## |\Z)", guide, re.S | re.M)
        assert section, f"hook {name} has no section in docs/plugins.md"
        assert "```python" in section.group(1) and "@hookimpl" in section.group(1), (
            f"{name} needs an example"
        )
        assert getattr(hooks.PortcullisHookspecs, name).__doc__, f"hookspec {name} has no docstring"
