"""APIs (resource servers) and client grants for client_credentials; the access-token denylist."""

import datetime

from peewee import (
    AutoField,
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

    class Client(Base):
        client_id = CharField(primary_key=True, max_length=64)

    class Api(Base):
        id = AutoField()
        identifier = CharField(max_length=2048, unique=True)
        name = CharField(max_length=200)
        scopes = TextField(default="[]")
        token_ttl = IntegerField(default=3600)
        created_at = DateTimeField(default=now)
        updated_at = DateTimeField(default=now)

    class ClientGrant(Base):
        id = AutoField()
        client = ForeignKeyField(Client, on_delete="CASCADE")
        api = ForeignKeyField(Api, on_delete="CASCADE")
        scopes = TextField(default="[]")
        created_at = DateTimeField(default=now)

        class Meta:
            indexes = ((("client", "api"), True),)

    class RevokedAccessToken(Base):
        jti = CharField(primary_key=True, max_length=64)
        expires_at = DateTimeField(index=True)
        revoked_at = DateTimeField(default=now)

    db.create_tables([Api, ClientGrant, RevokedAccessToken])
