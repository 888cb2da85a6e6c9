"""Throttles that slow the guesser and never lock out the owner (issue 9 items 1-3).

In-process, on both databases: the limits live in the application's database by default, so
two applications on one database (two workers) count together; Redis is shared the same way.
The live multi-worker and two-instance proofs are in tests/test_rate_limits_live.py.
"""

from __future__ import annotations

import secrets

import pytest

from oauth.ratelimit.passwords import DEVICE_COOKIE
from oauth.storage.models import RateLimitCounter
from tests.conftest import AuthActions
from tests.m2m_helpers import API, cc_token, setup_m2m
from tests.oauth_helpers import Flow, basic_auth_header, make_client

ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER_HOME = {"REMOTE_ADDR": "198.51.100.7"}
OWNER_TRAVELLING = {"REMOTE_ADDR": "192.0.2.44"}


class Browser(AuthActions):
    """A browser at a fixed IP address (its own cookie jar)."""

    def __init__(self, app, environ: dict):
        super().__init__(app.test_client(), app)
        self.client.environ_base.update(environ)

    def has_device_cookie(self) -> bool:
        return self.client.get_cookie(DEVICE_COOKIE) is not None


def limited_app(make_app, **config):
    settings = {
        "LOGIN_RATE_LIMIT": "3 per minute",
        "LOGIN_IP_RATE_LIMIT": "50 per minute",
        "LOGIN_ACCOUNT_RATE_LIMIT": "6 per minute",
    }
    settings.update(config)
    return make_app(**settings)


def test_guessing_from_one_address_does_not_lock_out_the_owner(make_app):
    app = limited_app(make_app)
    AuthActions(app.test_client(), app).create_user()
    attacker = Browser(app, ATTACKER)
    codes = [attacker.login(password="guess").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = attacker.login()  # even the right password, while the attacker's limit holds
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in refused.get_data(as_text=True)
    # The owner, from another address and a browser that never signed in, gets in.
    assert Browser(app, OWNER_TRAVELLING).login().status_code == 302


def test_a_browser_that_signed_in_before_keeps_signing_in_during_a_distributed_attack(make_app):
    app = limited_app(make_app)
    AuthActions(app.test_client(), app).create_user()
    owner = Browser(app, OWNER_HOME)
    assert owner.login().status_code == 302 and owner.has_device_cookie()
    owner.logout()
    for n in range(8):  # guesses spread over many addresses exhaust the account-wide limit
        Browser(app, {"REMOTE_ADDR": f"203.0.113.{n}"}).login(password="guess")
    assert Browser(app, OWNER_TRAVELLING).login().status_code == 429  # unknown browser: slowed
    assert owner.login().status_code == 302  # the owner's own browser is not


def test_a_device_cookie_is_bound_to_its_account_and_has_its_own_limit(make_app):
    app = limited_app(make_app)
    AuthActions(app.test_client(), app).create_user()
    AuthActions(app.test_client(), app).create_user(email="mallory@example.com")
    mallory = Browser(app, ATTACKER)
    assert mallory.login(email="mallory@example.com").status_code == 302
    mallory.logout()
    # Mallory's device cookie buys nothing against Alice's account: the usual limits apply.
    codes = [mallory.login(password="guess").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # A stolen device cookie cannot be used to guess without limit either.
    owner = Browser(app, OWNER_HOME)
    assert owner.login().status_code == 302
    owner.logout()
    codes = [owner.login(password="guess").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_a_forged_device_cookie_is_ignored(make_app):
    app = limited_app(make_app, LOGIN_ACCOUNT_RATE_LIMIT="2 per minute")
    AuthActions(app.test_client(), app).create_user()
    for n in range(3):
        Browser(app, {"REMOTE_ADDR": f"203.0.113.{n}"}).login(password="guess")
    forger = Browser(app, OWNER_TRAVELLING)
    forger.client.set_cookie(DEVICE_COOKIE, "eyJhIjoiYiJ9.forged.signature")
    assert forger.login().status_code == 429


def test_success_forgets_the_failures_of_that_address(make_app):
    app = limited_app(make_app)
    AuthActions(app.test_client(), app).create_user()
    owner = Browser(app, OWNER_HOME)
    for _ in range(2):
        assert owner.login(password="typo").status_code == 200
    assert owner.login().status_code == 302
    owner.logout()
    owner.client.delete_cookie(DEVICE_COOKIE)
    assert [owner.login(password="typo").status_code for _ in range(3)] == [200, 200, 200]


def test_one_address_spraying_many_accounts_is_slowed(make_app):
    app = limited_app(make_app, LOGIN_IP_RATE_LIMIT="4 per minute")
    sprayer = Browser(app, ATTACKER)
    codes = [sprayer.login(email=f"user{n}@example.com").status_code for n in range(5)]
    assert codes == [200, 200, 200, 200, 429]


def test_the_current_password_check_goes_through_the_same_limits(make_app):
    app = limited_app(make_app)
    owner = Browser(app, OWNER_HOME)
    owner.create_user()
    assert owner.login().status_code == 302

    def change(current: str):
        token = owner.csrf("/settings/security")
        data = {"csrf_token": token, "current_password": current}
        data.update(new_password="another long pass", new_password_confirm="another long pass")
        return owner.client.post("/settings/password", data=data)

    codes = [change("guess").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    page = change("correct horse")
    assert page.status_code == 429 and "Retry-After" in page.headers


def test_two_workers_on_one_database_count_together(make_app, database_url):
    """The default storage is the database: every worker (app) sees every other's failures."""
    shared = {"DATABASE_URL": database_url, "SECRET_KEY": secrets.token_hex(16)}
    first, second = limited_app(make_app, **shared), limited_app(make_app, **shared)
    AuthActions(first.test_client(), first).create_user()
    one, two = Browser(first, ATTACKER), Browser(second, ATTACKER)
    codes = [(one if n % 2 else two).login(password="guess").status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]
    with first.app_context():
        assert RateLimitCounter.select().count() > 0  # kept in the database itself


def test_redis_storage_is_shared_by_two_instances(make_app):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379", socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable: {error}")
    storage = {
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379",
        "SECRET_KEY": secrets.token_hex(16),
    }
    first, second = limited_app(make_app, **storage), limited_app(make_app, **storage)
    email = f"alice-{secrets.token_hex(4)}@example.com"  # fresh keys on a shared Redis
    ip = {"REMOTE_ADDR": f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.1"}
    AuthActions(first.test_client(), first).create_user(email=email)  # one shared database
    one, two = Browser(first, ip), Browser(second, ip)
    codes = [(one if n % 2 else two).login(email, "guess").status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]
    with first.app_context():
        assert RateLimitCounter.select().count() == 0  # nothing written to the database


def test_valid_clients_are_never_refused_for_someone_elses_failures(make_app):
    app = make_app(CLIENT_AUTH_RATE_LIMIT="2 per minute")
    client_id, secret = setup_m2m(app)
    attacker = app.test_client()
    attacker.environ_base.update(ATTACKER)
    wrong = basic_auth_header(client_id, "wrong")
    endpoints = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"]
    form = {"token": "x", "grant_type": "client_credentials"}
    statuses = [
        attacker.post(path, data=form, headers=wrong).status_code
        for path in endpoints
        for _ in range(2)
    ]
    assert statuses == [401, 401, 429, 429, 429, 429]  # one count over the three endpoints
    right = basic_auth_header(client_id, secret)
    for http in (attacker, app.test_client()):  # from the attacker's address too
        assert cc_token(http, client_id, secret, audience=API).status_code == 200
        assert http.post("/oauth/revoke", data={"token": "x"}, headers=right).status_code == 200
        introspected = http.post("/oauth/introspect", data={"token": "x"}, headers=right)
        assert introspected.status_code == 200


def test_sign_ups_are_limited_per_address(make_app):
    app = make_app(SIGNUP_RATE_LIMIT="2 per hour")
    browser = Browser(app, ATTACKER)
    codes = []
    for n in range(3):
        token = browser.csrf("/signup")
        data = {"csrf_token": token, "email": f"u{n}@example.com", "password": "long enough pw"}
        codes.append(browser.client.post("/signup", data=data).status_code)
        browser.client.delete_cookie("session")
    assert codes == [302, 302, 429]
    assert Browser(app, OWNER_HOME).csrf("/signup")  # another address still signs up


@pytest.mark.parametrize(
    "setting",
    [
        {"RATELIMIT_STORAGE_URI": "nonsense://x"},
        {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1"},  # nothing listens there
        {"LOGIN_RATE_LIMIT": "ten per minute"},
        {"CLIENT_AUTH_RATE_LIMIT": "5 per fortnight"},
    ],
)
def test_a_bad_limit_setting_stops_start_up_naming_it(make_app, setting, capsys):
    with pytest.raises(SystemExit):
        make_app(**setting)
    assert "PORTCULLIS_" + next(iter(setting)) in capsys.readouterr().err


def test_limits_can_be_switched_off_entirely(make_app):
    app = limited_app(make_app, RATELIMIT_ENABLED=False, LOGIN_RATE_LIMIT="1 per minute")
    AuthActions(app.test_client(), app).create_user()
    attacker = Browser(app, ATTACKER)
    assert {attacker.login(password="guess").status_code for _ in range(4)} == {200}
    with app.app_context():
        assert RateLimitCounter.select().count() == 0


def test_anonymous_authorization_requests_are_limited_per_address(make_app):
    app = make_app(AUTHORIZE_RATE_LIMIT="3 per minute")
    client_id, secret = make_client(app)
    anonymous = Browser(app, ATTACKER)
    flow = Flow(app, anonymous.client, client_id=client_id, secret=secret)
    assert [flow.authorize().status_code for _ in range(4)] == [302, 302, 302, 429]
    assert "Retry-After" in flow.authorize().headers
    # A signed-in user is not counted, even from that address.
    anonymous.create_user()
    assert anonymous.login().status_code == 302
    assert {flow.authorize().status_code for _ in range(5)} == {302}
    other = Flow(app, Browser(app, OWNER_HOME).client, client_id=client_id, secret=secret)
    assert other.authorize().status_code == 302
