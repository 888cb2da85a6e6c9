"""The database: one per app, built at start-up from DATABASE_URL.

The models are bound to ``database``, a proxy that resolves to the database of the current
Flask app (``app.extensions["portcullis.database"]``), so two apps in one process never
share one: each writes into its own. Outside an application context it refuses to work.

SQLite runs in WAL mode with foreign keys on; PostgreSQL goes through a connection pool.
Every request opens (or takes from the pool) one connection and gives it back on teardown.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import peewee
from flask import Flask
from flask.globals import _cv_app
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from oauth.config import ConfigError
from oauth.storage.sqlite_checkpoints import HARD_FRAMES, Checkpointer
from oauth.storage.sqlite_writers import QueuedWritersSqliteDatabase, WriterLock

EXTENSION = "portcullis.database"
# What this process did to the database at start-up, for ``flask init-db`` to report.
CREATED = "portcullis.database_created"
STARTUP_MIGRATIONS = "portcullis.startup_migrations"


class AppDatabase(peewee.DatabaseProxy):
    """A peewee database proxy whose target is the current app's database."""

    __slots__ = ()

    def __init__(self) -> None:
        object.__setattr__(self, "_callbacks", [])

    @property
    def obj(self) -> peewee.Database:
        context = _cv_app.get(None)
        db = context.app.extensions.get(EXTENSION) if context is not None else None
        if db is None:
            raise peewee.InterfaceError(
                "no Portcullis database here: use the models inside an application context "
                "(with app.app_context(): ...) of an app built by create_app"
            )
        return db

    def __setattr__(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # peewee's own slots (_callbacks, _Model)

    def initialize(self, obj) -> None:
        raise TypeError("AppDatabase follows the current app; there is nothing to initialise")


database = AppDatabase()

# busy_timeout first: the other pragmas (journal_mode above all) may have to wait for a lock
# while several workers open a fresh database at once.
SQLITE_PRAGMAS = {
    "busy_timeout": 10000,
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    # KiB of page cache per connection (SQLite's default): the cache is private memory of
    # each connection, and a token workload fills any size with the audit rows it appends
    # (16 MB here once grew every worker by 16 MB over 40,000 tokens, issue 13). Hot reads
    # are few pages, and the OS page cache keeps the file for every process.
    "cache_size": -2000,
    # A backstop: the checkpoints run beside the writers (storage/sqlite_checkpoints.py).
    "wal_autocheckpoint": HARD_FRAMES,
}
STARTUP_LOCK_WAIT = 15.0
WRITE_WAIT = 10.0  # seconds a writer waits for the others (SQLite's busy_timeout is the same)


class PooledQueuedSqliteDatabase(QueuedWritersSqliteDatabase, PooledSqliteDatabase):
    """The pool of SQLite connections; write transactions queue in ``sqlite_writers``."""

    def __init__(self, database, **kwargs) -> None:
        super().__init__(database, **kwargs)
        self.writers = WriterLock(database, WRITE_WAIT)
        self.checkpoints = Checkpointer(database)

    def commit(self):
        super().commit()
        self.checkpoints.wrote()

    def close_all(self):
        super().close_all()
        self.checkpoints.close()


class PooledCheckedPostgresqlDatabase(PooledPostgresqlDatabase):
    """The pool of PostgreSQL connections, handing out an idle one without a round trip.

    peewee's pool sends ``SELECT 1`` at every check-out to learn whether the server still
    holds the connection: one round trip more for every request (a bearer check had two
    instead of one). A server that ends a connection (a restart, ``pg_terminate_backend``,
    ``idle_session_timeout``) says so on the socket, a FATAL message and the end of the
    stream, so an idle connection whose socket has nothing to read is still open; one that
    has something gets peewee's check. A connection in any other state does too (peewee
    rolls it back)."""

    def _is_closed(self, conn) -> bool:
        if conn.closed:
            return True
        if conn.pgconn.transaction_status == self._adapter.txn_idle and not _readable(conn):
            return False
        return super()._is_closed(conn)


def _readable(conn) -> bool:
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def connect_database(url: str) -> peewee.Database:
    """Build (not yet open) a peewee database from a URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        path = unquote(parts.path)
        if url.startswith("sqlite:////"):
            path = "/" + path.lstrip("/")
        elif url.startswith("sqlite:///"):
            path = path[1:]
        if not path or path == ":memory:":
            raise ConfigError(
                "PORTCULLIS_DATABASE_URL: an in-memory SQLite database is not shared between "
                "requests; give a file path (sqlite:///path/to/portcullis.db)"
            )
        # A pool, so a request does not pay for opening the file, five PRAGMAs and the WAL
        # checkpoint that closing the last connection triggers.
        return PooledQueuedSqliteDatabase(
            path,
            pragmas=SQLITE_PRAGMAS,
            timeout=10,
            max_connections=64,
            stale_timeout=600,
            check_same_thread=False,  # a pooled connection serves one thread at a time
        )
    if scheme in ("postgres", "postgresql"):
        return PooledCheckedPostgresqlDatabase(
            unquote(parts.path.lstrip("/")) or "postgres",
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname or None,
            port=parts.port or None,
            max_connections=32,
            stale_timeout=300,
            timeout=10,
            connect_timeout=5,
            # psycopg's own automatic prepared statements stay off: after any ROLLBACK (or
            # DDL) it sends DEALLOCATE ALL, which would also drop the compiled queries'
            # statements (storage/postgres_statements.py) in the middle of a transaction.
            prepare_threshold=None,
        )
    raise ConfigError(f"PORTCULLIS_DATABASE_URL: unsupported scheme {scheme!r}")


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def init_app(app: Flask) -> None:
    url = str(app.config["DATABASE_URL"])
    db = connect_database(url)
    if isinstance(db, peewee.SqliteDatabase):
        folder = Path(db.database).parent
        if not folder.is_dir():
            raise ConfigError(f"PORTCULLIS_DATABASE_URL: folder {folder} does not exist")
        app.extensions[CREATED] = _create_private(Path(db.database))
    app.extensions[EXTENSION] = db
    _check_connection(db, url)

    # peewee connects on the first query of a request; the connection goes back on teardown.
    @app.teardown_appcontext
    def _close_connection(exc):
        if not database.is_closed():
            database.close()


def _create_private(path: Path) -> bool:
    """A new SQLite file is readable by its owner only: it holds the private signing keys.
    SQLite gives its -wal and -shm files the same permissions. True when it was created now."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    except OSError as error:
        raise ConfigError(
            f"PORTCULLIS_DATABASE_URL: cannot create {path} ({error.strerror})"
        ) from None
    return True


def _check_connection(db: peewee.Database, url: str) -> None:
    """One round trip at start-up. SQLite can answer "database is locked" while other workers
    set up a fresh file (switching to WAL is not covered by the busy timeout): wait for them."""
    deadline = time.monotonic() + STARTUP_LOCK_WAIT
    while True:
        try:
            db.connect(reuse_if_open=True)
            db.execute_sql("SELECT 1")
            return
        except peewee.OperationalError as error:
            reason = (
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            )
            if "locked" in reason and time.monotonic() < deadline:
                time.sleep(0.05 + random.random() * 0.1)
                continue
            raise ConfigError(
                f"PORTCULLIS_DATABASE_URL: cannot connect to {describe(url)}: {reason}"
            ) from None
        finally:
            if not db.is_closed():
                db.close()


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


def write_transaction():
    """A transaction for a state change that must not race (codes, refresh tokens, consent).

    On SQLite the write lock is taken up front (BEGIN IMMEDIATE), so two concurrent writers
    serialise instead of failing on lock upgrade; on PostgreSQL callers lock the rows they
    change with SELECT ... FOR UPDATE (see ``for_update``).
    """
    if database.transaction_depth() > 0:
        return database.atomic()
    if is_sqlite():
        return database.atomic(lock_type="IMMEDIATE")
    return database.atomic()


def for_update(query: peewee.ModelSelect) -> peewee.ModelSelect:
    """Lock the selected rows until the transaction ends (a no-op on SQLite, which is locked whole)."""
    if is_sqlite():
        return query
    return query.for_update()


@contextlib.contextmanager
def connection():
    """A connection outside a request (CLI, start-up)."""
    opened = database.is_closed()
    if opened:
        database.connect()
    try:
        yield database
    finally:
        if opened and not database.is_closed():
            database.close()
