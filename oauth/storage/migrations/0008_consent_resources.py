"""Consents remember the resources (audiences) approved (issue 9 item 5).

Existing consents keep ``resources`` NULL, which reads as ``[DEFAULT_AUDIENCE]``: all they
could ever have covered safely."""

from peewee import TextField


def up(migrator, db):
    migrator.migrate(migrator.add_column("consent", "resources", TextField(null=True)))
