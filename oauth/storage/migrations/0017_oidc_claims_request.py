"""The OpenID Connect ``claims`` request, kept with the authorization request and then with
the OAuth session it creates, so the token endpoint and UserInfo honour it (issue 11)."""

from peewee import TextField
from playhouse.migrate import migrate


def up(migrator, db):
    migrate(
        migrator.add_column("authorization_request", "claims", TextField(null=True)),
        migrator.add_column("oauth_session", "claims", TextField(null=True)),
    )
