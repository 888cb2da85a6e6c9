"""PROXY_HOPS (forwarded headers believed only from the configured proxies) and
``flask backup`` (an online SQLite copy)."""

from __future__ import annotations

import sqlite3
import stat

import pytest
from flask import request

from oauth.storage.models import AuditEvent
from tests.conftest import AuthActions


def failed_logins_from(app, forwarded: list[str]) -> list[int]:
    auth = AuthActions(app.test_client(), app)
    codes = []
    for address in forwarded:
        auth.client.environ_base.update(REMOTE_ADDR="10.0.0.2")  # the proxy
        token = auth.csrf()
        data = {"email": "alice@example.com", "password": "guess", "csrf_token": token}
        codes.append(
            auth.client.post("/login", data=data, headers={"X-Forwarded-For": address}).status_code
        )
    return codes


def test_behind_one_proxy_limits_and_audit_see_the_client_address(make_app):
    app = make_app(PROXY_HOPS=1, LOGIN_RATE_LIMIT="2 per minute")
    AuthActions(app.test_client(), app).create_user()
    # two clients behind the proxy are counted apart
    assert failed_logins_from(app, ["203.0.113.1"] * 3) == [200, 200, 429]
    assert failed_logins_from(app, ["203.0.113.2"]) == [200]
    with app.app_context():
        ips = {
            event.ip for event in AuditEvent.select().where(AuditEvent.event_type == "login.failed")
        }
    assert ips == {"203.0.113.1", "203.0.113.2"}


def test_without_proxy_hops_a_client_cannot_choose_its_address(make_app):
    app = make_app(LOGIN_RATE_LIMIT="2 per minute")
    AuthActions(app.test_client(), app).create_user()
    codes = failed_logins_from(app, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
    assert codes == [200, 200, 429]  # all counted under the real peer address


def scheme_seen(app) -> str:
    @app.route("/test-scheme")
    def scheme():
        return request.scheme

    return app.test_client().get("/test-scheme", headers={"X-Forwarded-Proto": "https"}).text


def test_forwarded_proto_marks_https_only_behind_a_proxy(make_app):
    assert scheme_seen(make_app(PROXY_HOPS=1)) == "https"
    assert scheme_seen(make_app()) == "http"


def test_proxy_hops_must_be_a_number(make_app, capsys):
    with pytest.raises(SystemExit):
        make_app(PROXY_HOPS="one")
    assert "PORTCULLIS_PROXY_HOPS" in capsys.readouterr().err


def test_backup_is_a_consistent_private_copy(make_app, tmp_path, database_url):
    app = make_app()
    AuthActions(app.test_client(), app).create_user()
    runner = app.test_cli_runner()
    target = tmp_path / "copy.db"
    result = runner.invoke(args=["backup", str(target)])
    if not database_url.startswith("sqlite"):
        assert result.exit_code == 1 and "pg_dump" in result.output
        assert not target.exists()
        return
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT email FROM user").fetchall() == [("alice@example.com",)]
    again = runner.invoke(args=["backup", str(target)])
    assert again.exit_code == 1 and "exists" in again.output
