"""Users."""

import datetime

from peewee import BooleanField, CharField, DateTimeField, IntegerField, Model, TextField


def up(migrator, db):
    class User(Model):
        id = CharField(primary_key=True, max_length=36)
        email = CharField(max_length=320, unique=True)
        password_hash = TextField(null=True)
        name = CharField(max_length=200, default="")
        phone = CharField(max_length=40, default="")
        picture = CharField(max_length=2048, default="")
        app_metadata = TextField(default="{}")
        user_metadata = TextField(default="{}")
        is_admin = BooleanField(default=False)
        email_verified = BooleanField(default=False)
        phone_verified = BooleanField(default=False)
        disabled = BooleanField(default=False)
        session_epoch = IntegerField(default=0)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)
        last_sign_in_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "user"

    db.create_tables([User])
