"""THE proof of issue 13's "the audit record off the request path without losing it": a real
gunicorn (2 gthread workers) issues client-credentials tokens over HTTP, one worker's spool
is half ingested (the management API's audit list flushes the worker that serves it), and
then the master and every worker are killed with SIGKILL (no atexit, no flush). A new server
on the same instance folder and database recovers the spools: every token a client received
has exactly one ``token.issued`` event (by its ``jti``), none twice. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
import requests

from oauth.registry import client_grants, clients, management_api
from oauth.storage import audit_spool
from tests.live import built_app, fresh_database, serve
from tests.m2m_helpers import API, setup_m2m

ISSUER = "http://portcullis.test"  # fixed, so the management API's audience is known up front
SETTINGS = {
    "ISSUER": ISSUER,
    "MANAGEMENT_API": True,
    "CLIENT_AUTH_RATE_LIMIT": "100000 per minute",
    "AUDIT_SPOOL_FLUSH_SECONDS": 3600,  # the flushers sleep: only the audit list flushes
}
THREADED = ("-k", "gthread", "--threads", "4")


def jti_of(access_token: str) -> str:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def issued_jtis(url: str) -> list[str]:
    """The jti of every client-credentials token.issued row, read with a plain connection
    (an app would recover the spools itself on start-up)."""
    sql = "SELECT details FROM audit_event WHERE event_type = 'token.issued'"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            found = [row[0] for row in conn.execute(sql)]
        conn.close()
    else:
        with psycopg.connect(url) as conn:
            found = [row[0] for row in conn.execute(sql)]
    return [json.loads(details)["jti"] for details in found]


def server_pids(port: int) -> tuple[int, list[int]]:
    """The gunicorn master serving ``port`` (a child of this process) and its workers."""
    mine, master, workers = os.getpid(), None, []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if f"127.0.0.1:{port}".encode() in cmdline and b"gunicorn" in cmdline:
            if ppid == mine:
                master = int(entry.name)
            else:
                workers.append((ppid, int(entry.name)))
    assert master is not None
    return master, [pid for ppid, pid in workers if ppid == master]


def kill_everything(port: int) -> None:
    """SIGSTOP the master (it must not replace its workers), SIGKILL the workers, then it."""
    master, workers = server_pids(port)
    assert len(workers) == 2
    os.kill(master, signal.SIGSTOP)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    os.kill(master, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)  # zombies of a dead parent are reaped by init


def token(session: requests.Session, base: str, client_id: str, secret: str, **data) -> str:
    response = session.post(
        base + "/oauth/token",
        data={"grant_type": "client_credentials", **data},
        auth=(client_id, secret),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def many_tokens(base: str, client_id: str, secret: str, count: int) -> list[str]:
    def one(_):
        with requests.Session() as session:
            return jti_of(token(session, base, client_id, secret, audience=API))

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_of_every_process_loses_no_event_of_a_token_a_client_received(
    kind, tmp_path, request
):
    secret_key = secrets.token_hex(16)
    with fresh_database(kind, tmp_path, request) as url:
        with built_app(url, secret_key, tmp_path, ISSUER=ISSUER) as app:
            client_id, secret = setup_m2m(app)
            with app.app_context():
                reader, reader_secret = clients.create_client(
                    "Auditor", [], grant_types=["client_credentials"]
                )
                client_grants.grant(reader, management_api.ensure(), ["audit:read"])
        received: list[str] = []
        with serve(
            url, tmp_path, workers=2, gunicorn_args=THREADED, SECRET_KEY=secret_key, **SETTINGS
        ) as base:
            port = int(base.rsplit(":", 1)[1])
            received += many_tokens(base, client_id, secret, 60)
            with requests.Session() as session:
                bearer = token(session, base, reader.client_id, reader_secret,
                               audience=f"{ISSUER}/api/v1", scope="audit:read")  # fmt: skip
                received.append(jti_of(bearer))
                listed = session.get(
                    base + "/api/v1/audit-events",
                    params={"event_type": "token.issued", "limit": 100},
                    headers={"Authorization": f"Bearer {bearer}"},
                    timeout=30,
                )
            assert listed.status_code == 200, listed.text
            received += many_tokens(base, client_id, secret, 60)
            kill_everything(port)

        stored = issued_jtis(url)
        assert 0 < len(stored) < len(received)  # one worker's spool in, the rest only spooled
        assert len(set(stored)) == len(stored) and set(stored) <= set(received)
        folder = tmp_path / "instance" / audit_spool.FOLDER
        assert (
            1 <= len(list(folder.glob("*" + audit_spool.SUFFIX))) <= 2
        )  # one per worker that spooled

        with serve(url, tmp_path, workers=2, SECRET_KEY=secret_key, **SETTINGS):
            deadline = time.monotonic() + 60
            while len(issued_jtis(url)) < len(received) and time.monotonic() < deadline:
                time.sleep(0.1)  # each new worker recovers what it can lock before it serves
        stored = issued_jtis(url)
        assert sorted(stored) == sorted(received)  # each token exactly once
        assert len(set(received)) == len(received) == 121
        assert list(folder.glob("*" + audit_spool.SUFFIX)) == []  # ingested, so deleted
