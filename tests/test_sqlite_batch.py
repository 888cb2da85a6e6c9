"""SQLite runs a grant's common writes as one batch (storage/sqlite_batch.py): in the
writers' queue, inside BEGIN IMMEDIATE and COMMIT and nothing else; a required statement
that changes no row undoes the batch; an error undoes it and frees the queue; inside an
open transaction the batch is a savepoint of it."""

from __future__ import annotations

import threading

import peewee
import pytest

from oauth.storage import sqlite_batch
from oauth.storage.compiled import insert_statement, statement
from oauth.storage.db import database, write_transaction
from oauth.storage.models import User
from tests.test_sqlite_writers import _hold, _lock_path, _state_seen_by_another_process

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _renamed(email, user_id):
    return User.update(name=email).where(User.id == user_id)


def _new_user(email: str) -> tuple[str, list, bool]:
    return (*insert_statement(User(email=email)), False)


def _rename(user_id: str, name: str, *, required: bool) -> tuple[str, list, bool]:
    return (*statement("test.batch.rename", _renamed, name, user_id), required)


def _emails(app) -> list[str]:
    with app.app_context():
        return sorted(user.email for user in User.select())


def test_a_batch_is_its_statements_between_begin_immediate_and_commit(app):
    traced: list[str] = []
    with app.app_context():
        user = User.create(email="a@example.com")
        steps = [_new_user("b@example.com"), _rename(user.id, "Ann", required=True)]
        connection = database.obj.connection()
        connection.set_trace_callback(traced.append)
        try:
            assert sqlite_batch.run(steps) is True
        finally:
            connection.set_trace_callback(None)
        assert User.get_by_id(user.id).name == "Ann"
    assert traced[0] == "BEGIN IMMEDIATE" and traced[-1] == "COMMIT"
    assert [s.split()[0] for s in traced[1:-1]] == ["INSERT", "UPDATE"]
    assert _emails(app) == ["a@example.com", "b@example.com"]
    assert _state_seen_by_another_process(_lock_path(app)) == "free"


def test_a_required_statement_that_changes_nothing_undoes_the_batch(app):
    with app.app_context():
        steps = [_new_user("b@example.com"), _rename("no-such-user", "Ann", required=True)]
        assert sqlite_batch.run(steps) is False
        not_required = [_new_user("c@example.com"), _rename("no-such-user", "Ann", required=False)]
        assert sqlite_batch.run(not_required) is True
    assert _emails(app) == ["c@example.com"]
    assert _state_seen_by_another_process(_lock_path(app)) == "free"


def test_an_error_undoes_the_batch_and_frees_the_queue(app):
    with app.app_context():
        User.create(email="taken@example.com")
        steps = [_new_user("b@example.com"), _new_user("taken@example.com")]  # unique email
        with pytest.raises(peewee.IntegrityError):
            sqlite_batch.run(steps)
        assert not database.obj.connection().in_transaction
        assert _state_seen_by_another_process(_lock_path(app)) == "free"
        assert sqlite_batch.run([_new_user("c@example.com")]) is True
    assert _emails(app) == ["c@example.com", "taken@example.com"]


def test_a_batch_waits_for_another_process_holding_the_queue(app):
    holder = _hold(_lock_path(app))
    done = threading.Event()

    def write():
        with app.app_context():
            sqlite_batch.run([_new_user("queued@example.com")])
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert not done.wait(0.5)  # queued behind the other process
    finally:
        holder.communicate("go\n")
    thread.join(10)
    assert done.is_set() and _emails(app) == ["queued@example.com"]


def test_inside_a_transaction_a_batch_is_a_savepoint_of_it(app):
    with app.app_context():
        with write_transaction():
            User.create(email="outer@example.com")
            miss = [_new_user("undone@example.com"), _rename("no-such-user", "x", required=True)]
            assert sqlite_batch.run(miss) is False
            assert sqlite_batch.run([_new_user("kept@example.com")]) is True
            assert database.obj.connection().in_transaction  # the outer one goes on
        with pytest.raises(RuntimeError), write_transaction():
            sqlite_batch.run([_new_user("rolled-back@example.com")])
            raise RuntimeError("the outer work failed")
    assert _emails(app) == ["kept@example.com", "outer@example.com"]
