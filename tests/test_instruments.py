"""Issue 12's instruments in-process: request ids, the request log line, the metrics each
service counts, who may read /metrics, and what /healthz says (the live, several-worker
proof is in tests/test_instruments_live.py)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys

import psycopg
import pytest
from prometheus_client import REGISTRY

from app import create_app
from oauth import logs
from oauth.storage.models import SigningKey
from tests.conftest import FAST_HASHING, PG_ADMIN_URL, REQUIRE_PG
from tests.m2m_helpers import API, cc_token, setup_m2m
from tests.oauth_helpers import Flow, make_client
from tests.test_mail import sign_up
from tests.test_plugins import write_plugin

REMOTE = {"REMOTE_ADDR": "203.0.113.7"}


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "portcullis.request"]


# --- X-Request-ID -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123_X.y", True), ("x" * 128, True), ("x" * 129, False), ("with space", False),
     ("caf\u00e9", False), ("", False)],
)  # fmt: skip
def test_a_sane_request_id_is_kept_anything_else_replaced(client, sent, kept):
    response = client.get("/livez", headers={"X-Request-ID": sent})
    echoed = response.headers["X-Request-ID"]
    assert (echoed == sent) is kept
    if not kept:
        assert len(echoed) == 32 and echoed.isalnum()


def test_every_response_carries_a_request_id(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False, ALLOW_DYNAMIC_REGISTRATION=True)
    app.config["REGISTRATION_RATE_LIMIT"] = "1 per hour"

    def boom():
        raise RuntimeError("broken view")

    app.add_url_rule("/boom", "boom", boom)
    client = app.test_client()
    body = {"redirect_uris": ["https://app.example/cb"]}
    answers = [
        client.get("/nowhere"),
        client.get("/boom"),
        client.post("/oauth/register", json=body),
        client.post("/oauth/register", json=body),
        client.post("/oauth/token", data={}),
    ]
    assert [r.status_code for r in answers] == [404, 500, 201, 429, 400]
    ids = [r.headers.get("X-Request-ID") for r in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    echoed = client.get("/nowhere", headers={"X-Request-ID": "trace-1"})
    assert echoed.headers.getlist("X-Request-ID") == ["trace-1"]


# --- the request line ---------------------------------------------------------------------


def test_one_line_per_request_without_the_query_naming_client_and_user(app, client, caplog):
    caplog.set_level(logging.INFO, logger="portcullis.request")
    client_id, secret = make_client(app)
    flow = Flow(app, client, client_id=client_id, secret=secret)
    user = flow.auth.create_user()
    flow.auth.login()
    caplog.clear()
    code, _ = flow.get_code()
    tokens = flow.exchange(code).get_json()
    flow.userinfo(tokens["access_token"])
    lines = request_lines(caplog)
    by_path = {r.path: r for r in lines}
    authorize = by_path["/oauth/authorize"]
    assert authorize.client_id == client_id and authorize.user_id == user.id
    assert authorize.endpoint == "oauth.authorize" and authorize.method == "GET"
    token = by_path["/oauth/token"]
    assert token.client_id == client_id and token.user_id == user.id and token.status == 200
    assert by_path["/oauth/userinfo"].user_id == user.id
    assert by_path["/oauth/userinfo"].client_id == client_id
    text = "\n".join(r.getMessage() for r in lines)
    assert "?" not in text and code not in text and tokens["access_token"] not in text
    assert all(r.request_id and r.duration_ms >= 0 for r in lines)
    assert len(lines) == len({r.request_id for r in lines})  # one line per request

    caplog.clear()
    machine_id, machine_secret = setup_m2m(app)
    cc_token(client, machine_id, machine_secret, audience=API)
    (line,) = request_lines(caplog)
    assert line.client_id == machine_id and line.user_id is None


def test_records_during_a_request_carry_its_id():
    state, token = logs.begin("req-42")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
        logs.RequestIdFilter().filter(record)
        entry = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.end(token)
    assert record.request_id == "req-42"
    assert entry["request_id"] == "req-42" and entry["message"] == "hello you"
    outside = logging.LogRecord("x", logging.WARNING, __file__, 1, "later", (), sys.exc_info())
    assert "request_id" not in json.loads(logs.JsonFormatter().format(outside))


def test_werkzeug_request_lines_lose_their_query_string():
    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, '"%s" %s %s',
        ("GET /reset?token=SECRET&x=1 HTTP/1.1", "200", "-"), None,
    )  # fmt: skip
    logs.QueryStringFilter().filter(record)
    assert record.getMessage() == '"GET /reset HTTP/1.1" 200 -'


def test_log_format_is_checked(make_app, capsys):
    with pytest.raises(SystemExit):
        make_app(LOG_FORMAT="xml")
    assert "PORTCULLIS_LOG_FORMAT: expected text or json, got 'xml'" in capsys.readouterr().err
    assert make_app(LOG_FORMAT=" JSON ").config["LOG_FORMAT"] == "json"
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h.formatter, logs.JsonFormatter)]
    for handler in ours:  # the JSON handler is the process's: leave the others' logging alone
        root.removeHandler(handler)
    assert ours


# --- what the services count --------------------------------------------------------------


def test_tokens_by_grant_type_and_refresh_reuse(make_app):
    app = make_app(REFRESH_TOKEN_REUSE_INTERVAL=0)
    client_id, secret = make_client(app)
    flow = Flow(app, app.test_client(), client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    before = {
        grant: sample("portcullis_tokens_issued_total", grant_type=grant)
        for grant in ("authorization_code", "refresh_token", "client_credentials")
    }
    reuse = sample("portcullis_refresh_token_reuse_detected_total")
    first = flow.tokens()
    assert flow.refresh(first["refresh_token"]).status_code == 200
    assert flow.refresh(first["refresh_token"]).status_code == 400  # reuse: session revoked
    machine_id, machine_secret = setup_m2m(app)
    http = app.test_client()
    assert cc_token(http, machine_id, machine_secret, audience=API).status_code == 200
    assert cc_token(http, machine_id, "wrong", audience=API).status_code == 401
    after = {grant: sample("portcullis_tokens_issued_total", grant_type=grant) for grant in before}
    assert {g: after[g] - before[g] for g in before} == {
        "authorization_code": 1, "refresh_token": 1, "client_credentials": 1,
    }  # fmt: skip
    assert sample("portcullis_refresh_token_reuse_detected_total") - reuse == 1


def test_failed_sign_ins_and_requests_by_endpoint(app, client, auth):
    auth.create_user()
    failures = sample("portcullis_sign_in_failures_total", method="password")
    posts = sample(
        "portcullis_http_requests_total", endpoint="auth.login", method="POST", status="200"
    )
    auth.login(password="wrong guess")
    auth.login(email="nobody@example.com")
    assert sample("portcullis_sign_in_failures_total", method="password") - failures == 2
    assert (
        sample("portcullis_http_requests_total", endpoint="auth.login", method="POST", status="200")
        - posts
        == 2
    )
    assert sample("portcullis_http_request_duration_seconds_count", endpoint="auth.login") >= 2
    client.open("/livez", method="BREW")  # an unknown method is "other", not a new label
    assert sample("portcullis_http_requests_total", endpoint="none", method="other",
                  status="405") >= 1  # fmt: skip


def test_hook_calls_and_failures_per_plugin(make_app, plugin_dir):
    name = "flaky_" + secrets.token_hex(3)
    write_plugin(
        plugin_dir,
        name,
        """
        from oauth import hookimpl
        @hookimpl
        def customize_client_credentials_token(client, scope, audience, context):
            if scope == ["write:things"]:
                raise RuntimeError("boom")
            return {}
    """,
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    machine_id, machine_secret = setup_m2m(app)
    http = app.test_client()
    assert cc_token(http, machine_id, machine_secret, audience=API).status_code == 200
    failing = cc_token(http, machine_id, machine_secret, audience=API, scope="write:things")
    assert failing.status_code == 500
    labels = {"plugin": name, "hook": "customize_client_credentials_token"}
    assert sample("portcullis_plugin_hook_calls_total", **labels) == 2
    assert sample("portcullis_plugin_hook_failures_total", **labels) == 1


def test_mail_sent_and_failed(make_app):
    from tests.mail_helpers import wait_for_sender

    sent, failed = (
        sample("portcullis_mail_total", outcome="sent"),
        sample("portcullis_mail_total", outcome="failed"),
    )
    good = make_app()
    sign_up(good.test_client())
    wait_for_sender(good)
    assert sample("portcullis_mail_total", outcome="sent") - sent == 1
    bad = make_app(MAIL_URL="smtp://127.0.0.1:9", MAIL_TIMEOUT=2)
    sign_up(bad.test_client(), email="other@example.com")
    wait_for_sender(bad)
    assert sample("portcullis_mail_total", outcome="failed") - failed == 1


# --- who may read /metrics -----------------------------------------------------------------


def test_metrics_for_this_machine_or_the_token_holder(make_app):
    app = make_app(METRICS_TOKEN="s3cret-metrics-token")
    client = app.test_client()
    local = client.get("/metrics")
    assert local.status_code == 200 and local.mimetype == "text/plain"
    assert "portcullis_http_requests_total" in local.get_data(as_text=True)
    remote = client.get("/metrics", environ_base=REMOTE)
    assert remote.status_code == 401 and "portcullis" not in remote.get_data(as_text=True)
    assert remote.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", environ_base=REMOTE, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "portcullis" not in wrong.get_data(as_text=True)
    bearer = {"Authorization": "Bearer s3cret-metrics-token"}
    assert client.get("/metrics", environ_base=REMOTE, headers=bearer).status_code == 200
    # Behind a proxy on this host with PROXY_HOPS=0 every caller is 127.0.0.1: a forwarded
    # request is not trusted as local.
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        proxied = client.get("/metrics", headers={header: "198.51.100.1"})
        assert proxied.status_code == 401, header


def test_without_a_token_only_this_machine_reads_metrics(make_app):
    client = make_app().test_client()
    anyone = {"Authorization": "Bearer "}
    assert client.get("/metrics", environ_base=REMOTE, headers=anyone).status_code == 403
    assert client.get("/metrics", environ_base=REMOTE).status_code == 401


def test_with_proxy_hops_the_forwarded_address_decides(make_app):
    client = make_app(PROXY_HOPS=1).test_client()
    outside = client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1"})
    assert outside.status_code == 401
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


# --- /healthz ------------------------------------------------------------------------------


def test_healthz_names_each_part(client):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["keys"]["status"] == "ok" and body["keys"]["algorithm"] == "ES256"
    assert isinstance(body["keys"]["cache_age_seconds"], int | float)
    assert "failed" not in body and "kid" not in json.dumps(body)


def test_healthz_fails_without_a_current_key_and_says_why_only_here(make_app):
    app = make_app(KEYS_REFRESH_SECONDS=0)
    client = app.test_client()
    with app.app_context():
        SigningKey.update(state="revoked").where(
            (SigningKey.alg == "ES256") & (SigningKey.state == "current")
        ).execute()
    local = client.get("/healthz")
    assert local.status_code == 503
    body = local.get_json()
    assert body["status"] == "unavailable" and body["failed"] == ["keys"]
    assert body["keys"]["error"] == "no current ES256 signing key"
    for caller in ({"environ_base": REMOTE}, {"headers": {"X-Forwarded-For": "198.51.100.1"}}):
        remote = client.get("/healthz", **caller)
        assert remote.status_code == 503 and remote.get_json()["failed"] == ["keys"]
        assert "error" not in remote.get_json()["keys"]


@pytest.fixture
def own_app(tmp_path):
    """Apps on databases of their own (the test breaks them), closed afterwards."""
    built = []

    def build(url: str):
        config = {"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "test-" + secrets.token_hex(8),
                  "PLUGINS_DIR": str(tmp_path / "plugins"), **FAST_HASHING}  # fmt: skip
        built.append(create_app(config))
        return built[-1]

    yield build
    for app in built:
        app.extensions["portcullis.mail"].join(timeout=10)
        app.extensions["portcullis.database"].close_all()


def assert_database_failed(client):
    local = client.get("/healthz")
    assert local.status_code == 503
    body = local.get_json()
    assert body["status"] == "unavailable" and body["failed"] == ["database"]
    assert body["database"] == "error" and body["database_error"]
    remote = client.get("/healthz", environ_base=REMOTE).get_json()
    assert remote["failed"] == ["database"] and "database_error" not in remote
    assert "error" not in json.dumps(remote).replace('"error"', "")  # the word, not a text


def test_healthz_sees_a_sqlite_file_that_became_unreadable(own_app, tmp_path):
    path = tmp_path / "broken.db"
    app = own_app(f"sqlite:///{path}")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    app.extensions["portcullis.database"].close_all()  # the WAL goes into the file
    for extra in (path.with_name("broken.db-wal"), path.with_name("broken.db-shm")):
        extra.unlink(missing_ok=True)
    path.write_bytes(b"this is not a database" * 300)
    assert_database_failed(client)


def test_healthz_sees_a_dropped_postgresql_database(own_app):
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if REQUIRE_PG:
            pytest.fail(str(error))
        pytest.skip(f"PostgreSQL not reachable: {error}")
    name = f"portcullis_health_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            app = own_app(re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN_URL))
            client = app.test_client()
            assert client.get("/healthz").status_code == 200
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            assert_database_failed(client)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
