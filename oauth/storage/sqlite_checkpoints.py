"""SQLite's WAL checkpoints run beside the writers, not inside one writer's turn.

SQLite checkpoints in the commit that takes the WAL past ``wal_autocheckpoint`` frames (1,000
by default). That commit copies the pages into the database file and syncs both files while
it still holds the write lock, and every writer queued behind it waits. Here such a commit
held the lock for 2 to 8 ms, against 0.09 ms for a usual one. With two workers, one of them
sat idle through most of it (issue 13: part of why a third of the CPUs sat idle in the
refresh benchmark).

So a connection of the pool checkpoints itself only as a backstop, at ``HARD_FRAMES``. Each
process that writes runs a PASSIVE checkpoint ``INTERVAL`` seconds after its writes, from a
daemon thread with a connection of its own. PASSIVE never waits for readers or writers and
never blocks them. SQLite's checkpoint lock keeps two checkpointers apart: the one that finds
it taken gives up and tries again at its next round. Under steady writes a PASSIVE checkpoint
rarely finds the WAL idle enough to start it over, so the backstop still runs now and then.
It has little left to copy by then. A process that never writes starts no thread.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

from oauth.storage import per_process

log = logging.getLogger(__name__)

HARD_FRAMES = 10_000  # the pool's own wal_autocheckpoint (40 MB of 4 KiB pages)
INTERVAL = 0.2  # seconds from a write to the checkpoint that copies it


class Checkpointer:
    """The background checkpoints of one database file in this process."""

    def __init__(self, database_path: str, interval: float = INTERVAL) -> None:
        self.path, self.interval = database_path, interval
        self._pid = None
        self._inherited: list[sqlite3.Connection] = []  # a parent's: never used, never closed

    def _fresh_after_fork(self) -> None:
        # Threads do not survive a fork, and SQLite forbids using a connection the parent
        # opened; closing it could disturb the parent's locks, so the child keeps it unused.
        connection = getattr(self, "_connection", None)
        if connection is not None:
            self._inherited.append(connection)
        self._connection: sqlite3.Connection | None = None
        self._due, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._due, self._stop), daemon=True,
            name="portcullis-sqlite-checkpoints",
        )  # fmt: skip
        self._thread.start()

    def wrote(self) -> None:
        """Called after a write commits: a checkpoint follows within ``interval``."""
        per_process.once(self, self._fresh_after_fork)
        self._due.set()

    def _run(self, due: threading.Event, stop: threading.Event) -> None:
        while True:
            due.wait()
            if stop.wait(self.interval):  # meanwhile the writes of the interval gather
                return
            due.clear()
            self.checkpoint()

    def close(self) -> None:
        """Stop this process's thread and close its connection (the app's database closing
        all its connections: tests). A later write starts them again."""
        if self._pid != os.getpid():
            return
        self._stop.set()
        self._due.set()
        self._thread.join(timeout=5)
        if not self._thread.is_alive() and self._connection is not None:
            self._connection.close()
            self._connection = None
        self._pid = None

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint now: SQLite's (busy, frames in the WAL, frames copied), or
        None if it failed (logged; the next write asks again, the backstop remains)."""
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(
                    self.path, timeout=0, isolation_level=None, check_same_thread=False
                )
            return self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:
            if "locked" not in str(error) and "busy" not in str(error):  # those pass
                log.warning("SQLite checkpoint of %s failed: %s", self.path, error)
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            return None
