"""Hook call statistics per plugin and hook."""

import datetime

from peewee import BigIntegerField, CharField, DateTimeField, FloatField, Model


def up(migrator, db):
    class HookStat(Model):
        plugin = CharField(max_length=200)
        hook = CharField(max_length=100)
        calls = BigIntegerField(default=0)
        failures = BigIntegerField(default=0)
        denials = BigIntegerField(default=0)
        total_ms = FloatField(default=0.0)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "hook_stat"
            indexes = ((("plugin", "hook"), True),)

    db.create_tables([HookStat])
