"""Client ID Metadata Documents (issue 11, MCP): a client_id may be an https URL.

Client ids become up to 255 characters (the URL of a metadata document) in ``client`` and in
every column that refers to one; ``registration_type`` fits ``metadata_document``; and
``metadata_expires_at`` records when the fetched document must be fetched again. SQLite does
not enforce VARCHAR lengths, so only PostgreSQL's columns are widened.
"""

import peewee
from playhouse.migrate import migrate

CLIENT_ID_COLUMNS = (
    ("client", "client_id"),
    ("authorization_request", "client_id"),
    ("consent", "client_id"),
    ("oauth_session", "client_id"),
    ("client_grant", "client_id"),
    ("api", "resource_server_id"),
    ("audit_event", "client_id"),
)


def up(migrator, db):
    if isinstance(db, peewee.PostgresqlDatabase):
        for table, column in CLIENT_ID_COLUMNS:
            db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE VARCHAR(255)')
        db.execute_sql('ALTER TABLE "client" ALTER COLUMN "registration_type" TYPE VARCHAR(32)')
    migrate(migrator.add_column("client", "metadata_expires_at", peewee.DateTimeField(null=True)))
