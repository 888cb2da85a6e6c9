"""SQLite: a grant's common writes as one short transaction that holds nothing but them.

The writers' lock (``storage/sqlite_writers.py``) is what two SQLite workers wait for, so
whatever runs while it is held is paid by every writer. Through peewee's ``atomic`` a refresh
held it for its statements and for the Python around them (the transaction's bookkeeping,
each statement's values and cursor, the "last used" checks): 170 µs, of which SQLite's own
work was about 100. ``run`` takes statements whose SQL and values are ready
(``compiled.statement``) and holds the lock only for ``BEGIN IMMEDIATE``, them and
``COMMIT``, on the connection itself. A statement marked ``required`` that changes no row
(the token or the code changed since it was read) undoes the whole batch, and ``run``
answers False: the caller then takes its careful path.
"""

from __future__ import annotations

import peewee

from oauth.storage.db import database

Statement = tuple[str, list, bool]  # SQL, parameters, whether it must change a row


def run(statements: list[Statement]) -> bool:
    """Run ``statements`` in order in one write transaction of the app's SQLite database:
    True when they were committed, False when a required one changed no row (then nothing
    is written). Inside a transaction already open, they run in a savepoint of it."""
    db = database.obj
    conn = db.connection()
    with peewee.__exception_wrapper__:
        if db.in_transaction():
            return _in_savepoint(conn, statements)
        db.writers.acquire()
        try:
            done = _in_transaction(conn, statements)
        finally:
            db.writers.release()
    if done:
        db.checkpoints.wrote()
    return done


def _in_transaction(conn, statements: list[Statement]) -> bool:
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = _all(conn, statements)
        conn.execute("COMMIT" if done else "ROLLBACK")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done


def _in_savepoint(conn, statements: list[Statement]) -> bool:
    conn.execute("SAVEPOINT sqlite_batch")
    try:
        done = _all(conn, statements)
    except BaseException:
        done = False
        raise
    finally:
        if not done:
            conn.execute("ROLLBACK TO sqlite_batch")
        conn.execute("RELEASE sqlite_batch")
    return done


def _all(conn, statements: list[Statement]) -> bool:
    for sql, params, required in statements:
        if conn.execute(sql, params).rowcount == 0 and required:
            return False
    return True
