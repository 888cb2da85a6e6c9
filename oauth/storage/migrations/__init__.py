"""Schema migrations: numbered scripts in this folder, applied by peewee's runner.

Each script carries frozen copies of the tables it creates (never the live models), so an old
database upgrades through every step exactly as it was written.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import peewee
from playhouse.migrations import Runner

MIGRATIONS_DIR = Path(__file__).resolve().parent
LOCK_KEY = 0x706F7274  # "port": the PostgreSQL advisory lock that serialises migrators


def runner(db: peewee.Database) -> Runner:
    return Runner(db, str(MIGRATIONS_DIR), table_name="schema_migration")


def pending(db: peewee.Database) -> list[str]:
    return [m.name for m in runner(db).status() if not m.applied and m.path]


def migrate(db: peewee.Database) -> list[str]:
    """Apply every pending migration; safe when several processes start at once."""
    if isinstance(db, peewee.SqliteDatabase):
        # A lock file rather than a transaction: the SQLite migrator must switch foreign keys
        # off while it rebuilds tables, which SQLite ignores inside a transaction.
        with open(f"{db.database}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return runner(db).up()
    db.execute_sql("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        return runner(db).up()
    finally:
        db.execute_sql("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
