"""Client secret rotation with a grace period (issue 12): the secret a rotation replaced, as
its SHA-256, and when it stops authenticating. Both null: no previous secret works."""

from peewee import CharField, DateTimeField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("client", "previous_secret_hash", CharField(max_length=64, null=True)),
        migrator.add_column("client", "previous_secret_expires_at", DateTimeField(null=True)),
    )
