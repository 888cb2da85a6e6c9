"""Second factors (issue 10): a TOTP secret per user (sealed under the key-encryption keys,
with the last time step used, so a code is never accepted twice) and hashed recovery codes."""

import datetime

from peewee import (
    AutoField,
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

    class TotpFactor(Base):
        id = AutoField()
        user = ForeignKeyField(User, on_delete="CASCADE", unique=True)
        secret_sealed = TextField()
        confirmed_at = DateTimeField(null=True)
        last_used_step = BigIntegerField(null=True)
        created_at = DateTimeField(default=now)

        class Meta:
            table_name = "totp_factor"

    class RecoveryCode(Base):
        id = AutoField()
        user = ForeignKeyField(User, on_delete="CASCADE", index=True)
        code_hash = CharField(max_length=64, unique=True)
        used_at = DateTimeField(null=True)
        created_at = DateTimeField(default=now)

        class Meta:
            table_name = "recovery_code"

    db.create_tables([TotpFactor, RecoveryCode])
