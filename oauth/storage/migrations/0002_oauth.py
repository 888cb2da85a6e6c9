"""OAuth: clients, signing keys, authorization requests and codes, consents, sessions,
refresh tokens, audit events."""

import datetime

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

now = datetime.datetime.utcnow


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    user, client, signing_key = _registry_tables(Base)
    authorization_request, consent = _authorization_tables(Base, user, client)
    session, refresh_token, audit_event = _session_tables(Base, user, client)
    db.create_tables(
        [client, signing_key, authorization_request, consent, session, refresh_token, audit_event]
    )


def _registry_tables(Base):
    class User(Base):
        id = CharField(primary_key=True, max_length=36)

        class Meta:
            table_name = "user"

    class Client(Base):
        client_id = CharField(primary_key=True, max_length=64)
        client_secret_hash = CharField(max_length=64, null=True)
        name = CharField(max_length=200)
        client_uri = CharField(max_length=2048, default="")
        logo_uri = CharField(max_length=2048, default="")
        redirect_uris = TextField(default="[]")
        grant_types = TextField(default="[]")
        token_endpoint_auth_method = CharField(max_length=32, default="client_secret_basic")
        registration_type = CharField(max_length=16, default="manual")
        registration_access_token_hash = CharField(max_length=64, null=True)
        metadata = TextField(default="{}")
        created_at = DateTimeField(default=now)
        updated_at = DateTimeField(default=now)
        last_used_at = DateTimeField(null=True)

    class SigningKey(Base):
        kid = CharField(primary_key=True, max_length=64)
        alg = CharField(max_length=16)
        private_pem = TextField()
        public_jwk = TextField()
        state = CharField(max_length=16, index=True)
        created_at = DateTimeField(default=now)
        activated_at = DateTimeField(null=True)
        retired_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)

    return User, Client, SigningKey


def _authorization_tables(Base, User, Client):
    class AuthorizationRequest(Base):
        id = CharField(primary_key=True, max_length=64)
        client = ForeignKeyField(Client, on_delete="CASCADE")
        user = ForeignKeyField(User, null=True, on_delete="CASCADE")
        redirect_uri = CharField(max_length=2048)
        redirect_uri_sent = BooleanField(default=True)
        scope = TextField(default="")
        state = TextField(null=True)
        nonce = TextField(null=True)
        code_challenge = CharField(max_length=128)
        code_challenge_method = CharField(max_length=8, default="S256")
        resource = CharField(max_length=2048, null=True)
        prompt = CharField(max_length=64, null=True)
        max_age = IntegerField(null=True)
        login_hint = CharField(max_length=320, null=True)
        status = CharField(max_length=16, default="pending")
        code_hash = CharField(max_length=64, null=True, unique=True)
        auth_time = IntegerField(null=True)
        amr = TextField(default="[]")
        session_id = CharField(max_length=36, null=True)
        created_at = DateTimeField(default=now)
        expires_at = DateTimeField(index=True)

    class Consent(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        client = ForeignKeyField(Client, on_delete="CASCADE")
        scopes = TextField(default="[]")
        created_at = DateTimeField(default=now)
        updated_at = DateTimeField(default=now)
        last_used_at = DateTimeField(null=True)

        class Meta:
            indexes = ((("user", "client"), True),)

    return AuthorizationRequest, Consent


def _session_tables(Base, User, Client):
    class OAuthSession(Base):
        id = CharField(primary_key=True, max_length=36)
        user = ForeignKeyField(User, on_delete="CASCADE")
        client = ForeignKeyField(Client, on_delete="CASCADE")
        scope = TextField(default="")
        audience = CharField(max_length=2048)
        auth_time = IntegerField()
        amr = TextField(default="[]")
        created_at = DateTimeField(default=now)
        last_used_at = DateTimeField(default=now)
        revoked_at = DateTimeField(null=True)
        revoked_reason = CharField(max_length=64, null=True)

        class Meta:
            table_name = "oauth_session"

    class RefreshToken(Base):
        id = AutoField()
        session = ForeignKeyField(OAuthSession, on_delete="CASCADE")
        token_hash = CharField(max_length=64, unique=True)
        parent = ForeignKeyField("self", null=True, on_delete="SET NULL")
        created_at = DateTimeField(default=now)
        rotated_at = DateTimeField(null=True)
        successor_ciphertext = TextField(null=True)

    class AuditEvent(Base):
        id = AutoField()
        created_at = DateTimeField(default=now, index=True)
        event_type = CharField(max_length=64, index=True)
        user_id = CharField(max_length=36, null=True, index=True)
        client_id = CharField(max_length=64, null=True, index=True)
        ip = CharField(max_length=64, null=True)
        details = TextField(default="{}")

    return OAuthSession, RefreshToken, AuditEvent
