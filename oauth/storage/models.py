"""Peewee models. Times are naive UTC datetimes; the schema itself lives in migrations/."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import peewee
from flask_login import UserMixin

from oauth.redirect_uris import redirect_uri_matches
from oauth.security import matches_current_or_previous
from oauth.storage.db import database


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# Seconds a "last used" column may lag (clients, consents, OAuth sessions): written at most
# this often, so busy clients' tokens do not rewrite those rows on every request.
LAST_USED_EVERY = 60


def new_uuid() -> str:
    return str(uuid.uuid4())


class JSONField(peewee.TextField):
    """JSON stored as text, so SQLite and PostgreSQL behave the same."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel, UserMixin):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_uuid)
    email = peewee.CharField(max_length=320, unique=True)
    password_hash = peewee.TextField(null=True)
    name = peewee.CharField(max_length=200, default="")
    phone = peewee.CharField(max_length=40, default="")
    picture = peewee.CharField(max_length=2048, default="")
    app_metadata = JSONField(default=dict)
    user_metadata = JSONField(default=dict)
    is_admin = peewee.BooleanField(default=False)
    email_verified = peewee.BooleanField(default=False)
    phone_verified = peewee.BooleanField(default=False)
    disabled = peewee.BooleanField(default=False)
    # Bumped to sign the user out everywhere (password change, "sign out other sessions"):
    # a browser session is valid only while it carries the user's current epoch.
    session_epoch = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    last_sign_in_at = peewee.DateTimeField(null=True)

    # The browser session this object was loaded for (set by accounts/login.py, never stored):
    # flask-login keeps only this random id in the cookie.
    browser_session_id: str | None = None
    browser_sid: str | None = None  # and that session's public OIDC sid

    def get_id(self) -> str | None:
        return self.browser_session_id

    @property
    def is_active(self) -> bool:
        return not self.disabled

    def save(self, *args, **kwargs):
        self.updated_at = utcnow()
        return super().save(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<User {self.id}>"


class BrowserSession(BaseModel):
    """A signed-in browser. The cookie holds a random id; only its SHA-256 is stored here."""

    id_hash = peewee.CharField(primary_key=True, max_length=64)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="browser_sessions")
    epoch = peewee.IntegerField()  # the user's session_epoch when the session began
    created_at = peewee.DateTimeField(default=utcnow)
    last_seen_at = peewee.DateTimeField(default=utcnow)
    expires_at = peewee.DateTimeField(index=True)  # the absolute lifetime
    user_agent = peewee.CharField(max_length=200, default="")
    ip = peewee.CharField(max_length=64, default="")
    auth_time = peewee.IntegerField()
    amr = JSONField(default=list)
    # OIDC ``sid``: public and random, unrelated to the cookie's secret id (migration 0015).
    sid = peewee.CharField(max_length=64, null=True, unique=True)

    class Meta:
        table_name = "browser_session"


class TotpFactor(BaseModel):
    id = peewee.AutoField()  # a user's TOTP authenticator; unconfirmed until a first code
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", unique=True, backref="totp_factors")
    secret_sealed = peewee.TextField()  # the base32 secret, sealed under the KEK ring
    confirmed_at = peewee.DateTimeField(null=True)
    last_used_step = peewee.BigIntegerField(null=True)  # codes of this step or older: refused
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "totp_factor"


class RecoveryCode(BaseModel):
    id = peewee.AutoField()  # a single-use recovery code, stored as SHA-256 (user id + code)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="recovery_codes")
    code_hash = peewee.CharField(max_length=64, unique=True)
    used_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "recovery_code"


class Client(BaseModel):
    """An OAuth client (relying party). Implements what Authlib's ClientMixin asks for."""

    # A UUID, or the https URL of a Client ID Metadata Document (MCP; migration 0019).
    client_id = peewee.CharField(primary_key=True, max_length=255)
    client_secret_hash = peewee.CharField(max_length=64, null=True)  # SHA-256 hex; None = public
    # The secret a rotation replaced (SHA-256 hex) and when it stops working (migration 0020).
    previous_secret_hash = peewee.CharField(max_length=64, null=True)
    previous_secret_expires_at = peewee.DateTimeField(null=True)
    name = peewee.CharField(max_length=200)
    client_uri = peewee.CharField(max_length=2048, default="")
    logo_uri = peewee.CharField(max_length=2048, default="")
    redirect_uris = JSONField(default=list)
    grant_types = JSONField(default=list)
    token_endpoint_auth_method = peewee.CharField(max_length=32, default="client_secret_basic")
    # manual | dynamic | metadata_document
    registration_type = peewee.CharField(max_length=32, default="manual")
    registration_access_token_hash = peewee.CharField(max_length=64, null=True)
    metadata = JSONField(default=dict)
    require_mfa = peewee.BooleanField(default=False)  # every sign-in for it needs aal2
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    last_used_at = peewee.DateTimeField(null=True)
    # metadata_document clients: when the fetched document is stale and is fetched again.
    metadata_expires_at = peewee.DateTimeField(null=True)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    # --- Authlib ClientMixin -------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(
            redirect_uri_matches(registered, redirect_uri) for registered in self.redirect_uris
        )

    def check_client_secret(self, client_secret: str) -> bool:
        # The current secret, or the previous one during its grace period (both compared).
        expires = self.previous_secret_expires_at
        return self.client_secret_hash is not None and matches_current_or_previous(
            client_secret,
            self.client_secret_hash,
            self.previous_secret_hash,
            previous_valid=expires is not None and expires > utcnow(),
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A confidential client may use basic or post whatever it registered (DESIGN.md);
        # a public client only sends its client_id.
        if self.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def __repr__(self) -> str:
        return f"<Client {self.client_id}>"


class SigningKey(BaseModel):
    """An asymmetric JWT signing key. state: standby -> current -> previous -> revoked."""

    kid = peewee.CharField(primary_key=True, max_length=64)
    alg = peewee.CharField(max_length=16)
    private_pem = peewee.TextField()
    public_jwk = JSONField()
    state = peewee.CharField(max_length=16, index=True)
    created_at = peewee.DateTimeField(default=utcnow)
    activated_at = peewee.DateTimeField(null=True)
    retired_at = peewee.DateTimeField(null=True)
    revoked_at = peewee.DateTimeField(null=True)


class AuthorizationRequest(BaseModel):
    """A validated /oauth/authorize request, kept server-side; later it carries the code."""

    id = peewee.CharField(primary_key=True, max_length=64)  # the authorization_id
    client = peewee.ForeignKeyField(Client, on_delete="CASCADE", backref="authorization_requests")
    user = peewee.ForeignKeyField(User, null=True, on_delete="CASCADE")
    redirect_uri = peewee.CharField(max_length=2048)
    redirect_uri_sent = peewee.BooleanField(default=True)
    scope = peewee.TextField(default="")
    state = peewee.TextField(null=True)
    nonce = peewee.TextField(null=True)
    code_challenge = peewee.CharField(max_length=128)
    code_challenge_method = peewee.CharField(max_length=8, default="S256")
    resource = peewee.CharField(max_length=2048, null=True)
    prompt = peewee.CharField(max_length=64, null=True)
    max_age = peewee.IntegerField(null=True)
    login_hint = peewee.CharField(max_length=320, null=True)
    acr_values = peewee.TextField(null=True)  # as asked; "aal2" requires a second factor
    status = peewee.CharField(max_length=16, default="pending")  # pending approved denied consumed
    code_hash = peewee.CharField(max_length=64, null=True, unique=True)
    auth_time = peewee.IntegerField(null=True)
    amr = JSONField(default=list)
    session_id = peewee.CharField(max_length=36, null=True)  # the OAuth session the code created
    browser_sid = peewee.CharField(max_length=64, null=True)  # the browser session's OIDC sid
    claims = JSONField(null=True)  # the OIDC ``claims`` request (protocol/oidc.py), if any
    created_at = peewee.DateTimeField(default=utcnow)
    expires_at = peewee.DateTimeField()

    @property
    def scopes(self) -> list[str]:
        return self.scope.split() if self.scope else []


class Consent(BaseModel):
    """What a user has granted a client; one row per (user, client)."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="consents")
    client = peewee.ForeignKeyField(Client, on_delete="CASCADE", backref="consents")
    scopes = JSONField(default=list)
    # The audiences approved (API identifiers or DEFAULT_AUDIENCE); None on consents made
    # before they were remembered, which read as [DEFAULT_AUDIENCE] (accounts/consents.py).
    resources = JSONField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    last_used_at = peewee.DateTimeField(null=True)

    class Meta:
        indexes = ((("user", "client"), True),)


class OAuthSession(BaseModel):
    """One authorization's token family: the refresh tokens and access tokens it issued."""

    id = peewee.CharField(primary_key=True, max_length=36, default=new_uuid)
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="oauth_sessions")
    client = peewee.ForeignKeyField(Client, on_delete="CASCADE", backref="oauth_sessions")
    scope = peewee.TextField(default="")
    audience = peewee.CharField(max_length=2048)
    auth_time = peewee.IntegerField()
    amr = JSONField(default=list)
    claims = JSONField(null=True)  # the OIDC ``claims`` request of its authorization
    created_at = peewee.DateTimeField(default=utcnow)
    last_used_at = peewee.DateTimeField(default=utcnow)
    revoked_at = peewee.DateTimeField(null=True)
    revoked_reason = peewee.CharField(max_length=64, null=True)
    # The OIDC sid of the browser session it began in (back-channel logout finds it by this).
    browser_sid = peewee.CharField(max_length=64, null=True, index=True)

    class Meta:
        table_name = "oauth_session"

    @property
    def scopes(self) -> list[str]:
        return self.scope.split() if self.scope else []


class RefreshToken(BaseModel):
    """An opaque refresh token, stored as its SHA-256. Rotation links each one to its successor."""

    id = peewee.AutoField()
    session = peewee.ForeignKeyField(OAuthSession, on_delete="CASCADE", backref="refresh_tokens")
    token_hash = peewee.CharField(max_length=64, unique=True)
    parent = peewee.ForeignKeyField("self", null=True, on_delete="SET NULL")
    created_at = peewee.DateTimeField(default=utcnow)
    rotated_at = peewee.DateTimeField(null=True)
    # The successor token, encrypted with a key derived from *this* token: only a holder of this
    # token can recover it (to replay within the reuse interval); nothing usable is at rest.
    successor_ciphertext = peewee.TextField(null=True)


class AuditEvent(BaseModel):
    id = peewee.AutoField()
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    event_type = peewee.CharField(max_length=64, index=True)
    user_id = peewee.CharField(max_length=36, null=True, index=True)
    client_id = peewee.CharField(max_length=255, null=True, index=True)
    ip = peewee.CharField(max_length=64, null=True)
    details = JSONField(default=dict)


class Api(BaseModel):
    """A resource server: its identifier is the ``aud`` of the tokens issued for it."""

    id = peewee.AutoField()
    identifier = peewee.CharField(max_length=2048, unique=True)
    name = peewee.CharField(max_length=200)
    scopes = JSONField(default=list)  # [{"value": "read:things", "description": "..."}]
    token_ttl = peewee.IntegerField(default=3600)
    # The client the resource server itself authenticates as: it may introspect the tokens
    # whose ``aud`` names this API (RFC 7662). None: only each token's own client may.
    resource_server = peewee.ForeignKeyField(
        Client, null=True, on_delete="SET NULL", backref="served_apis"
    )
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    @property
    def scope_values(self) -> list[str]:
        return [s["value"] for s in self.scopes or []]


class ClientGrant(BaseModel):
    """Which scopes of which API a client may get with client_credentials (Auth0's model)."""

    id = peewee.AutoField()
    client = peewee.ForeignKeyField(Client, on_delete="CASCADE", backref="client_grants")
    api = peewee.ForeignKeyField(Api, on_delete="CASCADE", backref="client_grants")
    scopes = JSONField(default=list)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("client", "api"), True),)


class RevokedAccessToken(BaseModel):
    """The denylist of revoked JWT access tokens, kept until they would have expired anyway."""

    jti = peewee.CharField(primary_key=True, max_length=64)
    expires_at = peewee.DateTimeField()
    revoked_at = peewee.DateTimeField(default=utcnow)


class HookStat(BaseModel):
    """Hook call counters summed over every worker (flushed from memory every few seconds)."""

    plugin = peewee.CharField(max_length=200)
    hook = peewee.CharField(max_length=100)
    calls = peewee.BigIntegerField(default=0)
    failures = peewee.BigIntegerField(default=0)
    denials = peewee.BigIntegerField(default=0)
    total_ms = peewee.FloatField(default=0.0)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("plugin", "hook"), True),)


class RateLimitCounter(BaseModel):
    """One fixed-window rate-limit counter (the default limit storage: shared by every worker)."""

    key = peewee.CharField(primary_key=True, max_length=200)
    count = peewee.IntegerField(default=0)
    expires_at = peewee.DoubleField(index=True)  # unix time


class AccountToken(BaseModel):
    """A single-use link mailed to a user, stored as the SHA-256 of its token. ``email`` is
    the address it was sent to; ``fingerprint`` ties a password-reset link to the password it
    may replace (a changed password kills it)."""

    id = peewee.AutoField()
    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="account_tokens")
    purpose = peewee.CharField(max_length=32)  # verify_email | change_email | password_reset
    token_hash = peewee.CharField(max_length=64, unique=True)
    email = peewee.CharField(max_length=320)
    fingerprint = peewee.CharField(max_length=64, default="")
    context = JSONField(default=dict)
    created_at = peewee.DateTimeField(default=utcnow)
    expires_at = peewee.DateTimeField()
    used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "account_token"
        indexes = ((("user", "purpose"), False),)
