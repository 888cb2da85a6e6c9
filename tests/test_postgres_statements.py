"""The compiled queries on PostgreSQL (storage/postgres_statements.py): prepared once per
connection and run through libpq, with the values, errors and transactions a cursor gives."""

from __future__ import annotations

import datetime as dt

import peewee
import psycopg
import pytest

from oauth.storage import postgres_statements
from oauth.storage.compiled import compiled, execute, first, insert, row_by
from oauth.storage.db import database
from oauth.storage.models import Client, OAuthSession, User
from tests.conftest import PG_ADMIN_URL

postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def _ours() -> list[tuple[str, str]]:
    """This connection's statements of the fast path: (name, SQL)."""
    rows = database.execute_sql(
        "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE %s ORDER BY name",
        (postgres_statements.PREFIX + "%",),
    )
    return list(rows.fetchall())


def _by_email(email):
    return User.select().where(User.email == email)


@postgres_only
def test_a_compiled_query_is_prepared_once_on_its_connection(app_context, auth):
    auth.create_user("ann@example.com", name="Ann")
    before = _ours()
    for _ in range(3):
        assert first(compiled(User, "test.pg.by-email", _by_email, "ann@example.com")).name == "Ann"
    added = [sql for name, sql in _ours() if (name, sql) not in before]
    assert len(added) == 1 and '"email" = $1' in added[0]  # one statement, run three times


@postgres_only
def test_rows_hold_the_values_a_cursor_gives(app_context, auth):
    user = auth.create_user("bo@example.com", name="Bo", app_metadata={"tier": "gold", "n": 2})
    user.last_sign_in_at = dt.datetime(2030, 1, 2, 3, 4, 5, 678901)
    user.save()
    fast = row_by(User.id, user.id)
    slow = User.get_by_id(user.id)  # peewee's own query, through a cursor
    assert fast.__data__ == slow.__data__
    assert fast.app_metadata == {"tier": "gold", "n": 2} and fast.disabled is False
    assert fast.phone_verified is False and fast.password_hash is not None


@postgres_only
def test_a_statement_the_server_forgot_is_prepared_again(app_context, auth):
    auth.create_user("cy@example.com")
    assert row_by(User.email, "cy@example.com") is not None
    database.execute_sql("DEALLOCATE ALL")  # as DISCARD ALL from a pooler would
    assert _ours() == []
    assert row_by(User.email, "cy@example.com") is not None
    assert len(_ours()) == 1


@postgres_only
def test_a_rolled_back_transaction_keeps_the_statements(app_context, auth):
    auth.create_user("cal@example.com")
    for _ in range(8):  # what psycopg's own automatic preparation would have prepared
        User.select().where(User.email == "cal@example.com").first()
    assert row_by(User.email, "cal@example.com") is not None
    prepared = _ours()
    with pytest.raises(ZeroDivisionError), database.atomic():
        row_by(User.email, "cal@example.com")
        1 / 0  # noqa: B018 - the ROLLBACK
    assert _ours() == prepared  # psycopg sent no DEALLOCATE ALL after the ROLLBACK
    with database.atomic():
        assert row_by(User.email, "cal@example.com") is not None


@postgres_only
def test_a_server_error_is_peewees_and_leaves_the_connection_usable(app_context, auth):
    user = auth.create_user("di@example.com")
    twin = User(id=user.id, email="other@example.com", password_hash=None, name="")
    with pytest.raises(peewee.IntegrityError):
        insert(twin)  # the primary key again: a unique violation from the server
    assert row_by(User.id, user.id).email == "di@example.com"


def _rename(session_id, scope):
    return OAuthSession.update(scope=scope).where(OAuthSession.id == session_id)


@postgres_only
def test_writes_belong_to_the_open_transaction(app_context, auth):
    user = auth.create_user("ed@example.com")
    client = Client.create(client_id="c1", name="C1", redirect_uris=[], grant_types=[])
    session = OAuthSession.create(user=user, client=client, scope="a", audience="x", auth_time=1)
    with database.atomic() as transaction:
        assert execute("test.pg.rename", _rename, session.id, "b") == 1
        assert row_by(OAuthSession.id, session.id).scope == "b"  # seen inside it
        transaction.rollback()
    assert row_by(OAuthSession.id, session.id).scope == "a"
    with database.atomic():
        assert execute("test.pg.rename", _rename, session.id, "c") == 1
    assert OAuthSession.get_by_id(session.id).scope == "c"  # committed, seen by a cursor


@postgres_only
def test_a_forgotten_statement_inside_a_transaction_fails_it_whole(app_context, auth):
    user = auth.create_user("fi@example.com")
    client = Client.create(client_id="c2", name="C2", redirect_uris=[], grant_types=[])
    session = OAuthSession.create(user=user, client=client, scope="a", audience="x", auth_time=1)
    execute("test.pg.rename", _rename, session.id, "a")  # prepared
    with pytest.raises(peewee.DatabaseError), database.atomic():
        OAuthSession.update(scope="half").where(OAuthSession.id == session.id).execute()
        database.execute_sql("DEALLOCATE ALL")
        execute("test.pg.rename", _rename, session.id, "b")
    assert OAuthSession.get_by_id(session.id).scope == "a"  # nothing of it was kept
    assert execute("test.pg.rename", _rename, session.id, "d") == 1  # prepared again after


@postgres_only
def test_a_connection_the_server_ended_raises_and_is_not_reused(make_app):
    app = make_app()
    with app.app_context():
        pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        assert row_by(User.email, "nobody@example.com") is None  # prepared on this backend
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(peewee.OperationalError):
            row_by(User.email, "nobody@example.com")
    with app.app_context():
        assert row_by(User.email, "nobody@example.com") is None  # a new connection
        assert database.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid


def test_placeholders_are_numbered_and_anything_else_takes_the_cursor():
    assert postgres_statements.numbered("SELECT %s, '%%', %s") == b"SELECT $1, '%', $2"
    assert postgres_statements.numbered("SELECT %(name)s") is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_takes_the_cursor(app_context):
    assert postgres_statements.run(database.obj, "SELECT %s", [1], describe=True) is None
