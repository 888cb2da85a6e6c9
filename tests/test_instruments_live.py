"""Issue 12's instruments against a real gunicorn with three workers, started once for the
module with ``PORTCULLIS_LOG_FORMAT=json``: a full flow leaves only JSON lines and no secret
in the server's log, and /metrics adds up every worker."""

from __future__ import annotations

import json
import re
import secrets
import time
from email import policy
from email.parser import BytesParser
from urllib.parse import urlencode

import pytest
import requests

from app import create_app
from tests.m2m_helpers import API, setup_m2m
from tests.mail_helpers import link_in
from tests.oauth_helpers import REDIRECT, basic_auth_header, make_client, pkce_pair, query
from tests.test_production_server import csrf
from tests.test_rate_limits_live import serve

PASSWORD = "long enough password"
NEW_PASSWORD = "another long password"
METRICS_TOKEN = "metrics-" + secrets.token_hex(12)
# A plugin that logs while a token is issued: its record must carry the request's id.
LOGGING_PLUGIN = """
import logging
from oauth import hookimpl

@hookimpl
def customize_access_token(claims, context):
    logging.getLogger("plugin.noisy").info("customizing a token for %s", context.client.client_id)
"""
TOKENS_ISSUED = re.compile(
    r'^portcullis_tokens_issued_total\{grant_type="client_credentials"\} (\S+)$', re.M
)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("instruments")
    url = f"sqlite:///{folder / 'portcullis.db'}"
    secret_key = secrets.token_hex(16)
    (folder / "plugins").mkdir()
    (folder / "plugins" / "noisy.py").write_text(LOGGING_PLUGIN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTCULLIS_INSTANCE_PATH", str(folder / "instance"))
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": secret_key,
                          "PLUGINS_DIR": str(folder / "plugins")})  # fmt: skip
        client_id, client_secret = make_client(app)
        machine_id, machine_secret = setup_m2m(app)
        app.extensions["portcullis.mail"].join(timeout=10)
        app.extensions["portcullis.database"].close_all()
    settings = {"SECRET_KEY": secret_key, "LOG_FORMAT": "json", "METRICS_TOKEN": METRICS_TOKEN,
                "PLUGINS_DIR": folder / "plugins"}  # fmt: skip
    with serve(url, folder, workers=3, **settings) as base:
        yield {
            "base": base,
            "log": folder / "gunicorn.log",
            "outbox": folder / "instance" / "outbox",
            "client": (client_id, client_secret),
            "machine": (machine_id, machine_secret),
        }


def log_entries(live) -> list[dict]:
    lines = live["log"].read_text().splitlines()
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line in the server's log: {line!r}")
    return entries


def post_form(browser, url: str, **data):
    data["csrf_token"] = csrf(browser.get(url).text)
    return browser.post(url, data=data, allow_redirects=False, timeout=10)


def reset_link(live, email: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in sorted(live["outbox"].glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if message["To"] == email and "/reset-password" in message.get_body().get_content():
                return link_in(message, "/reset-password")
        time.sleep(0.2)
    pytest.fail("no password reset mail")


def authorize(base: str, browser, client_id: str) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": "openid email", "state": "state-" + secrets.token_hex(8),
        "nonce": "nonce-" + secrets.token_hex(8),
        "code_challenge": challenge, "code_challenge_method": "S256",
    }  # fmt: skip
    response = browser.get(base + "/oauth/authorize?" + urlencode(params), allow_redirects=False)
    consent = base + response.headers["Location"]
    decided = post_form(browser, consent, decision="approve")
    assert decided.status_code == 302 and decided.headers["Location"].startswith(REDIRECT)
    return query(decided.headers["Location"])["code"], verifier


def test_a_full_flow_logs_json_lines_with_request_ids_and_no_secret(live):
    base, (client_id, client_secret) = live["base"], live["client"]
    email = f"flow-{secrets.token_hex(4)}@example.com"
    browser = requests.Session()
    signed_up = post_form(browser, base + "/signup", email=email, password=PASSWORD)
    assert signed_up.status_code == 302
    browser = requests.Session()  # a new browser signs in with the password
    assert post_form(browser, base + "/login", email=email, password=PASSWORD).status_code == 302
    code, verifier = authorize(base, browser, client_id)

    client_auth = basic_auth_header(client_id, client_secret)
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                "code_verifier": verifier}  # fmt: skip
    first = requests.post(base + "/oauth/token", data=exchange, headers=client_auth, timeout=10)
    assert first.status_code == 200, first.text
    first = first.json()
    renewal = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = requests.post(base + "/oauth/token", data=renewal, headers=client_auth, timeout=10)
    assert second.status_code == 200, second.text
    second = second.json()
    bearer = {"Authorization": f"Bearer {second['access_token']}", "X-Request-ID": "trace-me-1"}
    userinfo = requests.get(base + "/oauth/userinfo", headers=bearer, timeout=10)
    assert userinfo.status_code == 200 and userinfo.headers["X-Request-ID"] == "trace-me-1"
    revoked = requests.post(base + "/oauth/revoke", headers=client_auth, timeout=10,
                            data={"token": second["refresh_token"]})  # fmt: skip
    assert revoked.status_code == 200
    machine_id, machine_secret = live["machine"]
    machine = requests.post(base + "/oauth/token", timeout=10,
                            data={"grant_type": "client_credentials", "audience": API},
                            headers=basic_auth_header(machine_id, machine_secret))  # fmt: skip
    assert machine.status_code == 200, machine.text

    stranger = requests.Session()
    assert post_form(stranger, base + "/forgot-password", email=email).status_code in (200, 302)
    link = reset_link(live, email)
    reset_token = query(link)["token"]
    page = stranger.get(link, timeout=10)
    assert page.status_code == 200
    done = stranger.post(link, allow_redirects=False, timeout=10, data={
        "csrf_token": csrf(page.text), "token": reset_token,
        "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD,
    })  # fmt: skip
    assert done.status_code == 302, done.text
    wrong = post_form(requests.Session(), base + "/login", email=email, password="not it at all")
    assert wrong.status_code == 200

    entries = log_entries(live)  # every line of the server (gunicorn's own too) is JSON
    requests_seen = [e for e in entries if e["logger"] == "portcullis.request"]
    assert all(e.get("request_id") and e["path"].startswith("/") for e in requests_seen)
    assert all("?" not in e["path"] and "?" not in e["message"] for e in requests_seen)
    (traced,) = [e for e in requests_seen if e["request_id"] == "trace-me-1"]
    assert traced["path"] == "/oauth/userinfo" and traced["client_id"] == client_id
    assert traced["user_id"] and traced["status"] == 200
    token_lines = [e for e in requests_seen if e["path"] == "/oauth/token"]
    assert {e["client_id"] for e in token_lines} == {client_id, machine_id}
    assert any(e["logger"].startswith("gunicorn") for e in entries)
    plugin_lines = [e for e in entries if e["logger"] == "plugin.noisy"]
    assert len(plugin_lines) == 3  # code exchange, refresh, client credentials
    token_ids = {e["request_id"] for e in token_lines}
    assert all(e.get("request_id") in token_ids for e in plugin_lines)

    text = live["log"].read_text()
    secrets_used = {
        "password": PASSWORD, "new password": NEW_PASSWORD, "wrong password": "not it at all",
        "code": code, "code verifier": verifier, "reset token": reset_token,
        "client secret": client_secret, "machine secret": machine_secret,
        "metrics token": METRICS_TOKEN, "session cookie": browser.cookies["session"],
        "access token": first["access_token"], "refresh token": first["refresh_token"],
        "id token": first["id_token"], "second access token": second["access_token"],
        "second refresh token": second["refresh_token"],
        "machine token": machine.json()["access_token"],
    }  # fmt: skip
    leaked = [name for name, value in secrets_used.items() if value in text]
    assert leaked == []


def scrape(base: str, **headers) -> requests.Response:
    with requests.Session() as fresh:  # a new connection: any worker may answer
        return fresh.get(base + "/metrics", headers=headers, timeout=10)


def issued(base: str) -> float:
    response = scrape(base)
    assert response.status_code == 200
    match = TOKENS_ISSUED.search(response.text)
    return float(match.group(1)) if match else 0.0


def token_lines(live) -> list[dict]:
    return [e for e in log_entries(live) if e.get("endpoint") == "api.token"]


def test_metrics_add_up_every_worker(live):
    base, (machine_id, machine_secret) = live["base"], live["machine"]
    before = issued(base)
    earlier = len(token_lines(live))
    n, workers = 0, set()
    # At least 12 requests, and on until two workers have answered some (each request comes
    # on a new connection, so any worker may take it): the sum must cross workers.
    while n < 12 or (len(workers) < 2 and n < 100):
        with requests.Session() as fresh:
            response = fresh.post(base + "/oauth/token", timeout=10,
                                  data={"grant_type": "client_credentials", "audience": API},
                                  headers=basic_auth_header(machine_id, machine_secret))  # fmt: skip
            assert response.status_code == 200
        n += 1
        workers = {e["process"] for e in token_lines(live)[earlier:]}
    assert len(workers) >= 2
    assert [issued(base) - before for _ in range(5)] == [n] * 5
    text = scrape(base).text
    assert 'portcullis_http_requests_total{endpoint="api.token",method="POST",status="200"}' in text
    assert "portcullis_http_request_duration_seconds_bucket" in text


def test_metrics_access_over_http(live):
    base = live["base"]
    proxied = scrape(base, **{"X-Forwarded-For": "198.51.100.4"})
    assert proxied.status_code == 401 and "portcullis_" not in proxied.text
    wrong = scrape(base, **{"X-Forwarded-For": "198.51.100.4", "Authorization": "Bearer no"})
    assert wrong.status_code == 403 and "portcullis_" not in wrong.text
    token = {"X-Forwarded-For": "198.51.100.4", "Authorization": f"Bearer {METRICS_TOKEN}"}
    assert scrape(base, **token).status_code == 200
    health = requests.get(base + "/healthz", headers={"X-Forwarded-For": "198.51.100.4"})
    assert health.status_code == 200 and set(health.json()) >= {"database", "keys", "mail"}
