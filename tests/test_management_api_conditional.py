"""The management API's conditional writes (If-Match): the ETag is checked in the same write
transaction as the change, on the row read locked, so two callers holding one ETag cannot
both write (a lost update), and nothing changes between the check and the write."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

import psycopg
import requests

from oauth.storage.models import User
from tests.conftest import LiveServer
from tests.management_api_helpers import ManagementCaller
from tests.test_plugins import write_plugin

MACHINE = {"name": "Shop", "grant_types": ["client_credentials"]}


@contextmanager
def writer_holding(database_url: str, table: str, key: str, value: str):
    """Another connection holding the write lock on one row (PostgreSQL) or on the whole
    database (SQLite) until the block ends."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(unquote(urlsplit(database_url).path), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn = psycopg.connect(database_url)
        conn.execute(f'SELECT 1 FROM "{table}" WHERE "{key}" = %s FOR UPDATE', (value,))
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def _waiting_on_locks(database_url: str, count: int) -> None:
    """Until ``count`` backends wait on a lock (PostgreSQL), or a moment (SQLite: no view)."""
    if database_url.startswith("sqlite"):
        time.sleep(1.0)
        return
    deadline = time.monotonic() + 10
    with psycopg.connect(database_url, autocommit=True) as admin:
        while time.monotonic() < deadline:
            waiting = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            ).fetchone()[0]
            if waiting >= count:
                return
            time.sleep(0.02)


def _concurrently(calls) -> tuple[list, list[threading.Thread]]:
    """Start each call in a thread of its own: (the answers as they come, the threads)."""
    answers: list = [None] * len(calls)

    def run(index, call):
        answers[index] = call()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    return answers, threads


def _race(make_app, database_url, calls_for):
    """Over real HTTP, the calls ``calls_for(url, headers)`` makes for one client (its URL,
    and headers with the token and the ETag just read), queued behind another connection's
    lock so that all of them read before any writes; returns (caller, client_id, answers)."""
    app = make_app(MANAGEMENT_API=True)
    with LiveServer(app) as server:
        caller = ManagementCaller(app, app.test_client())
        client_id = caller.post("/clients", json=MACHINE).get_json()["client_id"]
        etag = caller.get(f"/clients/{client_id}").headers["ETag"]
        url = f"{server.url}/api/v1/clients/{client_id}"
        calls = calls_for(url, caller.headers(**{"If-Match": etag}))
        with writer_holding(database_url, "client", "client_id", client_id):
            answers, threads = _concurrently(calls)
            _waiting_on_locks(database_url, len(calls))
        for thread in threads:
            thread.join(30)
    return caller, client_id, answers


def test_two_patches_with_one_etag_make_one_change_and_one_412(make_app, database_url):
    def two_renames(url, headers):
        return [
            lambda name=name: requests.patch(url, json={"name": name}, headers=headers, timeout=30)
            for name in ("First", "Second")
        ]

    caller, client_id, answers = _race(make_app, database_url, two_renames)
    assert sorted(answer.status_code for answer in answers) == [200, 412]
    winner = next(answer for answer in answers if answer.status_code == 200)
    final = caller.get(f"/clients/{client_id}")
    assert final.get_json()["name"] == winner.json()["name"]  # the loser wrote nothing
    assert final.headers["ETag"] == winner.headers["ETag"]


def test_a_delete_and_a_patch_with_one_etag_do_not_both_happen(make_app, database_url):
    def rename_and_delete(url, headers):
        return [
            lambda: requests.patch(url, json={"name": "Renamed"}, headers=headers, timeout=30),
            lambda: requests.delete(url, headers=headers, timeout=30),
        ]

    caller, client_id, answers = _race(make_app, database_url, rename_and_delete)
    patched, deleted = (answer.status_code for answer in answers)
    # Whichever went first happened alone: a rename then a 412 (or 404) for the delete, or
    # the delete and then a 404 for the rename, never a rename the delete did not see.
    assert (patched, deleted) in ((200, 412), (404, 204))
    if patched == 200:
        assert caller.get(f"/clients/{client_id}").get_json()["name"] == "Renamed"
    else:
        assert caller.get(f"/clients/{client_id}").status_code == 404


RENAMES = """
from oauth import hookimpl
from oauth.storage.models import User
@hookimpl
def before_user_deleted(user, via):
    User.update(name="Renamed meanwhile").where(User.id == user.id).execute()
"""


def test_a_user_changed_while_the_plugins_are_asked_is_not_deleted(make_app, plugin_dir):
    write_plugin(plugin_dir, "renames", RENAMES)
    app = make_app(MANAGEMENT_API=True, PLUGINS_DIR=str(plugin_dir))
    caller = ManagementCaller(app, app.test_client())
    user_id = caller.post("/users", json={"email": "ann@example.com"}).get_json()["id"]
    etag = caller.get(f"/users/{user_id}").headers["ETag"]
    refused = caller.delete(f"/users/{user_id}", headers={"If-Match": etag})
    assert refused.status_code == 412  # checked again where the row is deleted
    with app.app_context():
        assert User.get_by_id(user_id).name == "Renamed meanwhile"  # kept, with the change
    fresh = caller.get(f"/users/{user_id}").headers["ETag"]
    assert caller.delete(f"/users/{user_id}", headers={"If-Match": fresh}).status_code == 204
