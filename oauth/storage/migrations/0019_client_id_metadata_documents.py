"""Client ID Metadata Documents (issue 11, MCP): a client_id may be an https URL.

Client ids become up to 255 characters (the URL of a metadata document) in ``client`` and in
every column that refers to one; ``registration_type`` fits ``metadata_document``; and
``metadata_expires_at`` records when the fetched document must be fetched again. SQLite does
not enforce VARCHAR lengths, so only PostgreSQL's columns are widened.
"""

import peewee
from playhouse.migrate import migrate

# Client ids outside a foreign key; every foreign key to client(client_id) is found below, so
# tables other migrations added are widened too.
PLAIN_CLIENT_ID_COLUMNS = (("client", "client_id"), ("audit_event", "client_id"))
FOREIGN_KEYS_TO_CLIENT = """
    SELECT c.conrelid::regclass::text, a.attname
    FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
    WHERE c.contype = 'f' AND c.confrelid = 'client'::regclass
"""


def up(migrator, db):
    if isinstance(db, peewee.PostgresqlDatabase):
        columns = list(PLAIN_CLIENT_ID_COLUMNS)
        columns += [
            (table.strip('"'), column) for table, column in db.execute_sql(FOREIGN_KEYS_TO_CLIENT)
        ]
        for table, column in columns:
            db.execute_sql(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE VARCHAR(255)')
        db.execute_sql('ALTER TABLE "client" ALTER COLUMN "registration_type" TYPE VARCHAR(32)')
    migrate(migrator.add_column("client", "metadata_expires_at", peewee.DateTimeField(null=True)))
