"""The built-in HTTP hook against hostile or slow servers (issue 9 item 8), over real sockets:
one deadline for the whole call, no redirects followed, and no database lock held while it
runs (another writer gets through during a slow hook, on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import peewee
import psycopg
import pytest
import requests

from oauth.plugins.builtin import http_hook
from oauth.security import sha256_hex
from oauth.storage.models import AuthorizationRequest, OAuthSession, RefreshToken
from tests.conftest import LiveServer, csrf_token_from
from tests.oauth_helpers import Flow, make_client

GENEROUS = 2.0  # seconds beyond a deadline that still count as "about the deadline"


class Dribbler:
    """A raw TCP server that answers one byte per second, in the headers or in the body."""

    def __init__(self, *, in_headers: bool = False) -> None:
        self.in_headers = in_headers
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            if self.in_headers:
                head, body = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 60, b""
            else:
                head, body = b"HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\n", b"x" * 60
            try:
                conn.sendall(head[:20])
                for byte in head[20:] + body:
                    if self.stop.wait(1.0):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


class Recorder:
    """An HTTP server that records each POST and answers with ``answer(handler)``."""

    def __init__(self, answer) -> None:
        self.posts: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.posts.append(self.rfile.read(int(self.headers["content-length"])))
                answer(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_json(handler, payload: dict, status: int = 200) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def user_flow(app) -> Flow:
    client_id, secret = make_client(app)
    flow = Flow(app, app.test_client(), client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    return flow


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_the_timeout_bounds_the_whole_call(make_app, in_headers):
    dribbler = Dribbler(in_headers=in_headers)
    deadline = 1.5
    try:
        app = make_app(HTTP_HOOK_URL=dribbler.url, HTTP_HOOK_TIMEOUT=deadline)
        flow = user_flow(app)
        code, _ = flow.get_code()
        started = time.monotonic()
        response = flow.exchange(code)
        elapsed = time.monotonic() - started
        assert (response.status_code, response.get_json()["error"]) == (500, "server_error")
        assert elapsed < deadline + GENEROUS, f"the hook call took {elapsed:.1f} s"
        with app.app_context():
            assert AuthorizationRequest.get().status == "approved"  # nothing consumed
        # the same bound holds for the hook's own client, and it says why it failed
        started = time.monotonic()
        with pytest.raises(http_hook.HttpHookError, match="timed out"):
            http_hook.post(dribbler.url, b"{}", {"content-type": "application/json"}, deadline)
        assert time.monotonic() - started < deadline + GENEROUS
    finally:
        dribbler.close()


def test_a_redirect_is_a_failure_and_the_payload_goes_nowhere_else(make_app):
    elsewhere = Recorder(lambda handler: send_json(handler, {"claims": {"stolen": True}}))

    def redirect(handler):
        handler.send_response(307)  # 307/308 would make a client re-POST the same body
        handler.send_header("location", elsewhere.url)
        handler.send_header("content-length", "0")
        handler.end_headers()

    hook = Recorder(redirect)
    try:
        app = make_app(HTTP_HOOK_URL=hook.url)
        flow = user_flow(app)
        code, _ = flow.get_code()
        response = flow.exchange(code)
        assert (response.status_code, response.get_json()["error"]) == (500, "server_error")
        assert len(hook.posts) == 1
        assert elsewhere.posts == []  # the signed user payload was never re-posted
        with app.app_context():
            assert AuthorizationRequest.get().status == "approved"
    finally:
        hook.close()
        elsewhere.close()


class Gate:
    """A hook that holds every call until released (at most ``limit`` seconds)."""

    def __init__(self, limit: float = 20.0) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.calls = 0

        def answer(handler):
            self.calls += 1
            self.arrived.set()
            self.release.wait(limit)
            send_json(handler, {"claims": {"gate": "passed"}})

        self.recorder = Recorder(answer)
        self.url = self.recorder.url

    def close(self) -> None:
        self.release.set()
        self.recorder.close()


def assert_no_write_lock(app, database_url: str, table: str, where: str, value) -> None:
    """Another connection can write-lock the database (SQLite) or lock the grant's row
    (PostgreSQL) at once: the token request holds no lock while its hook runs."""
    db = app.extensions["portcullis.database"]
    if isinstance(db, peewee.SqliteDatabase):
        other = sqlite3.connect(db.database, timeout=0.5)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if a writer holds it
            other.execute("ROLLBACK")
        finally:
            other.close()
        return
    with psycopg.connect(database_url, connect_timeout=3) as other:
        other.execute(f"SELECT 1 FROM {table} WHERE {where} = %s FOR UPDATE NOWAIT", (value,))
        other.rollback()


def sign_in_over_http(base_url: str, email: str, password: str) -> requests.Response:
    browser = requests.Session()
    page = browser.get(base_url + "/login", timeout=10)
    return browser.post(
        base_url + "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token_from(page.text)},
        allow_redirects=False,
        timeout=8,  # below SQLite's busy timeout: a held lock shows up as a failure here
    )


def run_during_slow_hook(server, gate, data, auth, during) -> requests.Response:
    """POST ``data`` to the token endpoint; while its hook is held, run ``during()``."""
    answer: dict = {}

    def request_token():
        answer["response"] = requests.post(
            server.url + "/oauth/token", data=data, auth=auth, timeout=60
        )

    thread = threading.Thread(target=request_token)
    thread.start()
    try:
        assert gate.arrived.wait(15), "the hook was never called"
        during()
    finally:
        gate.release.set()
        thread.join(60)
    return answer["response"]


def test_no_lock_is_held_while_the_hook_runs(make_app, database_url):
    gate = Gate()
    try:
        app = make_app(HTTP_HOOK_URL=gate.url, HTTP_HOOK_TIMEOUT=30)
        flow = user_flow(app)
        flow.auth.create_user("bob@example.com", "bob's password")
        with LiveServer(app) as server:
            code, _ = flow.get_code()
            with app.app_context():
                row_id = AuthorizationRequest.get().id

            def meanwhile():
                started = time.monotonic()
                assert_no_write_lock(app, database_url, "authorization_request", "id", row_id)
                signed_in = sign_in_over_http(server.url, "bob@example.com", "bob's password")
                assert signed_in.status_code == 302, signed_in.text[:300]
                assert time.monotonic() - started < 8  # it did not wait for the hook
                assert not gate.release.is_set()  # the hook was still running

            exchange = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": flow.redirect_uri,
                "code_verifier": flow.verifier,
            }
            auth = (flow.client_id, flow.secret)
            response = run_during_slow_hook(server, gate, exchange, auth, meanwhile)
            assert response.status_code == 200, response.text
            tokens = response.json()

            # the refresh grant too
            gate.arrived.clear()
            gate.release.clear()
            with app.app_context():
                token_id = RefreshToken.get(
                    RefreshToken.token_hash == sha256_hex(tokens["refresh_token"])
                ).id
            refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            response = run_during_slow_hook(
                server,
                gate,
                refresh,
                auth,
                lambda: assert_no_write_lock(app, database_url, "refresh_token", "id", token_id),
            )
            assert response.status_code == 200, response.text
            assert response.json()["refresh_token"] != tokens["refresh_token"]
    finally:
        gate.close()


def concurrently(server, gate, data, auth, count=2) -> list[requests.Response]:
    """``count`` identical token requests, all inside their hook before any may go on."""
    answers: list[requests.Response] = []

    def request_token():
        answers.append(requests.post(server.url + "/oauth/token", data=data, auth=auth, timeout=60))

    threads = [threading.Thread(target=request_token) for _ in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 15
    while gate.calls < count and time.monotonic() < deadline:
        time.sleep(0.05)
    gate.release.set()
    for thread in threads:
        thread.join(60)
    assert gate.calls == count
    return answers


def test_a_code_redeemed_concurrently_is_still_single_use(make_app):
    gate = Gate()
    try:
        app = make_app(HTTP_HOOK_URL=gate.url, HTTP_HOOK_TIMEOUT=30)
        flow = user_flow(app)
        with LiveServer(app) as server:
            code, _ = flow.get_code()
            exchange = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": flow.redirect_uri,
                "code_verifier": flow.verifier,
            }
            answers = concurrently(server, gate, exchange, (flow.client_id, flow.secret))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 400]
        loser = next(answer for answer in answers if answer.status_code == 400)
        assert loser.json()["error"] == "invalid_grant"
        with app.app_context():
            # the replay revoked what the winner got, as a later replay would
            assert OAuthSession.select().count() == 1
            assert OAuthSession.get().revoked_reason == "code_replay"
            assert RefreshToken.select().count() == 0
    finally:
        gate.close()


def test_a_refresh_token_rotated_concurrently_gives_one_successor(make_app):
    gate = Gate()
    try:
        app = make_app(HTTP_HOOK_URL=gate.url, HTTP_HOOK_TIMEOUT=30)
        flow = user_flow(app)
        gate.release.set()
        first = flow.tokens()
        gate.release.clear()
        gate.calls = 0
        with LiveServer(app) as server:
            data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
            answers = concurrently(server, gate, data, (flow.client_id, flow.secret), count=3)
        assert [answer.status_code for answer in answers] == [200] * 3
        assert len({answer.json()["refresh_token"] for answer in answers}) == 1
        with app.app_context():
            assert RefreshToken.select().where(RefreshToken.rotated_at.is_null()).count() == 1
            assert OAuthSession.get().revoked_at is None
    finally:
        gate.close()
