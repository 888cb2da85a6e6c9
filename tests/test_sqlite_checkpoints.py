"""SQLite's WAL checkpoints run beside the writers (storage/sqlite_checkpoints.py): what a
process writes reaches the database file from its background thread, the pool's connections
checkpoint only as a backstop, and a forked child checkpoints with a thread of its own."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from oauth.storage.db import database, write_transaction
from oauth.storage.models import User
from oauth.storage.sqlite_checkpoints import HARD_FRAMES, Checkpointer

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def rows_in_the_file_alone(path: Path, sql: str, copy: Path) -> int | None:
    """``sql``'s count in a copy of the database file without its WAL: only what a
    checkpoint has copied into the file (None while a checkpoint is writing it)."""
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(copy)
    try:
        return connection.execute(sql).fetchone()[0]
    except sqlite3.DatabaseError:  # torn by a checkpoint, or the table not in the file yet
        return None
    finally:
        connection.close()
        copy.unlink()


def wait_for_rows(path: Path, sql: str, expected: int, copy: Path) -> int | None:
    deadline = time.monotonic() + 15
    while True:
        found = rows_in_the_file_alone(path, sql, copy)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@sqlite_only
def test_what_a_process_writes_reaches_the_file_without_a_writer_checkpointing(make_app, tmp_path):
    app = make_app()
    path = Path(app.extensions["portcullis.database"].database)
    with app.app_context():
        with write_transaction():
            for n in range(40):
                User.create(email=f"checkpointed{n}@example.com")
        # a writer's own checkpoint would come only after HARD_FRAMES frames of WAL
        assert database.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0] == HARD_FRAMES
        sql = "SELECT count(*) FROM user WHERE email LIKE 'checkpointed%'"
        assert wait_for_rows(path, sql, 40, tmp_path / "copy.db") == 40


def test_a_forked_child_checkpoints_with_a_thread_and_connection_of_its_own(tmp_path):
    path = tmp_path / "forked.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=wal")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the Checkpointer copies into the file
    writer.execute("CREATE TABLE t (n INTEGER)")
    checkpoints = Checkpointer(str(path), interval=0.01)
    checkpoints.wrote()
    # the table is in the file: the parent's thread and connection exist before the fork
    assert wait_for_rows(path, "SELECT count(*) FROM t", 0, tmp_path / "parent.db") == 0
    pid = os.fork()
    if pid == 0:  # the child writes, asks for a checkpoint and waits for it
        code = 1
        try:
            child = sqlite3.connect(path, isolation_level=None)  # never the parent's
            child.execute("PRAGMA wal_autocheckpoint=0")
            child.execute("INSERT INTO t VALUES (1)")
            checkpoints.wrote()
            found = wait_for_rows(path, "SELECT count(*) FROM t", 1, tmp_path / "child.db")
            code = 0 if found == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    writer.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_threads_of_a_new_process_start_one_checkpointer(tmp_path):
    """A threaded worker's first commits reach ``wrote`` together: a thread that saw the new
    pid before the rest was set up failed after its commit (AttributeError: a 500 for a
    write that was kept), and a second thread started a second checkpointer."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for round_ in range(20):
            path = tmp_path / f"fresh-{round_}.db"
            sqlite3.connect(path).close()
            checkpoints = Checkpointer(str(path), interval=60)
            start, failures = threading.Barrier(8), []

            def commit(checkpoints=checkpoints, start=start, failures=failures):
                start.wait()
                try:
                    checkpoints.wrote()
                except Exception as error:
                    failures.append(error)

            before = _checkpointer_threads()
            threads = [threading.Thread(target=commit) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            started = _checkpointer_threads() - before
            checkpoints.close()
            assert failures == [] and started == 1, (failures, started)
    finally:
        sys.setswitchinterval(previous)


def _checkpointer_threads() -> int:
    return sum(t.name == "portcullis-sqlite-checkpoints" for t in threading.enumerate())
