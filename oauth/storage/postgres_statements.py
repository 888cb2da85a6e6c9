"""The compiled queries on PostgreSQL, prepared once per connection and run through libpq
directly (issue 13).

psycopg's cursor drives every statement through its generator-based protocol machinery:
about 80 µs of Python per execution on the benchmark machine, most of what a bearer-token
check spends outside the server (the session lookup of ``tokens/verify.py``: 106 µs of CPU
through peewee's ``execute_sql``, 28 µs this way). A compiled query (``compiled.py``) keeps
one SQL text for the life of the process, so this module prepares it once per connection
and set of parameter types as a named server-side statement and runs it with
``PQexecPrepared`` (``psycopg.pq``: the call releases the GIL while it waits). psycopg's own
``Transformer`` dumps the parameters and loads the rows, so the values are the ones a
cursor gives, from the same adapters.

A server error becomes psycopg's exception for its SQLSTATE (``error_from_result``),
raised inside peewee's exception wrapper, so callers see ``peewee.IntegrityError`` and the
rest as they would from ``execute_sql``. A statement the server no longer knows (``DISCARD
ALL``, ``DEALLOCATE``) is prepared again once when no transaction is open; inside one the
error stands, because PostgreSQL has already aborted that transaction.

psycopg's own automatic preparation is off on these connections (``storage/db.py``): after
a ROLLBACK or DDL it sends ``DEALLOCATE ALL``, which would drop these statements too, in
the middle of the next transaction. A statement whose result no longer matches the
schema (SQLSTATE 0A000, "cached plan must not change result type", after another
instance migrated) is prepared again under a new name, outside a transaction, as above.

Named statements live in a server session. A pooler that hands one client's statements to
different sessions (PgBouncer in transaction mode before 1.21) breaks them, as it breaks
psycopg's own prepared statements.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import peewee
import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

PREFIX = "portcullis_"  # the statements' names; psycopg's own are _pg3_N
# invalid_sql_statement_name; feature_not_supported (a plan whose result type changed)
PREPARE_AGAIN = (b"26000", b"0A000")
_PLACEHOLDER = re.compile(r"%(.)", re.S)
_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)


@dataclass
class Outcome:
    """What a statement gave: the columns' names (as ``cursor.description``'s first items;
    None unless asked for), its rows and the number of rows it changed."""

    description: list[tuple[str]] | None
    rows: list[tuple]
    rowcount: int


class _Session:
    """One connection's statements and its transformer (a connection serves one thread at a
    time, so neither needs a lock)."""

    __slots__ = ("transformer", "names", "prepared")

    def __init__(self, conn: psycopg.Connection) -> None:
        self.transformer = Transformer(conn)
        self.names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self.prepared = 0  # names are never reused: a forgotten one may come back


_sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_numbered: dict[str, bytes | None] = {}


def numbered(sql: str) -> bytes | None:
    """``sql`` with peewee's ``%s`` placeholders as ``$1, $2...`` (and ``%%`` as ``%``), or
    None when it holds any other ``%`` sequence."""
    if sql in _numbered:
        return _numbered[sql]
    count = 0

    def number(match: re.Match) -> str:
        nonlocal count
        if match.group(1) == "%":
            return "%"
        if match.group(1) != "s":
            raise ValueError(match.group(0))
        count += 1
        return f"${count}"

    try:
        text: bytes | None = _PLACEHOLDER.sub(number, sql).encode()
    except ValueError:
        text = None
    _numbered[sql] = text
    return text


def run(db: peewee.Database, sql: str, params: list, *, describe: bool) -> Outcome | None:
    """Run ``sql`` (peewee's placeholders) with ``params`` as a prepared statement of the
    current connection; None when this database or statement cannot take this path (the
    caller uses ``execute_sql``). Errors are peewee's, as from ``execute_sql``. ``describe``:
    also name the columns (a compiled query needs them once, to map them to fields)."""
    if not isinstance(db, peewee.PostgresqlDatabase) or db.query_hooks:
        return None
    text = numbered(sql)
    if text is None:
        return None
    with peewee.__exception_wrapper__:
        conn = db.connection()
        if not isinstance(conn, psycopg.Connection):
            return None
        return _execute(conn, text, params, describe)


def _execute(conn: psycopg.Connection, text: bytes, params: list, describe: bool) -> Outcome:
    session = _sessions.get(conn)
    if session is None:
        session = _sessions[conn] = _Session(conn)
    transformer = session.transformer
    values = transformer.dump_sequence(params, [PyFormat.AUTO] * len(params))
    types, formats = transformer.types or (), transformer.formats or []
    key = (text, types)
    pgconn = conn.pgconn
    name = session.names.get(key) or _prepare(conn, session, key)
    result = pgconn.exec_prepared(name, values, formats)
    if _forgotten(result) and pgconn.transaction_status == pq.TransactionStatus.IDLE:
        del session.names[key]
        result = pgconn.exec_prepared(_prepare(conn, session, key), values, formats)
    _check(conn, result)
    rows: list[tuple] = []
    if result.status == pq.ExecStatus.TUPLES_OK:
        transformer.set_pgresult(result)
        rows = transformer.load_rows(0, result.ntuples, tuple)
    description = None
    if describe and result.nfields:
        encoding = conn.info.encoding
        names = (result.fname(i) or b"" for i in range(result.nfields))
        description = [(name.decode(encoding),) for name in names]
    return Outcome(description, rows, result.command_tuples or 0)


def _prepare(conn: psycopg.Connection, session: _Session, key) -> bytes:
    session.prepared += 1
    name = f"{PREFIX}{session.prepared}".encode()
    _check(conn, conn.pgconn.prepare(name, key[0], key[1]))
    session.names[key] = name
    return name


def _forgotten(result: pq.abc.PGresult) -> bool:
    return (
        result.status == pq.ExecStatus.FATAL_ERROR
        and result.error_field(pq.DiagnosticField.SQLSTATE) in PREPARE_AGAIN
    )


def _check(conn: psycopg.Connection, result: pq.abc.PGresult) -> None:
    if result.status in _OK:
        return
    if conn.pgconn.status == pq.ConnStatus.BAD:  # as a cursor reports a lost server
        message = conn.pgconn.error_message.decode(conn.info.encoding, "replace").strip()
        raise psycopg.OperationalError(message or "the connection to the server was lost")
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    raise psycopg.InterfaceError(f"unexpected result: {pq.ExecStatus(result.status).name}")
