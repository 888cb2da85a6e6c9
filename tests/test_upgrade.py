"""Upgrading: a database as the first release left it (migrations 0001-0002, the schema of the
foundation release), filled through raw SQL with the data that release wrote, migrated to head
by a real ``flask init-db``; then the app runs on it (docs/operations.md, "Upgrading")."""

from __future__ import annotations

import json
import re
import secrets
import uuid

import psycopg
import pytest
from argon2 import PasswordHasher

from oauth import audit
from oauth.security import envelope_kek_id, is_plaintext_key, sha256_hex
from oauth.storage.db import connect_database
from oauth.storage.migrations import pending, runner
from oauth.storage.models import AuditEvent, Consent, SigningKey, User
from oauth.tokens import jose
from oauth.tokens import keys as signing_keys
from tests.conftest import PG_ADMIN_URL, AuthActions
from tests.live import flask_command
from tests.oauth_helpers import REDIRECT, Flow, basic_auth_header, decode_jwt_unverified

FIRST_RELEASE = "0002_oauth"  # 0001 (users) and 0002 (clients, keys, tokens, audit)
PASSWORD = "an old password of alice"
THEN = "2026-11-22 09:00:00"
OLD_TABLES = (
    "user", "client", "signing_key", "authorization_request", "consent", "oauth_session",
    "refresh_token", "audit_event",
)  # fmt: skip


@pytest.fixture
def old_database_url(database_url, tmp_path):
    """A database of its own (on PostgreSQL the session's shared one is already at head)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'first-release.db'}"
        return
    name = f"portcullis_upgrade_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN_URL)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class FirstRelease:
    """What the first release wrote: two users, a confidential client, its consent and refresh
    token, an ES256 signing key stored as a bare PEM, audit events."""

    def __init__(self, url: str) -> None:
        self.db = connect_database(url)
        self.alice, self.bob = str(uuid.uuid4()), str(uuid.uuid4())
        self.client_id, self.secret = str(uuid.uuid4()), secrets.token_urlsafe(32)
        self.refresh_token = secrets.token_urlsafe(32)
        self.private_pem, self.public_jwk, self.kid = jose.generate_key("ES256")
        # A token that release signed, still unexpired: resource servers hold such tokens.
        self.old_access_token = jose.KeyMaterial(
            self.kid, "ES256", self.private_pem, self.public_jwk
        ).sign({"iss": "http://127.0.0.1:5000", "sub": self.alice, "exp": 4102444800})

    def insert(self, table: str, **row) -> None:
        columns = ", ".join(f'"{name}"' for name in row)
        marks = ", ".join([self.db.param] * len(row))
        self.db.execute_sql(
            f'INSERT INTO "{table}" ({columns}) VALUES ({marks})', list(row.values())
        )

    def build(self) -> dict[str, int]:
        self.db.connect()
        runner(self.db).up(target=FIRST_RELEASE)
        with self.db.atomic():
            self._accounts()
            self._oauth()
        self.db.close_all()  # a pool: really closed, so the server below has the file alone
        return self.counts()

    def counts(self) -> dict[str, int]:
        try:
            with self.db.connection_context():
                return {t: self.count(t) for t in OLD_TABLES}
        finally:
            self.db.close_all()

    def count(self, table: str) -> int:
        return self.db.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]

    def _accounts(self) -> None:
        hasher = PasswordHasher()  # argon2-cffi's defaults, as the first release hashed
        common = {"phone": "", "picture": "", "user_metadata": "{}", "phone_verified": False,
                  "disabled": False, "session_epoch": 0, "created_at": THEN, "updated_at": THEN}  # fmt: skip
        self.insert("user", id=self.alice, email="alice@example.com", name="Alice",
                    password_hash=hasher.hash(PASSWORD), app_metadata='{"plan": "pro"}',
                    is_admin=False, email_verified=True, last_sign_in_at=THEN, **common)  # fmt: skip
        self.insert("user", id=self.bob, email="bob@example.com", name="Bob",
                    password_hash=hasher.hash("bob's own password"), app_metadata="{}",
                    is_admin=True, email_verified=True, **common)  # fmt: skip
        for event, user in (("user.created", self.alice), ("user.created", self.bob),
                            ("login.succeeded", self.alice)):  # fmt: skip
            self.insert("audit_event", created_at=THEN, event_type=event, user_id=user,
                        client_id=None, ip="192.0.2.7", details="{}")  # fmt: skip

    def _oauth(self) -> None:
        self.insert("client", client_id=self.client_id, client_secret_hash=sha256_hex(self.secret),
                    name="Old App", client_uri="", logo_uri="", redirect_uris=f'["{REDIRECT}"]',
                    grant_types='["authorization_code", "refresh_token"]',
                    token_endpoint_auth_method="client_secret_basic", registration_type="manual",
                    metadata="{}", created_at=THEN, updated_at=THEN)  # fmt: skip
        self.insert("signing_key", kid=self.kid, alg="ES256", private_pem=self.private_pem,
                    public_jwk=json.dumps(self.public_jwk), state="current",
                    created_at=THEN, activated_at=THEN)  # fmt: skip
        scopes = '["openid", "email", "profile"]'
        self.insert("consent", user_id=self.alice, client_id=self.client_id, scopes=scopes,
                    created_at=THEN, updated_at=THEN)  # fmt: skip
        session = str(uuid.uuid4())
        self.insert("oauth_session", id=session, user_id=self.alice, client_id=self.client_id,
                    scope="openid email profile", audience="authenticated", auth_time=1795338000,
                    amr='["pwd"]', created_at=THEN, last_used_at=THEN)  # fmt: skip
        self.insert("refresh_token", session_id=session,
                    token_hash=sha256_hex(self.refresh_token), created_at=THEN)  # fmt: skip
        self.insert("audit_event", created_at=THEN, event_type="token.issued", user_id=self.alice,
                    client_id=self.client_id, ip="192.0.2.7",
                    details='{"grant_type": "authorization_code"}')  # fmt: skip


def test_the_first_release_upgrades_with_its_data(old_database_url, make_app, tmp_path):
    # old_database_url first: it is dropped after the apps (and their audit spools) are closed
    old = FirstRelease(old_database_url)
    before = old.build()
    secret_key = "upgrade-" + secrets.token_hex(16)
    done = flask_command(
        old_database_url, tmp_path, "init-db", SECRET_KEY=secret_key, MANAGEMENT_API="false"
    )
    assert "0019_client_id_metadata_documents" in done.stdout, done.stdout + done.stderr

    app = make_app(DATABASE_URL=old_database_url, SECRET_KEY=secret_key)
    with app.app_context():
        assert pending(app.extensions["portcullis.database"]) == []
        # No row lost; one made: an RS256 key (ID tokens' default), which that release lacked.
        assert old.counts() == {**before, "signing_key": before["signing_key"] + 1}
        alice = User.get_by_id(old.alice)
        assert alice.app_metadata == {"plan": "pro"} and alice.email_verified
        assert User.get_by_id(old.bob).is_admin
        consent = Consent.get(Consent.user == old.alice)
        assert consent.scopes == ["openid", "email", "profile"] and consent.resources is None
        events = [e.event_type for e in AuditEvent.select().order_by(AuditEvent.id)]
        assert events == ["user.created", "user.created", "login.succeeded", "token.issued"]
        # 0007 sealed the plaintext key under the KEK of SECRET_KEY; it is still the current
        # ES256 key, published, and verifies what the old release signed.
        key = SigningKey.get_by_id(old.kid)
        assert key.state == "current" and not is_plaintext_key(key.private_pem)
        assert envelope_kek_id(key.private_pem) is not None
        assert old.private_pem not in key.private_pem
        assert signing_keys.verify_jwt(old.old_access_token)["sub"] == old.alice
        published = {k["kid"]: k["alg"] for k in signing_keys.public_jwks()["keys"]}
        assert published[old.kid] == "ES256" and "RS256" in published.values()

    _the_app_runs_on_it(app, old)


def _the_app_runs_on_it(app, old: FirstRelease) -> None:
    browser = app.test_client()
    auth = AuthActions(browser, app)
    assert auth.login("alice@example.com", "not it").status_code == 200
    assert auth.login("alice@example.com", PASSWORD).status_code == 302
    # The refresh token of the old release, with the client's secret: a new pair, the access
    # token signed by the old (now sealed) key.
    form = {"grant_type": "refresh_token", "refresh_token": old.refresh_token}
    answer = browser.post(
        "/oauth/token", data=form, headers=basic_auth_header(old.client_id, old.secret)
    )
    assert answer.status_code == 200, answer.get_json()
    tokens = answer.get_json()
    assert decode_jwt_unverified(tokens["access_token"])[0]["kid"] == old.kid
    assert tokens["refresh_token"] != old.refresh_token
    # The remembered consent still answers at once: no consent page, straight back with a code.
    flow = Flow(app, browser, client_id=old.client_id, secret=old.secret)
    response = flow.authorize()
    assert response.status_code == 302 and response.location.startswith(REDIRECT + "?code=")
    with app.app_context():
        audit.flush_spool()  # the refresh's token.issued is spooled
        assert AuditEvent.select().where(AuditEvent.event_type == "token.issued").count() == 2
