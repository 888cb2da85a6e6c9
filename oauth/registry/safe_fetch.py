"""GET an https URL that someone else chose (a Client ID Metadata Document), safely.

What the URL may reach is the danger (SSRF): a client_id naming ``https://10.0.0.5/...`` or a
host whose DNS answers ``127.0.0.1`` would make this server probe its own network. So:

- https only (a certificate the system store trusts, or ``SSL_CERT_FILE``'s), on any port;
- the name is resolved here, and every address it resolves to must be public (not private,
  loopback, link-local, multicast, reserved, shared or unspecified): one bad address refuses
  the URL; then the connection goes to the vetted address itself (no second resolution that
  a rebinding DNS server could answer differently), with the name as TLS SNI and ``Host``;
- redirects are never followed; only 200 is an answer;
- the answer is read up to a size limit, and one deadline (resolution included) bounds the
  whole fetch. Like the HTTP hook (``oauth/plugins/builtin/http_hook.py``) it does not trust
  per-read socket timeouts alone; unlike it, no watchdog: shutting a TLS socket down does not
  stop a peer that keeps dribbling bytes (Linux still delivers them), so the raw answer is
  read here, each read waiting at most until the deadline, which is checked between reads.

``allow_private=True`` (``FETCH_ALLOW_PRIVATE_ADDRESSES``) lifts the address check only: for
tests and closed networks.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

USER_AGENT = "Portcullis (client metadata fetcher)"
HEAD_BYTES = 8192  # status line and headers, on top of the body's limit


class FetchError(Exception):
    """The URL could not be fetched; the message is safe to show (no internal detail)."""


@dataclass(frozen=True)
class Answer:
    body: bytes
    headers: http.client.HTTPMessage


def address_problem(address: str, *, allow_private: bool = False) -> str | None:
    """Why this server must not connect to ``address`` (an IP literal), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return "an unspecified or multicast address"
    if allow_private:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def _resolve(host: str, port: int, seconds: float) -> list[str]:
    """The addresses of ``host``, within ``seconds`` (a resolver that hangs is abandoned)."""
    result: dict = {}

    def work() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            result["error"] = error

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(max(seconds, 0))
    if thread.is_alive():
        raise FetchError(f"resolving {host} took too long")
    if "error" in result:
        raise FetchError(f"{host} does not resolve")
    return list(dict.fromkeys(info[4][0] for info in result["infos"]))


def vetted_address(host: str, port: int, *, allow_private: bool, seconds: float) -> str:
    """The address to connect to for ``host``: every address it has must be allowed."""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        addresses = _resolve(host, port, seconds)
    if not addresses:
        raise FetchError(f"{host} does not resolve")
    for address in addresses:
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            raise FetchError(f"{host} resolves to {problem}, which is not fetched")
    return addresses[0]


class _Raw:
    """What ``http.client.HTTPResponse`` parses: the bytes already read, as a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def _complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole answer with a Content-Length (no need to wait for EOF)."""
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    match = re.search(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$", head)
    return match is not None and len(body) >= int(match.group(1))


def _exchange(sock: socket.socket, request: bytes, deadline: float, cap: int) -> bytes:
    """Send ``request`` and read the answer until EOF, ``cap`` bytes or the deadline.

    Each read waits at most until the deadline, and the deadline is checked between reads, so
    a server dribbling a byte at a time is cut off too.
    """
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    sock.sendall(request)
    data = b""
    while not _complete(data):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > cap:
            raise _TooLarge
    return data


class _TooLarge(Exception):
    pass


def _split(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise FetchError("only https URLs are fetched")
    try:
        port = parts.port or 443
    except ValueError:
        raise FetchError("the URL has an invalid port") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, target


def _connect(host: str, port: int, address: str, deadline: float) -> ssl.SSLSocket:
    """TLS to the vetted ``address``, verifying the certificate for ``host`` (also the SNI)."""
    raw = socket.create_connection((address, port), max(deadline - time.monotonic(), 0.001))
    try:
        return ssl.create_default_context().wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def _request(host: str, port: int, target: str) -> bytes:
    authority = f"[{host}]" if ":" in host else host
    if port != 443:
        authority += f":{port}"
    lines = (
        f"GET {target} HTTP/1.1",
        f"Host: {authority}",
        "Accept: application/json",
        f"User-Agent: {USER_AGENT}",
        "Connection: close",
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _answer(raw: bytes, max_bytes: int) -> tuple[int, http.client.HTTPMessage, bytes]:
    response = http.client.HTTPResponse(_Raw(raw))  # type: ignore[arg-type]
    response.begin()
    status = response.status
    body = response.read(max_bytes + 1) if status == 200 else b""
    return status, response.msg, body


def get(url: str, *, timeout: float, max_bytes: int, allow_private: bool = False) -> Answer:
    """GET ``url`` once under the rules above; the body and headers of its 200 answer."""
    host, port, target = _split(url)
    deadline = time.monotonic() + timeout
    address = vetted_address(host, port, allow_private=allow_private, seconds=timeout)
    timed_out = FetchError(f"fetching {host} timed out after {timeout:g} s")
    sock = None
    try:
        if time.monotonic() >= deadline:
            raise TimeoutError
        sock = _connect(host, port, address, deadline)
        raw = _exchange(sock, _request(host, port, target), deadline, max_bytes + HEAD_BYTES)
        status, headers, body = _answer(raw, max_bytes)
    except _TooLarge:
        raise FetchError(f"the document is larger than {max_bytes} bytes") from None
    except TimeoutError:
        raise timed_out from None
    except ssl.SSLError:
        raise FetchError(f"TLS with {host} failed (is its certificate trusted?)") from None
    except (OSError, http.client.HTTPException, UnicodeError) as error:
        raise FetchError(f"{host} is unreachable ({type(error).__name__})") from None
    finally:
        if sock is not None:
            sock.close()
    if 300 <= status < 400:
        raise FetchError(f"{host} answered a redirect ({status}); redirects are not followed")
    if status != 200:
        raise FetchError(f"{host} answered status {status}")
    if len(body) > max_bytes:
        raise FetchError(f"the document is larger than {max_bytes} bytes")
    return Answer(body, headers)
