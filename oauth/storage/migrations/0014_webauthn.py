"""Passkeys (WebAuthn credentials) and the challenges already answered (issue 10)."""

import datetime

from peewee import (
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    Model,
    TextField,
)

now = datetime.datetime.utcnow


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        id = CharField(primary_key=True, max_length=36)

    class WebAuthnCredential(Base):
        user = ForeignKeyField(User, on_delete="CASCADE", index=True)
        credential_id = CharField(max_length=1400, unique=True)  # base64url, <= 1023 bytes
        public_key = TextField()  # base64url of the COSE key
        sign_count = BigIntegerField(default=0)
        transports = TextField(default="[]")
        name = CharField(max_length=100)
        created_at = DateTimeField(default=now)
        last_used_at = DateTimeField(null=True)

        class Meta:
            table_name = "webauthn_credential"

    class WebAuthnChallenge(Base):
        challenge_hash = CharField(primary_key=True, max_length=64)
        expires_at = DateTimeField(index=True)

        class Meta:
            table_name = "webauthn_challenge"

    db.create_tables([WebAuthnCredential, WebAuthnChallenge])
