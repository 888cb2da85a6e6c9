"""The mail outbox (messages queued in the transaction of the change that causes them) and
the single-use links mailed to users (email verification, email change, password reset)."""

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


def up(migrator, db):
    class User(Model):
        id = CharField(primary_key=True, max_length=36)

        class Meta:
            database = db
            table_name = "user"

    class MailOutbox(Model):
        id = AutoField()
        kind = CharField(max_length=32)
        to_address = CharField(max_length=320)
        user_id = CharField(max_length=36, null=True, index=True)
        context = TextField(default="{}")
        status = CharField(max_length=16, default="pending", index=True)
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(default=datetime.datetime.utcnow, index=True)
        last_error = TextField(default="")
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        sent_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "mail_outbox"

    class AccountToken(Model):
        id = AutoField()
        user = ForeignKeyField(User, on_delete="CASCADE")
        purpose = CharField(max_length=32)
        token_hash = CharField(max_length=64, unique=True)
        email = CharField(max_length=320)
        fingerprint = CharField(max_length=64, default="")
        context = TextField(default="{}")
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "account_token"
            indexes = ((("user", "purpose"), False),)

    db.create_tables([MailOutbox, AccountToken])
