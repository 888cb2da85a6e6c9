"""Back-Channel Logout 1.0 (issue 11): the outbox of logout tokens still to deliver."""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, IntegerField, Model, TextField

now = datetime.datetime.utcnow


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Client(Base):
        client_id = CharField(primary_key=True, max_length=64)

    class BackchannelLogout(Base):
        id = CharField(primary_key=True, max_length=36)
        client = ForeignKeyField(Client, field=Client.client_id, on_delete="CASCADE")
        sub = CharField(max_length=36)
        sid = CharField(max_length=64, null=True)
        reason = CharField(max_length=64, default="")
        created_at = DateTimeField(default=now)
        attempts = IntegerField(default=0)
        next_attempt_at = DateTimeField(index=True)
        last_error = TextField(default="")

        class Meta:
            table_name = "backchannel_logout"

    db.create_tables([BackchannelLogout])
