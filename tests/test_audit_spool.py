"""The audit spool (issue 13) on real SQLite files and a real PostgreSQL database: spooled
events reach audit_event exactly once, with their details and actor, on_event hears of each
once after its batch commits, torn lines wait or are dropped, files of dead processes are
recovered (and those of live ones left alone), racing flushers never duplicate a line."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from oauth import audit
from oauth.storage import audit_ingest, audit_spool
from oauth.storage.audit_ingest import AuditSpoolProgress
from oauth.storage.db import database
from oauth.storage.models import AuditEvent
from tests.live import built_app

IDLE = {"AUDIT_SPOOL_FLUSH_SECONDS": 3600}  # the flusher thread stays asleep: tests flush


def spool_of(app) -> audit_spool.Spool:
    return app.extensions[audit.SPOOL]


def spool_files(app) -> list[Path]:
    return sorted(spool_of(app).folder.glob("*" + audit_spool.SUFFIX))


def rows(app, event_type=None) -> list[AuditEvent]:
    with app.app_context():
        query = AuditEvent.select().order_by(AuditEvent.id)
        if event_type:
            query = query.where(AuditEvent.event_type == event_type)
        return list(query)


def flush(app) -> int:
    with app.app_context():
        return audit.flush_spool()


def spool_line(event_type: str, n: int) -> bytes:
    event = {"created_at": "2026-01-02T03:04:05.123456", "event_type": event_type,
             "user_id": None, "client_id": "c", "ip": None, "details": {"n": n}}  # fmt: skip
    return json.dumps(event).encode() + b"\n"


def orphan(app, name: str, data: bytes) -> Path:
    """A spool file as a dead process leaves it: named like one, nobody holding its lock."""
    folder = spool_of(app).folder
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def test_spooled_events_reach_the_table_once_with_details_and_actor(make_app):
    app = make_app(**IDLE)
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        audit.record_soon("token.issued", client_id="svc", grant_type="client_credentials")
        audit.act_as_client("automation")
        audit.record_soon("thing.done", user_id="u1", ip="198.51.100.1", size=3)
    assert rows(app) == []  # nothing in the database yet: only the spool file
    (path,) = spool_files(app)
    assert path.stat().st_mode & 0o777 == 0o600
    assert spool_of(app).folder.stat().st_mode & 0o777 == 0o700
    assert [json.loads(line)["event_type"] for line in path.read_bytes().splitlines()] == [
        "token.issued",
        "thing.done",
    ]
    assert flush(app) == 2
    assert flush(app) == 0  # exactly once
    issued, done = rows(app)
    assert (issued.event_type, issued.client_id, issued.ip) == (
        "token.issued",
        "svc",
        "203.0.113.9",
    )
    assert issued.details == {"grant_type": "client_credentials"}
    assert (done.user_id, done.ip) == ("u1", "198.51.100.1")
    assert done.details == {"size": 3, "actor_type": "client", "actor_client_id": "automation"}
    assert issued.created_at <= done.created_at
    with app.app_context():
        (progress,) = AuditSpoolProgress.select()
    assert (progress.spool, progress.ingested) == (path.name, path.stat().st_size)


def test_any_text_an_event_holds_comes_back_from_the_spool_as_it_went_in(make_app):
    """Lines are UTF-8 JSON now (``compact_json``); text that has no UTF-8 form (a lone
    surrogate, which a JSON request body can carry) is escaped, never an error."""
    app = make_app(**IDLE)
    texts = ["Zoë Ångström", "snow \u2603 line\u2028sep", "\ud800 alone", 'quote " \\ \n']
    with app.test_request_context("/"):
        for text in texts:
            audit.record_soon("thing.named", name=text)
    assert flush(app) == len(texts)
    assert [row.details["name"] for row in rows(app, "thing.named")] == texts


def test_the_flusher_thread_moves_events_without_being_asked(make_app):
    app = make_app(AUDIT_SPOOL_FLUSH_SECONDS=0.05)
    with app.app_context():
        audit.record_soon("token.issued", client_id="svc")
    deadline = time.monotonic() + 30
    while not rows(app) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.client_id for r in rows(app)] == ["svc"]


def test_on_event_hears_of_each_spooled_event_once_after_it_commits(make_app, plugin_dir, tmp_path):
    heard = tmp_path / "heard.jsonl"
    (plugin_dir / "observer.py").write_text(
        textwrap.dedent(f"""
        import json
        from oauth import hookimpl
        from oauth.storage.db import database
        from oauth.storage.models import AuditEvent

        @hookimpl
        def on_event(event):
            stored = AuditEvent.select().where(AuditEvent.event_type == event["type"]).count()
            with open({str(heard)!r}, "a") as f:
                f.write(json.dumps([event, database.in_transaction(), stored]) + "\\n")
        """)
    )
    app = make_app(PLUGINS_DIR=str(plugin_dir), **IDLE)
    with app.app_context():
        for n in range(3):
            audit.record_soon("token.issued", client_id="svc", ip="192.0.2.1", n=n)
    assert not heard.exists()  # not before it is in the table
    assert flush(app) == 3
    assert flush(app) == 0
    lines = [json.loads(line) for line in heard.read_text().splitlines()]
    assert [event["details"]["n"] for event, _, _ in lines] == [0, 1, 2]
    assert all(not in_transaction and stored == 3 for _, in_transaction, stored in lines)
    event = lines[0][0]
    assert (event["type"], event["client_id"], event["ip"]) == ("token.issued", "svc", "192.0.2.1")
    assert event["created_at"].endswith("Z")


def test_a_torn_last_line_waits_until_it_is_complete(make_app):
    app = make_app(**IDLE)
    with app.app_context():
        audit.record_soon("first", client_id="svc")
    current = spool_of(app)._current
    line = spool_line("second", 2)
    os.write(current.fd, line[:10])  # a write still under way, as a reader may see it
    assert flush(app) == 1
    os.write(current.fd, line[10:])
    current.written += len(line)
    assert flush(app) == 1
    assert [r.event_type for r in rows(app)] == ["first", "second"]


def test_a_dead_processs_file_is_ingested_complete_lines_only_and_deleted(make_app, caplog):
    app = make_app(**IDLE)
    torn = spool_line("lost", 9)[:25]
    path = orphan(app, "elsewhere-1-dead.jsonl", spool_line("a", 1) + spool_line("b", 2) + torn)
    assert flush(app) == 2
    assert [r.event_type for r in rows(app)] == ["a", "b"]
    assert not path.exists()  # fully ingested, so deleted, and its progress row with it
    with app.app_context():
        assert AuditSpoolProgress.select().count() == 0
    assert "dropping an incomplete last line of 25 bytes" in caplog.text


def test_a_line_that_is_no_event_is_skipped_not_blocking_the_rest(make_app, caplog):
    app = make_app(**IDLE)
    bad = b'{"event_type": "x"}\n' + b"not json\n"
    too_long = spool_line("y" * 65, 0)  # would fail the column (64) for ever
    orphan(app, "h-2-bad.jsonl", bad + too_long + spool_line("good", 1))
    assert flush(app) == 1
    assert [r.event_type for r in rows(app)] == ["good"]
    assert caplog.text.count("is no event; skipped") == 3


def test_start_up_recovers_what_a_dead_process_left_and_only_the_rest(make_app, tmp_path):
    """A file half ingested before its process died: the progress row says how far."""
    first = make_app(**IDLE)
    lines = [spool_line("e", n) for n in range(5)]
    path = orphan(first, "h-3-half.jsonl", b"".join(lines))
    with first.app_context():
        AuditSpoolProgress.create(spool=path.name, ingested=len(lines[0]) + len(lines[1]))
    make_app(**IDLE)  # a worker starting: it recovers orphans before it serves
    assert [r.details["n"] for r in rows(first)] == [2, 3, 4]
    assert not path.exists()


def test_a_live_owners_file_is_left_alone_until_it_dies(make_app, tmp_path):
    app = make_app(**IDLE)
    path = orphan(app, "h-4-alive.jsonl", spool_line("held", 1))
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys, time
            fd = os.open({str(path)!r}, os.O_RDWR)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert flush(app) == 0 and path.exists()
    finally:
        holder.kill()  # SIGKILL: the kernel releases its lock
        holder.wait()
        holder.stdout.close()
    assert flush(app) == 1
    assert [r.event_type for r in rows(app)] == ["held"] and not path.exists()


def test_racing_flushers_never_ingest_a_line_twice(make_app):
    """Two workers (apps) scanning the same folder at once: each file goes to one of them."""
    one, two = make_app(**IDLE), make_app(**IDLE)
    for f in range(8):
        orphan(one, f"h-5-{f}.jsonl", b"".join(spool_line("race", f * 100 + n) for n in range(60)))
    counts, errors = [], []

    def run(app):
        try:
            counts.append(sum(flush(app) for _ in range(3)))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(app,)) for app in (one, two, one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = [r.details["n"] for r in rows(one)]
    assert sorted(numbers) == sorted(f * 100 + n for f in range(8) for n in range(60))
    assert sum(counts) == 480 and spool_files(one) == []


def test_flushers_without_a_common_lock_are_stopped_by_the_progress_row(make_app):
    """Should the file locks not be shared (hosts on a file system without working flock),
    the progress row, checked in the transaction, still lets one batch in, never two."""
    one, two = make_app(**IDLE), make_app(**IDLE)
    path = orphan(one, "h-6-nolock.jsonl", b"".join(spool_line("x", n) for n in range(50)))
    results, barrier = [], threading.Barrier(2)

    def ingest(app):
        fd = os.open(path, os.O_RDONLY)  # no flock taken: only the database decides
        try:
            with app.app_context():
                barrier.wait()
                results.append(spool_of(app)._ingest(path.name, fd, 0, final=True))
        finally:
            os.close(fd)  # the app context's end gave its connection back

    threads = [threading.Thread(target=ingest, args=(app,)) for app in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(events for events, _, _ in results) == [0, 50]
    assert sorted(r.details["n"] for r in rows(one)) == list(range(50))


def test_commit_refuses_a_batch_the_progress_row_has_passed(make_app):
    app = make_app(**IDLE)
    batch = [json.loads(spool_line("x", 1))]
    with app.app_context():
        assert audit_ingest.commit("h-7", 0, 100, batch) is None
        assert audit_ingest.commit("h-7", 0, 100, batch) == 100  # a rival did it: nothing written
        assert audit_ingest.commit("h-7", 100, 150, batch) is None
    assert len(rows(app)) == 2


def test_a_full_file_is_retired_and_deleted_once_ingested(make_app, monkeypatch):
    monkeypatch.setattr(audit_spool, "ROTATE_BYTES", 600)
    app = make_app(**IDLE)
    with app.app_context():
        for n in range(12):
            audit.record_soon("rotating", client_id="svc", n=n)
    assert len(spool_files(app)) > 2
    assert flush(app) == 12
    assert len(spool_files(app)) == 1  # only the file still being written
    assert [r.details["n"] for r in rows(app)] == list(range(12))


def test_a_flush_ingests_the_backlog_it_found_not_what_arrives_while_it_runs(make_app, monkeypatch):
    """A flusher that chased new lines committed a tiny batch every few requests of a busy
    worker (a transaction, and on PostgreSQL a disk sync, each) instead of one per interval."""
    monkeypatch.setattr(audit_spool, "BATCH_BYTES", 400)  # a backlog of several batches
    app = make_app(**IDLE)
    spool = spool_of(app)
    with app.app_context():
        for n in range(6):
            audit.record_soon("backlog", client_id="svc", n=n)
    batches, told = [], spool.on_committed

    def and_a_request_meanwhile(committed: list[dict]) -> None:
        told(committed)
        batches.append(len(committed))
        if len(batches) < 20:  # a chasing flusher would otherwise never stop
            spool.append(json.loads(spool_line("meanwhile", len(batches))))

    spool.on_committed = and_a_request_meanwhile
    assert flush(app) == 6  # the whole backlog, batch after batch...
    assert len(batches) >= 2 and sum(batches) == 6
    assert spool.pending()  # ...but the lines that came meanwhile wait for the next flush
    assert [r.details["n"] for r in rows(app)] == list(range(6))
    spool.on_committed = told
    assert flush(app) == len(batches)
    assert [r.event_type for r in rows(app)][6:] == ["meanwhile"] * len(batches)
    assert not spool.pending()


def test_the_flusher_pauses_between_batches_only(make_app, monkeypatch):
    """The pause lets requests write between two of the flusher's transactions; after the
    last batch there is nobody to let in, and a flush that paused there ended later."""
    monkeypatch.setattr(audit_spool, "BATCH_BYTES", 400)
    app = make_app(**IDLE)
    with app.app_context():
        for n in range(6):
            audit.record_soon("backlog", client_id="svc", n=n)
    commits, pauses = [], []
    told = spool_of(app).on_committed
    spool_of(app).on_committed = lambda rows: (commits.append(len(rows)), told(rows))
    clock = SimpleNamespace(  # this module's clock only: other threads keep time.sleep
        monotonic=time.monotonic, time=time.time, sleep=lambda _: pauses.append(len(commits))
    )
    monkeypatch.setattr(audit_spool, "time", clock)
    assert flush(app) == 6
    assert len(commits) >= 2
    assert pauses == list(range(1, len(commits)))  # after each batch but the last


def test_a_forked_child_spools_to_its_own_file_and_leaves_the_parents_lock(make_app):
    app = make_app(**IDLE)
    with app.app_context():
        audit.record_soon("parent", client_id="svc")
        parent_file = spool_of(app).folder / spool_of(app)._current.name
        pid = os.fork()
        if pid == 0:  # the child: spools one event and dies without any clean-up
            try:
                audit.record_soon("child", client_id="svc")
            finally:
                os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    fd = os.open(parent_file, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):  # the child closed its copy: still the parent's
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    assert len(spool_files(app)) == 2
    assert flush(app) == 2  # its own, and the dead child's
    assert sorted(r.event_type for r in rows(app)) == ["child", "parent"]
    assert spool_files(app) == [parent_file]


def test_without_a_usable_spool_the_event_goes_to_the_database_at_once(make_app):
    app = make_app(**IDLE)
    folder = spool_of(app).folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("a file where the folder should be")
    with app.app_context():
        audit.record_soon("token.issued", client_id="svc", jti="j1")
    assert [(r.event_type, r.details) for r in rows(app)] == [("token.issued", {"jti": "j1"})]


def test_a_normal_exit_flushes_and_removes_the_processs_file(database_url, tmp_path):
    """atexit: a process that ends normally leaves its events in the table, no file behind."""
    script = textwrap.dedent(f"""
        from app import create_app
        from oauth import audit
        app = create_app({{"DATABASE_URL": {database_url!r}, "SECRET_KEY": "k" * 32,
                          "AUDIT_SPOOL_FLUSH_SECONDS": 3600, "MANAGEMENT_API": False}})
        with app.app_context():
            audit.record_soon("at.exit", client_id="svc")
    """)
    env = {**os.environ, "PORTCULLIS_INSTANCE_PATH": str(tmp_path / "instance")}
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", script], cwd=root, env=env, check=True, timeout=120)
    assert list((tmp_path / "instance" / audit_spool.FOLDER).iterdir()) == []
    with built_app(database_url, "k" * 32, tmp_path, AUDIT_SPOOL_FLUSH_SECONDS=3600) as reader:
        assert [r.client_id for r in rows(reader, "at.exit")] == ["svc"]


def test_flask_audit_flush_moves_what_stopped_processes_left(make_app):
    app = make_app(**IDLE)
    orphan(app, "h-8-cli.jsonl", spool_line("a", 1) + spool_line("b", 2))
    with app.app_context():
        audit.record_soon("mine", client_id="svc")  # this process's own file: flushed too
    result = app.test_cli_runner().invoke(args=["audit", "flush"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Moved 3 spooled audit events into the database; 1 spool file held by running processes."
    )
    assert sorted(r.event_type for r in rows(app)) == ["a", "b", "mine"]


def test_a_reader_flushing_keeps_its_own_connection(make_app):
    """flush_spool in a request (the audit page) uses the request's connection, and leaves it
    open: a context of its own would close it when it ended."""
    app = make_app(**IDLE)
    with app.app_context():
        database.connect(reuse_if_open=True)
        audit.record_soon("seen", client_id="svc")
        assert audit.flush_spool() == 1
        assert not database.is_closed()
        assert AuditEvent.select().where(AuditEvent.event_type == "seen").count() == 1
