"""Limits over real HTTP: four gunicorn workers count as one (the default storage), two instances
share Redis, the owner still signs in, a valid client is still served (issue 9 items 1-3)."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.conftest import AuthActions
from tests.live import built_app, csrf, flask_command, fresh_database, serve
from tests.m2m_helpers import API, setup_m2m

__all__ = ["serve"]  # serve moved to tests/live.py; other modules still import it from here
PASSWORD = "correct horse"


def create_user(database_url: str, folder, email: str, secret_key: str) -> None:
    command = ["users", "create", email, "--password", PASSWORD]
    flask_command(database_url, folder, *command, SECRET_KEY=secret_key)


def login(base: str, email: str, password: str, browser: requests.Session | None = None):
    """One sign-in attempt on a new connection (so attempts spread over the workers)."""
    browser = browser or requests.Session()
    token = csrf(browser.get(base + "/login", timeout=10).text)
    data = {"email": email, "password": password, "csrf_token": token}
    with requests.Session() as connection:  # a fresh TCP connection, the browser's cookies
        connection.cookies.update(browser.cookies)
        response = connection.post(base + "/login", data=data, allow_redirects=False, timeout=10)
    browser.cookies.update(response.cookies)
    return response


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def four_workers(request, tmp_path_factory):
    """One four-worker server per database for the module: alice, and an M2M client. The two
    tests count different keys (an account's sign-ins, a client's authentications)."""
    folder = tmp_path_factory.mktemp(f"limits-{request.param}")
    secret_key = secrets.token_hex(16)
    with fresh_database(request.param, folder, request) as url:
        with built_app(url, secret_key, folder) as app:
            AuthActions(app.test_client(), app).create_user("alice@example.com", PASSWORD)
            client_id, secret = setup_m2m(app)
        limits = {"LOGIN_RATE_LIMIT": "5 per minute", "CLIENT_AUTH_RATE_LIMIT": "4 per minute"}
        with serve(url, folder, SECRET_KEY=secret_key, **limits) as base:
            yield base, client_id, secret


def test_four_workers_hold_one_limit_and_the_owner_still_signs_in(four_workers):
    base, _, _ = four_workers
    owner = requests.Session()
    assert login(base, "alice@example.com", PASSWORD, owner).status_code == 302
    assert "portcullis_device" in owner.cookies
    codes = [login(base, "alice@example.com", "guess").status_code for _ in range(12)]
    assert codes.count(200) == 5 and codes[5:] == [429] * 7  # not 4 x 5
    # A stranger's browser with the right password is slowed too; the owner's is not.
    assert login(base, "alice@example.com", PASSWORD).status_code == 429
    owner.cookies.pop("session", None)
    assert login(base, "alice@example.com", PASSWORD, owner).status_code == 302


def test_failed_client_authentication_across_workers(four_workers):
    base, client_id, secret = four_workers
    form = {"grant_type": "client_credentials", "audience": API}

    def token(password: str) -> int:
        with requests.Session() as http:
            response = http.post(base + "/oauth/token", data=form, auth=(client_id, password))
            return response.status_code

    codes = [token("wrong") for _ in range(10)]
    assert codes == [401] * 4 + [429] * 6
    assert {token(secret) for _ in range(8)} == {200}  # the real client is always served


def test_two_instances_share_limits_through_redis(tmp_path):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379", socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable: {error}")
    secret_key, email = secrets.token_hex(16), f"bob-{secrets.token_hex(4)}@example.com"
    shared = {"SECRET_KEY": secret_key, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}
    databases = [f"sqlite:///{tmp_path}/one.db", f"sqlite:///{tmp_path}/two.db"]
    for n, url in enumerate(databases):  # separate databases: only Redis is shared
        create_user(url, tmp_path / str(n), email, secret_key)
    with (
        serve(databases[0], tmp_path / "0", workers=1, **shared) as first,
        serve(databases[1], tmp_path / "1", workers=1, **shared) as second,
    ):
        codes = [login((first, second)[n % 2], email, "guess").status_code for n in range(8)]
        assert codes == [200] * 5 + [429] * 3
