"""The audit spool: audit events made durable on the request path without the database, then
moved into ``audit_event`` in the background, each exactly once (docs/decisions.md).

- Appending: one JSON line per event, one ``os.write`` on an ``O_APPEND`` descriptor of a file
  of this process (``instance/audit-spool/HOST-PID-RANDOM.jsonl``). Once ``write`` returns the
  kernel has the bytes, so a ``kill -9`` of every process loses nothing; a power loss can lose
  what the kernel had not written out yet, unless ``AUDIT_SPOOL_FSYNC`` syncs every event.
- Ownership: a process holds an exclusive ``flock`` on each of its files from the moment it
  creates them (under a hidden name, renamed once locked). The kernel drops the lock when the
  process dies however it dies, so a file whose lock can be taken has no owner: an orphan.
- Ingesting: complete lines only (a torn last line is left until it completes, and dropped
  from a file nobody writes to any more), a batch per transaction that also advances the
  file's row in ``audit_spool_progress``; the row is checked under the transaction (SQLite's
  write lock, PostgreSQL's row lock), so no line is ingested twice even if two flushers met.
  A flush takes a live file up to where it ended when the flush began: lines appended while
  it runs wait for the next one, so a busy worker commits once per interval.
  ``on_committed`` hears of each batch after it commits (the ``on_event`` hook).
- Who ingests: the owner, from a daemon thread (every ``AUDIT_SPOOL_FLUSH_SECONDS``), on
  ``flush()`` and at exit; orphans, whoever takes their lock first (at start-up and every
  ORPHAN_SCAN_SECONDS). A file fully ingested by whoever holds its lock is deleted.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import re
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, has_app_context

from oauth import compact_json
from oauth.storage.audit_ingest import AuditSpoolProgress, commit, parse, progress
from oauth.storage.db import database

log = logging.getLogger(__name__)

FOLDER = "audit-spool"  # in the instance folder
SUFFIX = ".jsonl"
ROTATE_BYTES = 8 << 20  # a file this large is retired (ingested, deleted) and a new one begun
MAX_LINE = 64 << 10  # a longer event is refused (the caller writes it to the database itself)
BATCH_BYTES = 64 << 10  # read per transaction: some hundreds of events
# Between two batches the flusher pauses this long: request threads of the process get the GIL
# (parsing and inserting a batch is Python work; one long flush showed in the token p99).
BATCH_PAUSE = 0.002
ORPHAN_SCAN_SECONDS = 30
STALE_TMP_SECONDS = 60  # a hidden file not renamed by then was left by a process that died


@dataclass
class _File:
    name: str
    fd: int  # holds the flock while open
    written: int = 0  # bytes appended by this process
    ingested: int = 0  # bytes known to be in the database


_SPOOLS: weakref.WeakSet[Spool] = weakref.WeakSet()
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"


class Spool:
    """One app's spool in this process: ``append`` on the request path, ``flush`` behind it."""

    def __init__(
        self,
        app: Flask,
        folder: Path,
        *,
        fsync: bool,
        interval: float,
        on_committed: Callable[[list[dict]], None],
    ):
        self.app, self.folder, self.fsync, self.interval = app, Path(folder), fsync, interval
        self.on_committed = on_committed
        self._reset()
        _SPOOLS.add(self)

    def _reset(self) -> None:
        """A fresh state: at creation and in a forked child (which owns none of the files)."""
        self._pid = os.getpid()
        self._append_lock = threading.Lock()  # the request path: held for a write() only
        self._flush_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._wake = threading.Event()
        self._current: _File | None = None
        self._retired: list[_File] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._next_scan = 0.0

    def _after_fork(self) -> None:
        for spool_file in [*self._retired, *([self._current] if self._current else [])]:
            os.close(spool_file.fd)  # the parent's lock stays with the parent's descriptor
        self._reset()

    # --- appending (the request path) ------------------------------------------------------

    def append(self, event: dict) -> None:
        """Make ``event`` durable in this process's file: returns once the kernel has it.
        Raises OSError (disk full, folder gone) or ValueError (an event over MAX_LINE)."""
        line = compact_json.dumps(event) + b"\n"
        if len(line) > MAX_LINE:
            raise ValueError(f"an audit event of {len(line)} bytes is too large to spool")
        if self._pid != os.getpid():
            self._after_fork()
        with self._append_lock:
            current = self._current
            if current is None or current.written >= ROTATE_BYTES:
                current = self._begin_file()
            try:
                _write_all(current.fd, line)
                if self.fsync:
                    os.fdatasync(current.fd)
            except OSError:
                # maybe half a line: nothing more goes into this file (its flush drops the tail)
                self._retired.append(current)
                self._current = None
                raise
            current.written += len(line)
        if self._thread is None and not self._stopping:
            self._start_thread()

    def _begin_file(self) -> _File:
        """A new locked file under a unique name; the full one (if any) is retired, still
        locked, for the flusher to finish and delete."""
        if self._current is not None:
            self._retired.append(self._current)
            self._current = None
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{_HOST}-{os.getpid()}-{secrets.token_hex(6)}{SUFFIX}"
        hidden = self.folder / f".{name}.tmp"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(hidden, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # before the name is visible: never an orphan
            os.rename(hidden, self.folder / name)
            if self.fsync:
                _sync_folder(self.folder)
        except OSError:
            os.close(fd)
            hidden.unlink(missing_ok=True)
            raise
        self._current = _File(name, fd)
        return self._current

    # --- flushing ------------------------------------------------------------------------

    def pending(self) -> bool:
        """Whether this process has spooled events not yet ingested (no I/O)."""
        if self._pid != os.getpid():
            return False
        return bool(self._retired) or (
            self._current is not None and self._current.ingested < self._current.written
        )

    def files(self) -> list[Path]:
        """Every spool file in the folder (this process's, other live ones', orphans)."""
        try:
            return sorted(p for p in self.folder.iterdir() if p.name.endswith(SUFFIX))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def flush(self, *, orphans: bool = True) -> int:
        """Ingest this process's spooled events now (and orphaned files, with ``orphans``);
        returns how many events this call committed."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._flush_lock, self._app_context():
            was_closed = database.is_closed()  # peewee connects at the first query, if any
            try:
                count = self._flush_own()
                if orphans:
                    self._next_scan = time.monotonic() + ORPHAN_SCAN_SECONDS
                    count += self._recover_orphans()
                return count
            finally:
                if was_closed and not database.is_closed():
                    database.close()

    def _app_context(self):
        """The app's context, unless already in it (a new one would close the caller's
        connection when it ends)."""
        if has_app_context() and current_app._get_current_object() is self.app:
            return contextlib.nullcontext()
        return self.app.app_context()

    def _flush_own(self) -> int:
        with self._append_lock:
            current = self._current
            files = [(f, f.written, f is not current) for f in [*self._retired, current] if f]
        count = 0
        for spool_file, written, retired in files:
            if spool_file.ingested < written or retired:
                # A live file up to where it was: lines appended meanwhile wait for the next
                # flush (chasing them made a busy worker commit every few requests).
                events, spool_file.ingested, done = self._ingest(
                    spool_file.name, spool_file.fd, spool_file.ingested, final=retired,
                    until=None if retired else written,
                )  # fmt: skip
                count += events
                if retired and done:
                    self._discard(spool_file.name, self.folder / spool_file.name)
                    os.close(spool_file.fd)
                    with self._append_lock:
                        self._retired = [f for f in self._retired if f is not spool_file]
        return count

    def _recover_orphans(self) -> int:
        own = {f.name for f in [*self._retired, self._current] if f}
        try:
            entries = list(os.scandir(self.folder))
        except (FileNotFoundError, NotADirectoryError):
            return 0
        count = 0
        for entry in entries:
            if entry.name in own:
                continue
            if entry.name.endswith(SUFFIX) and not entry.name.startswith("."):
                count += self._recover(entry.path, entry.name)
            elif entry.name.startswith(".") and entry.name.endswith(".tmp"):
                _remove_stale(entry.path)
        return count

    def _recover(self, path: str, name: str) -> int:
        """Ingest and delete ``path`` if nobody holds it (its owner died or retired it)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0  # ingested and deleted meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # its owner is alive
            if not _same_file(fd, path):
                return 0  # whoever held it finished and deleted it before we got the lock
            events, _, done = self._ingest(name, fd, None, final=True)
            if done:
                self._discard(name, path)
            return events
        finally:
            os.close(fd)

    def _ingest(
        self, name: str, fd: int, start: int | None, *, final: bool, until: int | None = None
    ):
        """Move the complete lines of spool ``name`` from byte ``start`` (None: from the
        progress row) to ``until`` (None: its end) into the database, a batch per transaction;
        the caller holds the file's lock. Returns (events committed, bytes ingested, whether
        all complete lines are in)."""
        offset = progress(name) if start is None else start
        events = 0
        while True:
            size = BATCH_BYTES if until is None else min(BATCH_BYTES, until - offset)
            if size <= 0:
                return events, offset, True
            data = os.pread(fd, size, offset)
            end = data.rfind(b"\n") + 1
            if end == 0:
                if data and final:
                    log.warning(
                        "audit spool %s: dropping an incomplete last line of %d bytes "
                        "(its writer stopped in the middle of it)", name, len(data)
                    )  # fmt: skip
                return events, offset, True
            if events:  # between two batches: the requests' writers get the lock meanwhile
                time.sleep(BATCH_PAUSE)
            rows = parse(name, data[:end])
            moved = commit(name, offset, offset + end, rows)
            if moved is not None:  # another flusher got here first (no lock held in common?)
                if moved < offset:
                    log.error(
                        "audit spool %s: the progress row says %s bytes, this process had "
                        "ingested %d; leaving the file alone", name, moved, offset
                    )  # fmt: skip
                    return events, offset, False
                offset = moved
                continue
            offset += end
            events += len(rows)
            try:
                self.on_committed(rows)
            except Exception:  # committed all the same; observers never stop the flusher
                log.exception("audit spool: telling observers of committed events failed")

    @staticmethod
    def _discard(name: str, path) -> None:
        """Delete a fully ingested file (its lock still held), then its progress row: a crash
        in between leaves a row without a file, harmless; the other order would not be."""
        Path(path).unlink(missing_ok=True)
        AuditSpoolProgress.delete().where(AuditSpoolProgress.spool == name).execute()

    # --- the flusher thread and the end ----------------------------------------------------

    def _start_thread(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(
                    target=self._run, name="portcullis-audit-spool", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            if self._stopping:
                return
            scan = time.monotonic() >= self._next_scan
            if not (scan or self.pending()):
                continue
            try:
                self.flush(orphans=scan)
            except Exception:  # the database away for a moment: the events wait in the file
                log.exception("audit spool: flush failed; the events stay spooled")

    def close(self) -> None:
        """Stop the flusher, ingest and delete this process's files (at exit; tests)."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        if self._pid != os.getpid():
            return
        with self._append_lock:
            if self._current is not None:
                self._retired.append(self._current)
                self._current = None
        if self._retired:
            self.flush(orphans=False)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _same_file(fd: int, path: str) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _remove_stale(path: str) -> None:
    """A hidden file its creator never renamed (it died before it wrote anything)."""
    try:
        if time.time() - os.stat(path).st_mtime <= STALE_TMP_SECONDS:
            return
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _same_file(fd, path):
            os.unlink(path)
    except BlockingIOError:
        pass
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _after_fork_in_child() -> None:
    for spool in list(_SPOOLS):
        spool._after_fork()


def _at_exit() -> None:
    for spool in list(_SPOOLS):
        try:
            spool.close()
        except Exception:  # the next start-up recovers what is left
            log.exception("audit spool: flush at exit failed; the next start-up ingests it")


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
