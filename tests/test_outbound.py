"""oauth.outbound, the one outbound HTTP client, against real local servers (plain and TLS):
one total deadline (a dribbling peer, a silent one, a slow connect, a hanging resolver), bounded
answers, redirects returned as statuses, addresses checked and pinned."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
import trustme

from oauth import outbound

BOUND = 1.5  # seconds beyond a deadline that still count as "cut off at the deadline"
TEST_NAME = "portcullis-outbound.test"  # resolved by the tests' own getaddrinfo below


class Peer:
    """A raw TCP (or TLS) server on loopback; ``answer(conn, request_bytes)`` writes the answer."""

    def __init__(self, answer, *, ca: trustme.CA | None = None, names=None) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tls = None
        if ca is not None:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            names = names or ("127.0.0.1", "localhost", TEST_NAME)
            ca.issue_cert(*names).configure_cert(self.tls)
        scheme = "https" if ca is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/path?q=1"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests.append(data)
            self.answer(self, conn, data)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def dribble(every: float = 0.02):
    """Answers a byte every ``every`` seconds, headers and body, for far longer than a deadline."""

    def answer(peer: Peer, conn: socket.socket, request: bytes) -> None:
        head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100 + b"\r\nContent-Length: 400\r\n\r\n"
        for byte in head + b"x" * 400:
            if peer.stop.wait(every):
                return
            conn.sendall(bytes([byte]))

    return answer


def respond(status: int = 200, body: bytes = b"ok", headers: dict | None = None):
    def answer(peer: Peer, conn: socket.socket, request: bytes) -> None:
        fields = {"Content-Length": str(len(body)), **(headers or {})}
        head = f"HTTP/1.1 {status} Whatever\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in fields.items()
        )
        conn.sendall(head.encode() + b"\r\n" + body)

    return answer


def silent(peer: Peer, conn: socket.socket, request: bytes) -> None:
    peer.stop.wait(30)


@pytest.fixture
def ca(tmp_path, monkeypatch) -> trustme.CA:
    """A throwaway CA the client trusts (SSL_CERT_FILE, read at each request)."""
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    return authority


def get(url: str, timeout: float = 1.0, **options) -> outbound.Response:
    options.setdefault("allow_private", True)
    options.setdefault("https_only", False)
    options.setdefault("max_bytes", 1 << 20)
    return outbound.request("GET", url, timeout=timeout, **options)


def assert_cut_off(url: str, deadline: float) -> None:
    started = time.monotonic()
    with pytest.raises(outbound.TimedOut, match="timed out"):
        get(url, timeout=deadline)
    elapsed = time.monotonic() - started
    assert elapsed < deadline + BOUND, f"a {deadline} s deadline took {elapsed:.1f} s"


def test_an_answer_arrives_whole_over_http_and_tls(ca):
    with Peer(respond(201, b'{"a": 1}', {"X-Thing": "yes"})) as plain:
        answer = outbound.request(
            "POST",
            plain.url,
            body=b"a=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=5,
            max_bytes=100,
            https_only=False,
            allow_private=True,
        )
        assert (answer.status, answer.body, answer.headers["X-Thing"]) == (201, b'{"a": 1}', "yes")
        sent = plain.requests[0]
        assert sent.startswith(b"POST /path?q=1 HTTP/1.1\r\n")
        assert f"Host: 127.0.0.1:{plain.port}\r\n".encode() in sent
    with Peer(respond(200, b"secure"), ca=ca) as secure:
        assert get(secure.url).body == b"secure"


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls"])
def test_a_peer_dribbling_a_byte_every_20_ms_is_cut_off_at_the_deadline(ca, tls):
    with Peer(dribble(), ca=ca if tls else None) as peer:
        assert_cut_off(peer.url, 1.0)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls"])
def test_a_peer_that_never_answers_is_cut_off(ca, tls):
    with Peer(silent, ca=ca if tls else None) as peer:
        assert_cut_off(peer.url, 1.0)


def test_a_tls_handshake_that_never_comes_is_cut_off(ca):
    with Peer(silent) as plain:  # speaks no TLS at all: the handshake waits for the peer
        assert_cut_off(plain.url.replace("http:", "https:"), 1.0)


def test_a_slow_connect_is_bounded():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: once its queue is full, Linux drops further SYNs
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        assert_cut_off(f"http://127.0.0.1:{port}/", 1.0)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_hanging_resolver_is_abandoned_at_the_deadline(monkeypatch):
    real = socket.getaddrinfo

    def hanging(host, *args, **kwargs):
        if host == TEST_NAME:
            time.sleep(10)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    assert_cut_off(f"http://{TEST_NAME}/", 1.0)


def test_oversize_answers_are_refused():
    with Peer(respond(200, b"x" * 5000)) as big:
        assert get(big.url, max_bytes=5000).body == b"x" * 5000
        with pytest.raises(outbound.TooLarge, match="larger than 4999 bytes"):
            get(big.url, max_bytes=4999)
    endless = "x" * (outbound.HEAD_BYTES + 10)
    huge_head = Peer(respond(200, b"", {"X-Endless": endless}))
    with huge_head, pytest.raises(outbound.TooLarge):
        get(huge_head.url, max_bytes=10)


def test_a_redirect_is_returned_as_a_status_and_never_followed(ca):
    with Peer(respond(200, b"elsewhere")) as elsewhere:
        moved = respond(307, b"", {"Location": elsewhere.url})
        with Peer(moved) as plain, Peer(moved, ca=ca) as secure:
            for peer in (plain, secure):
                answer = get(peer.url)
                assert (answer.status, answer.headers["Location"]) == (307, elsewhere.url)
        assert elsewhere.requests == []


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "localhost"])
def test_private_and_loopback_addresses_are_refused_unless_allowed(host):
    with Peer(respond(200, b"inside")) as peer:
        url = f"http://{host}:{peer.port}/"
        with pytest.raises(outbound.AddressRefused, match="refused"):
            get(url, allow_private=False)
        assert peer.requests == []
        if host in ("127.0.0.1", "localhost"):  # the peer listens on IPv4 loopback only
            assert get(url, allow_private=True).body == b"inside"


def test_unspecified_and_multicast_addresses_are_refused_even_when_private_is_allowed():
    for url in ("http://0.0.0.0:9/", "http://224.0.0.1:9/", "http://[::]:9/"):
        with pytest.raises(outbound.AddressRefused):
            get(url, allow_private=True)


def _fake_dns(monkeypatch, addresses: list[str]) -> list[str]:
    """TEST_NAME resolves to ``addresses``; returns the names looked up, in order."""
    real, lookups = socket.getaddrinfo, []

    def resolver(host, port, *args, **kwargs):
        lookups.append(host)
        if host != TEST_NAME:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    return lookups


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch):
    _fake_dns(monkeypatch, ["93.184.215.14", "10.0.0.7"])  # one bad address is enough
    with pytest.raises(outbound.AddressRefused, match=f"{TEST_NAME} resolves to a private"):
        outbound.request("GET", f"https://{TEST_NAME}/", timeout=2, max_bytes=10)


def test_the_checked_address_is_used_with_the_name_as_sni_and_host(ca, monkeypatch):
    lookups = _fake_dns(monkeypatch, ["127.0.0.1"])
    with Peer(respond(200, b"pinned"), ca=ca) as peer:
        url = f"https://{TEST_NAME}:{peer.port}/doc"
        assert get(url, https_only=True).body == b"pinned"  # the certificate names TEST_NAME
        assert lookups == [TEST_NAME]  # resolved once; the connection went to that address
        assert f"Host: {TEST_NAME}:{peer.port}\r\n".encode() in peer.requests[0]
    with Peer(respond(200, b"impostor"), ca=ca, names=("127.0.0.1",)) as impostor:
        with pytest.raises(outbound.TLSFailed):  # the name is verified, not the address
            get(f"https://{TEST_NAME}:{impostor.port}/doc")
        assert impostor.requests == []


def test_https_is_required_unless_lifted_and_bad_urls_are_refused():
    with pytest.raises(outbound.OutboundError, match="only https"):
        outbound.request("GET", "http://example.com/", timeout=1, max_bytes=10)
    for url in ("ftp://example.com/", "http:///nohost", "http://example.com:99999/"):
        with pytest.raises(outbound.OutboundError):
            get(url)
    with pytest.raises(outbound.OutboundError, match="unreachable"):
        get("http://127.0.0.1:9/")  # nothing listens on the discard port
    with Peer(respond()) as peer, pytest.raises(outbound.OutboundError, match="header"):
        get(peer.url, headers={"X-Bad": "a\r\nInjected: yes"})
