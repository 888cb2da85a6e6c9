"""OIDC logout (issue 11): a public ``sid`` per browser session, remembered by the codes and
OAuth sessions begun in it, so ID tokens carry it and a sign-out finds the clients to notify."""

from peewee import CharField
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(
        migrator.add_column("browser_session", "sid", CharField(max_length=64, null=True)),
        migrator.add_index("browser_session", ("sid",), True),
        migrator.add_column(
            "authorization_request", "browser_sid", CharField(max_length=64, null=True)
        ),
        migrator.add_column("oauth_session", "browser_sid", CharField(max_length=64, null=True)),
        migrator.add_index("oauth_session", ("browser_sid",), False),
    )
