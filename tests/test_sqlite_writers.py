"""SQLite write transactions queue in a lock file of their own (storage/sqlite_writers.py):
across processes, released however a transaction or its process ends, bounded in time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import peewee
import pytest

from oauth.storage.db import write_transaction
from oauth.storage.models import User
from oauth.storage.sqlite_writers import WriterLock

HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""
TRY = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("busy")
else:
    print("free")
"""


sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def sqlite_app(make_app):
    return make_app()


def _lock_path(app) -> str:
    return app.extensions["portcullis.database"].writers.path


def _hold(path: str) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def _state_seen_by_another_process(path: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", TRY, path], capture_output=True, text=True, check=True
    ).stdout.strip()


def _write_in_thread(app, done: threading.Event) -> threading.Thread:
    def write():
        with app.app_context(), write_transaction():
            User.create(email="queued@example.com")
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


@sqlite_only
def test_a_write_waits_for_another_process_holding_the_lock(sqlite_app):
    holder = _hold(_lock_path(sqlite_app))
    done = threading.Event()
    thread = _write_in_thread(sqlite_app, done)
    try:
        assert not done.wait(0.5)  # queued behind the other process
    finally:
        holder.communicate("go\n")
    thread.join(10)
    assert done.is_set()
    with sqlite_app.app_context():
        assert User.select().where(User.email == "queued@example.com").count() == 1


@sqlite_only
def test_a_holder_killed_with_sigkill_blocks_nobody(sqlite_app):
    holder = _hold(_lock_path(sqlite_app))
    done = threading.Event()
    thread = _write_in_thread(sqlite_app, done)
    assert not done.wait(0.3)
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate(timeout=10)
    thread.join(10)
    assert done.is_set()


@sqlite_only
def test_every_end_of_a_transaction_releases_the_lock(sqlite_app):
    path = _lock_path(sqlite_app)
    with sqlite_app.app_context():
        with write_transaction():
            User.create(email="one@example.com")
            assert _state_seen_by_another_process(path) == "busy"  # held while it runs
        assert _state_seen_by_another_process(path) == "free"  # commit
        with pytest.raises(RuntimeError), write_transaction():
            User.create(email="two@example.com")
            raise RuntimeError("the work failed")
        assert _state_seen_by_another_process(path) == "free"  # rollback
        with pytest.raises(peewee.IntegrityError), write_transaction():
            User.create(email="one@example.com")  # unique: fails in the database
        assert _state_seen_by_another_process(path) == "free"
        assert User.select().count() == 1
        with write_transaction():  # and the thread can take it again
            User.create(email="three@example.com")


def test_the_wait_is_bounded_with_sqlites_error(tmp_path):
    lock = WriterLock(str(tmp_path / "bounded.db"), timeout=0.2)
    holder = _hold(lock.path)
    try:
        with pytest.raises(peewee.OperationalError, match="database is locked"):
            lock.acquire()
    finally:
        holder.communicate("go\n")
    lock.acquire()  # free again: the failed attempt left nothing held
    lock.release()


def test_a_forked_child_does_not_share_its_parents_lock(tmp_path):
    """A descriptor inherited through fork would share the parent's flock (one open file):
    the child opens its own, so the lock the parent takes after the fork shuts it out."""
    lock = WriterLock(str(tmp_path / "forked.db"), timeout=0.2)
    lock.acquire()  # the parent's descriptor exists before the fork
    lock.release()
    taken_read, taken_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(taken_write)
        os.read(taken_read, 1)  # the parent holds the lock now
        try:
            lock.acquire()
            os._exit(1)
        except peewee.OperationalError:
            os._exit(0)
    os.close(taken_read)
    lock.acquire()
    os.write(taken_write, b"x")
    _, status = os.waitpid(pid, 0)
    lock.release()
    os.close(taken_write)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_threads_of_a_new_process_set_up_the_lock_once(tmp_path):
    """A threaded worker's first requests all reach the lock's set-up at once; a thread that
    saw the new pid before the descriptor existed failed (AttributeError: a 500)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for round_ in range(30):
            lock = WriterLock(str(tmp_path / f"fresh-{round_}.db"), timeout=5)
            start, failures = threading.Barrier(8), []

            def write_once(lock=lock, start=start, failures=failures):
                start.wait()
                try:
                    lock.acquire()
                    lock.release()
                except Exception as error:
                    failures.append(error)

            threads = [threading.Thread(target=write_once) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            assert failures == [], failures
    finally:
        sys.setswitchinterval(previous)


@sqlite_only
def test_the_lock_file_is_private(sqlite_app):
    with sqlite_app.app_context(), write_transaction():
        pass
    assert os.stat(_lock_path(sqlite_app)).st_mode & 0o077 == 0
