"""SQLite's writers wait for each other in a lock of our own, which wakes them at once.

SQLite lets one writer in at a time; one that finds the write lock taken sleeps in its busy
handler, 1 ms, then 2, 5, 10 ms... A token transaction holds the lock for about 0.3 ms, so a
worker that met another's transaction slept three times longer than it waited for: with two
workers a refresh spent 0.7 ms of its 1.6 ms asleep at ``BEGIN IMMEDIATE`` (issue 13).

Before ``BEGIN IMMEDIATE`` a writer takes this lock: a thread lock for the threads of one
process, then an exclusive ``flock`` on ``<database>-writers`` for the processes. The kernel
drops a ``flock`` whatever way its process ends, so a worker killed inside a transaction
blocks nobody. The wait is bounded like SQLite's: after ``timeout`` seconds it fails with the
error SQLite would give ("database is locked"). Deferred transactions do not take it; they
meet SQLite's lock as before (they write rarely).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

import peewee

from oauth.storage import per_process

FIRST_PAUSE = 0.00005  # seconds between two tries of a held flock, doubling up to MAX_PAUSE
MAX_PAUSE = 0.0005


class WriterLock:
    """The lock of one database file for every thread and process that writes to it."""

    def __init__(self, database_path: str, timeout: float) -> None:
        self.path = database_path + "-writers"
        self.timeout = timeout
        self._held = threading.local()
        self._pid = None

    def _set_up(self) -> None:
        # A descriptor inherited through fork shares its flock with the parent (the lock
        # belongs to the open file), and a thread lock may have been copied while held.
        self._threads = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def acquire(self) -> None:
        per_process.once(self, self._set_up)
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            raise peewee.OperationalError("database is locked")
        try:
            self._lock_file(deadline)
        except BaseException:
            self._threads.release()
            raise
        self._held.lock = self._threads

    def _lock_file(self, deadline: float) -> None:
        pause = FIRST_PAUSE
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise peewee.OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, MAX_PAUSE)

    def release(self) -> None:
        """Release it if this thread holds it (a no-op otherwise)."""
        threads = getattr(self._held, "lock", None)
        if threads is None:
            return
        self._held.lock = None
        if threads is self._threads:  # not a lock from before a fork
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        threads.release()


class QueuedWritersSqliteDatabase:
    """Mixed into peewee's SQLite database: ``BEGIN IMMEDIATE`` waits in a ``WriterLock``
    first, and the transaction's end (or the connection's) releases it."""

    writers: WriterLock

    def begin(self, lock_type=None):
        if (lock_type or self._lock_type) not in ("IMMEDIATE", "EXCLUSIVE"):
            return super().begin(lock_type)
        self.writers.acquire()
        try:
            return super().begin(lock_type)
        except BaseException:
            self.writers.release()
            raise

    def commit(self):
        try:
            return super().commit()
        finally:
            self.writers.release()

    def rollback(self):
        try:
            return super().rollback()
        finally:
            self.writers.release()

    def _close(self, conn, *args, **kwargs):
        self.writers.release()  # a connection closed in a transaction ends it
        return super()._close(conn, *args, **kwargs)
