"""Queries of the hot paths, compiled to SQL once per kind of database.

peewee builds a query's SQL anew from its expression tree every time it runs: about 0.1 to
0.3 ms of Python per query, most of what a bearer-token check spent. ``compiled`` builds the
query once per database class (SQLite and PostgreSQL differ in quoting and placeholders) with
markers in place of the values, keeps the SQL text and where each value goes, and afterwards
runs it with the values bound. The rows still become model objects through the fields' own
conversions (JSON, datetimes, booleans), as peewee's own cursor wrapper makes them, but with
the mapping of columns to fields worked out once per query instead of on every execution
(``Model.raw`` spent about 0.13 ms per row on it, most of a primary-key lookup).
``execute`` does the same for an UPDATE, INSERT or DELETE.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import peewee

from oauth.storage import postgres_statements
from oauth.storage.db import database, for_update


class _Marker(str):
    """Stands for the n-th value of a compiled query while it is built: a string, so that a
    text field's conversion keeps it as it is."""

    __slots__ = ()


@dataclass(frozen=True)
class _Reader:
    """How a row of one compiled query becomes a model: for each column, the field's name in
    ``__data__`` and its ``python_value``; a column that is no field (an alias) becomes an
    attribute, unconverted, as peewee does."""

    fields: tuple[tuple[int, str, Callable[[Any], Any]], ...]
    attributes: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, model: type[peewee.Model], description) -> _Reader:
        combined = model._meta.combined
        fields, attributes = [], []
        for index, item in enumerate(description):
            column = item[0].rpartition(".")[2].strip('()"`')
            field = combined.get(column)
            if isinstance(field, peewee.Field):
                fields.append((index, field.name, field.python_value))
            else:
                attributes.append((index, column))
        return cls(tuple(fields), tuple(attributes))

    def row(self, model: type[peewee.Model], values: tuple) -> peewee.Model:
        # What peewee's ModelObjectCursorWrapper builds (Model(__no_default__=1, **row) with
        # its dirty set cleared), without a descriptor call per field.
        instance = model.__new__(model)
        instance.__data__ = {name: convert(values[i]) for i, name, convert in self.fields}
        instance._dirty = set()
        instance.__rel__ = {}
        for index, name in self.attributes:
            setattr(instance, name, values[index])
        return instance


@dataclass
class _Compiled:
    sql: str
    # For each parameter of the SQL: the index of the caller's value, or a constant of the
    # query itself (a LIMIT, a literal) wrapped in a 1-tuple.
    slots: tuple[int | tuple[Any], ...]
    # set at the first execution (it needs the cursor): a _Reader, or one per model of a join
    reader: Any = None


_cache: dict[tuple[type, str], _Compiled] = {}
_lock = threading.Lock()


def _compile(build: Callable[..., peewee.Query], arity: int) -> _Compiled:
    markers = {_Marker(f"\x00compiled-value-{i}\x00"): i for i in range(arity)}
    sql, params = build(*markers).sql()
    slots = tuple(markers[p] if isinstance(p, str) and p in markers else (p,) for p in params)
    used = {slot for slot in slots if isinstance(slot, int)}
    if used != set(range(arity)):
        raise ValueError(f"compiled query: values {sorted(set(range(arity)) - used)} unused")
    return _Compiled(sql, slots)


def _entry(db, name: str, build: Callable[..., peewee.Query], arity: int) -> _Compiled:
    key = (type(db), name)
    entry = _cache.get(key)
    if entry is None:
        with _lock:
            entry = _cache.get(key) or _compile(build, arity)
            _cache[key] = entry
    return entry


def _params(entry: _Compiled, values: tuple) -> list:
    return [values[slot] if isinstance(slot, int) else slot[0] for slot in entry.slots]


def _run(db, entry: _Compiled, values: tuple) -> postgres_statements.Outcome:
    """Run the query: on PostgreSQL as a prepared statement (``postgres_statements``),
    elsewhere through peewee's ``execute_sql``. The columns are named only while the entry
    has no reader yet."""
    params = _params(entry, values)
    outcome = postgres_statements.run(db, entry.sql, params, describe=entry.reader is None)
    if outcome is None:
        cursor = db.execute_sql(entry.sql, params)
        rows = cursor.fetchall() if cursor.description else []
        outcome = postgres_statements.Outcome(cursor.description, rows, cursor.rowcount)
    return outcome


def compiled(
    model: type[peewee.Model], name: str, build: Callable[..., peewee.Query], *values: Any
) -> list[peewee.Model]:
    """The rows of ``build(*values)`` as ``model`` objects, its SQL compiled once per database
    class.

    ``name`` identifies the query (one name, one ``build``); ``build`` takes the values as
    arguments and must use them only as values compared with (or written to) columns, never
    to decide the query's shape: it is called once, with markers (strings) instead of the
    real values, and the values are later bound as given, without the field's conversion
    (pass ``Model.field.db_value(value)`` where that is not the value itself).
    """
    db = database.obj  # the app's database, resolved once
    entry = _entry(db, name, build, len(values))
    outcome = _run(db, entry, values)
    reader = entry.reader
    if reader is None:
        reader = entry.reader = _Reader.of(model, outcome.description)
    return [reader.row(model, values) for values in outcome.rows]


def joined(
    models: tuple[type[peewee.Model], ...], name: str, build: Callable[..., peewee.Query], *values
) -> list[tuple[peewee.Model, ...]]:
    """``compiled`` for a join: ``build`` selects the fields of each of ``models`` in turn
    (``A.select(A, B).join(B)``); each row comes back as one object of each model. Columns
    after the last model's fields (aliases) become attributes of the last model's object."""
    db = database.obj
    entry = _entry(db, name, build, len(values))
    outcome = _run(db, entry, values)
    readers = entry.reader
    if readers is None:
        readers, start = [], 0
        for number, model in enumerate(models, 1):
            end = start + len(model._meta.sorted_fields) if number < len(models) else None
            readers.append((model, start, end, _Reader.of(model, outcome.description[start:end])))
            start = end
        readers = entry.reader = tuple(readers)
    return [
        tuple(reader.row(model, row[start:end]) for model, start, end, reader in readers)
        for row in outcome.rows
    ]


def execute(name: str, build: Callable[..., peewee.Query], *values: Any) -> int:
    """Run the UPDATE, INSERT or DELETE ``build(*values)``, compiled once per database class
    (as ``compiled``); returns the number of rows it changed."""
    db = database.obj
    entry = _entry(db, name, build, len(values))
    return _run(db, entry, values).rowcount


def statement(name: str, build: Callable[..., peewee.Query], *values: Any) -> tuple[str, list]:
    """The SQL and parameters of ``build(*values)`` (as ``execute`` would run them), to run
    later on the raw connection (``storage/sqlite_batch.py``)."""
    entry = _entry(database.obj, name, build, len(values))
    return entry.sql, _params(entry, values)


def insert(instance: peewee.Model) -> None:
    """INSERT ``instance``, as ``instance.save(force_insert=True)`` would (the fields it has
    a value for, through their ``db_value``), compiled once per model and set of fields."""
    execute(*_insertion(instance))
    instance._dirty.clear()


def insert_statement(instance: peewee.Model) -> tuple[str, list]:
    """``insert``'s SQL and parameters for ``instance``, to run later (``statement``)."""
    return statement(*_insertion(instance))


def _insertion(instance: peewee.Model) -> tuple:
    model, data = type(instance), instance.__data__
    fields = [field for field in model._meta.sorted_fields if field.name in data]
    if isinstance(model._meta.primary_key, peewee.AutoField):
        raise ValueError("compiled insert: the primary key is the database's; use save()")
    name = f"insert:{model._meta.table_name}:" + ",".join(field.name for field in fields)

    def build(*values):  # Value nodes: the values are db_value'd below, not by peewee
        row = zip(fields, values, strict=True)
        return model.insert({field: peewee.Value(value, unpack=False) for field, value in row})

    return (name, build, *(field.db_value(data[field.name]) for field in fields))


def first(rows: list[peewee.Model]) -> peewee.Model | None:
    """The first of ``compiled``'s rows (the one row of a primary-key or unique lookup), or None."""
    return rows[0] if rows else None


def row_by(field: peewee.Field, value: Any, *, locked: bool = False) -> peewee.Model | None:
    """The row whose ``field`` (a primary or unique key) is ``value``, or None; compiled once
    per field (``locked``: ``SELECT ... FOR UPDATE``, in a write transaction)."""
    model = field.model
    name = f"row_by:{model._meta.table_name}.{field.name}" + (":locked" if locked else "")

    def build(key):
        query = model.select().where(field == key)
        return for_update(query) if locked else query

    return first(compiled(model, name, build, value))
