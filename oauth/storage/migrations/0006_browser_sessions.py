"""Server-side browser sessions: the cookie carries a random id, the row says who and until when."""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField

now = datetime.datetime.utcnow


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        id = CharField(primary_key=True, max_length=36)

    class BrowserSession(Base):
        id_hash = CharField(primary_key=True, max_length=64)
        user = ForeignKeyField(User, on_delete="CASCADE")
        epoch = IntegerField()
        created_at = DateTimeField(default=now)
        last_seen_at = DateTimeField(default=now)
        expires_at = DateTimeField(index=True)
        user_agent = CharField(max_length=200, default="")
        ip = CharField(max_length=64, default="")
        auth_time = IntegerField()
        amr = TextField(default="[]")

        class Meta:
            table_name = "browser_session"

    db.create_tables([BrowserSession])
