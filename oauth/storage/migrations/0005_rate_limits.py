"""Rate-limit counters in the database, so every worker (and, on PostgreSQL, every instance)
counts against the same limit."""

from peewee import CharField, DoubleField, IntegerField, Model


def up(migrator, db):
    class RateLimitCounter(Model):
        key = CharField(primary_key=True, max_length=200)
        count = IntegerField(default=0)
        expires_at = DoubleField(index=True)

        class Meta:
            database = db
            table_name = "rate_limit_counter"

    db.create_tables([RateLimitCounter])
