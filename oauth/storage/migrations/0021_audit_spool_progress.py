"""The audit spool (issue 13): how many bytes of each spool file are already in audit_event,
advanced in the same transaction as the rows it covers (oauth/storage/audit_ingest.py)."""

import datetime

from peewee import BigIntegerField, CharField, DateTimeField, Model


def up(migrator, db):
    class AuditSpoolProgress(Model):
        spool = CharField(primary_key=True, max_length=255)
        ingested = BigIntegerField(default=0)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "audit_spool_progress"

    db.create_tables([AuditSpoolProgress])
