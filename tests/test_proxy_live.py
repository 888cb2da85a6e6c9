"""A real proxy header chain (issue 12, "Reverse proxies"): gunicorn behind a small threaded
reverse proxy that terminates TLS (a throwaway CA), appends the peer it saw to
X-Forwarded-For and sets X-Forwarded-Proto/-Host, as nginx's ``proxy_add_x_forwarded_for``
does. Clients connect from their own loopback addresses (127.0.0.5, 127.0.0.6), the proxy
reaches gunicorn from 127.0.0.2, so every address in the chain is distinct."""

from __future__ import annotations

import http.client
import sqlite3
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import trustme
from requests.adapters import HTTPAdapter

from tests.live import csrf, serve

PROXY_ADDRESS = "127.0.0.2"  # where the proxy's connections to gunicorn come from
CLIENT_A, CLIENT_B = "127.0.0.5", "127.0.0.6"
SPOOFED = "203.0.113.9"
PASSWORD = "correct horse battery"
USERS = ("alice", "bob", "carol")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class Proxy:
    """HTTPS in front, plain HTTP to ``upstream`` (set once gunicorn is up)."""

    def __init__(self, ca: trustme.CA) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.upstream: tuple[str, int] | None = None
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                seen = self.client_address[0]
                prior = self.headers.get("X-Forwarded-For")
                headers["X-Forwarded-For"] = f"{prior}, {seen}" if prior else seen
                headers["X-Forwarded-Proto"] = "https"
                headers["X-Forwarded-Host"] = self.headers["Host"]
                upstream = http.client.HTTPConnection(
                    *proxy.upstream, timeout=30, source_address=(PROXY_ADDRESS, 0)
                )
                try:
                    upstream.request(self.command, self.path, body, headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():  # every Set-Cookie, in order
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = forward  # http.server's names

            def log_message(self, *args):
                pass

        return Handler


class FromAddress(HTTPAdapter):
    """requests over connections from one local address (one client machine)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def browser(address: str, ca_path: str) -> requests.Session:
    session = requests.Session()
    session.mount("https://", FromAddress(address))
    session.verify = ca_path
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies of the environment do not apply
    return session


def sign_in(session, base, email, password, *, forwarded=None, referrer="policy"):
    """One sign-in through the proxy. ``referrer="policy"`` sends what a browser sends under the
    page's Referrer-Policy (no Referer under no-referrer; the page itself under same-origin)."""
    page = session.get(base + "/login")
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    if referrer == "policy":
        referrer = None if page.headers["Referrer-Policy"] == "no-referrer" else page.url
    if referrer:
        headers["Referer"] = referrer
    form = {"email": email, "password": password, "csrf_token": csrf(page.text)}
    return session.post(base + "/login", data=form, headers=headers, allow_redirects=False)


def sign_up(base: str, email: str, ca_path: str) -> None:
    with browser("127.0.0.9", ca_path) as session:
        page = session.get(base + "/signup")
        form = {"email": email, "password": PASSWORD, "csrf_token": csrf(page.text)}
        headers = {"Referer": page.url}  # what a browser sends to its own origin
        answer = session.post(base + "/signup", data=form, headers=headers, allow_redirects=False)
        assert answer.status_code == 302


def audited_addresses(database, email: str) -> set[str]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT DISTINCT a.ip FROM audit_event a JOIN user u ON u.id = a.user_id "
            "WHERE a.event_type = 'login.failed' AND u.email = ?",
            (email,),
        ).fetchall()
    db.close()
    return {row[0] for row in rows}


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, str(path)


def stack(folder, ca, hops: int, workers: int):
    """A proxy in front of gunicorn (``PROXY_HOPS=hops``) on a SQLite database with users."""
    database = folder / "portcullis.db"
    url = f"sqlite:///{database}"
    proxy = Proxy(ca[0])
    settings = {"PROXY_HOPS": hops, "ISSUER": proxy.base, "LOGIN_RATE_LIMIT": "3 per minute"}
    try:
        with serve(url, folder, workers=workers, **settings) as direct:
            host, port = direct.removeprefix("http://").split(":")
            proxy.upstream = (host, int(port))
            for name in USERS:
                sign_up(proxy.base, f"{name}@example.com", ca[1])
            yield proxy.base, database
    finally:
        proxy.close()


@pytest.fixture(scope="module")
def one_hop(tmp_path_factory, ca):
    yield from stack(tmp_path_factory.mktemp("one-hop"), ca, hops=1, workers=2)


@pytest.fixture(scope="module")
def no_hops(tmp_path_factory, ca):
    yield from stack(tmp_path_factory.mktemp("no-hops"), ca, hops=0, workers=1)


def test_limits_and_audit_see_the_address_the_proxy_saw(one_hop, ca):
    base, database = one_hop
    a, b = browser(CLIENT_A, ca[1]), browser(CLIENT_B, ca[1])
    # A changes its X-Forwarded-For on every guess: only the proxy's own entry is believed.
    guesses = [f"198.51.100.{n}" for n in range(4)]
    codes = [
        sign_in(a, base, "alice@example.com", "guess", forwarded=g).status_code for g in guesses
    ]
    assert codes == [200, 200, 200, 429]
    assert sign_in(b, base, "alice@example.com", "guess").status_code == 200  # counted apart
    assert audited_addresses(database, "alice@example.com") == {CLIENT_A, CLIENT_B}


def test_https_is_recognised_behind_the_proxy(one_hop, ca):
    base, _ = one_hop
    carol = browser(CLIENT_A, ca[1])
    # Flask-WTF checks the Referer of https form posts: an http one no longer matches.
    plain = base.replace("https://", "http://") + "/login"
    assert sign_in(carol, base, "carol@example.com", PASSWORD, referrer=plain).status_code == 400
    # What a browser sends under the page's Referrer-Policy signs in.
    answer = sign_in(carol, base, "carol@example.com", PASSWORD)
    assert answer.status_code == 302
    assert {cookie.name: cookie.secure for cookie in carol.cookies}["session"] is True
    assert carol.get(base + "/settings/profile", allow_redirects=False).status_code == 200


def test_without_proxy_hops_nothing_forwarded_is_believed(no_hops, ca):
    base, database = no_hops
    a, b = browser(CLIENT_A, ca[1]), browser(CLIENT_B, ca[1])
    codes = [
        sign_in(client, base, "bob@example.com", "guess", forwarded=SPOOFED).status_code
        for client in (a, b, a, b)
    ]
    assert codes == [200, 200, 200, 429]  # every client behind the proxy is one address
    assert audited_addresses(database, "bob@example.com") == {PROXY_ADDRESS}
    # X-Forwarded-Proto is not believed either: the request is plain http to the app, so an
    # http Referer is fine, and the Referer check of https posts does not apply.
    plain = base.replace("https://", "http://") + "/login"
    assert sign_in(b, base, "carol@example.com", PASSWORD, referrer=plain).status_code == 302
