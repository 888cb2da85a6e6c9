"""A client may require a second factor (``require_mfa``); an authorization request keeps
the ``acr_values`` it asked for (``aal2``: a second factor for this request)."""

from peewee import BooleanField, TextField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("client", "require_mfa", BooleanField(default=False)),
        migrator.add_column("authorization_request", "acr_values", TextField(null=True)),
    )
