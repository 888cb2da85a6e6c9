"""Bulk inserts on PostgreSQL through ``COPY ... FROM STDIN`` (issue 13).

The audit spool moves every token's event into ``audit_event`` in batches
(``audit_ingest.py``). As one INSERT per row (psycopg's ``executemany``) a batch of 64 cost
the server about 30 µs of CPU and the worker 14 µs per row on the benchmark machine: each
row is parsed, planned and executed on its own. ``COPY`` streams the rows into one command:
about 12 µs and 5 µs. On two CPUs shared with the database that is about a tenth of a CPU
at the client-credentials rate. psycopg dumps the values with the adapters a cursor uses
(``None`` as NULL, text escaped), and errors are peewee's, as from ``execute_sql``.
"""

from __future__ import annotations

import peewee
import psycopg
from psycopg import sql

from oauth.storage.db import database


def copy_rows(model: type[peewee.Model], fields: list[peewee.Field], rows: list[tuple]) -> bool:
    """COPY ``rows`` (each the ``db_value`` of ``fields``, in order) into ``model``'s table, in
    the connection's current transaction: True when done, False where the database is not
    PostgreSQL (the caller inserts them)."""
    db = database.obj
    if not isinstance(db, peewee.PostgresqlDatabase):
        return False
    with peewee.__exception_wrapper__:
        conn = db.connection()
        if not isinstance(conn, psycopg.Connection):
            return False
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(model._meta.table_name),
            sql.SQL(", ").join(sql.Identifier(field.column_name) for field in fields),
        )
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    return True
