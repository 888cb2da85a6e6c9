"""Bulk inserts as multi-row ``INSERT ... VALUES (...), (...)`` statements (issue 13): the
audit spool's batches on SQLite (PostgreSQL takes them as a ``COPY``, ``postgres_copy.py``).

A spool batch goes in while its flusher holds SQLite's writers' lock (``sqlite_writers.py``),
which every token request that writes waits for. Through the driver's ``executemany`` each
row is a statement step of its own, and Python's ``sqlite3`` releases the GIL around every
step. While the worker's request thread runs, the flusher then waits for the GIL again after
each row, up to the interpreter's switch interval (5 ms), holding the lock all the while:
under the benchmark's load a batch held it for 9.5 ms (median) and 93 ms (99th percentile).
As one statement the whole batch is one step, so the GIL changes hands a few times per batch
instead of once per row.
"""

from __future__ import annotations

import sqlite3

import peewee

from oauth.storage.db import database

# Rows per statement at most: a spool batch (64 KB of events) is some hundreds; beyond that the
# statement's text and its compilation only grow.
MAX_ROWS = 500
# Parameters per statement where the driver cannot say (SQLite's historical minimum).
DEFAULT_PARAMETERS = 999


def insert_rows(model: type[peewee.Model], fields: list[peewee.Field], rows: list[tuple]) -> int:
    """INSERT ``rows`` (each the ``db_value`` of ``fields``, in order) into ``model``'s table,
    in the connection's current transaction and in as few statements as the database's
    parameter limit allows: the number of statements. Errors are peewee's."""
    if not rows:
        return 0
    db = database.obj
    per_statement = max(1, min(MAX_ROWS, _parameter_limit(db) // len(fields)))
    table = peewee.quote((model._meta.table_name,), db.quote)
    columns = ", ".join(peewee.quote((field.column_name,), db.quote) for field in fields)
    head = f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608  # names from the model, quoted
    group = "(" + ", ".join([db.param] * len(fields)) + ")"
    statements = 0
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        db.execute_sql(head + ", ".join([group] * len(chunk)), [v for row in chunk for v in row])
        statements += 1
    return statements


def _parameter_limit(db: peewee.Database) -> int:
    connection = db.connection()
    if isinstance(connection, sqlite3.Connection):
        return connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return DEFAULT_PARAMETERS
