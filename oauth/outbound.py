"""The one outbound HTTP client: every request Portcullis makes to a URL goes through here.

Its callers: the HTTP hook (plugins/builtin/http_hook.py, a URL the operator set), back-channel
logout delivery (accounts/backchannel.py, a URL a client registered) and Client ID Metadata
Documents (registry/metadata_documents.py, a URL anyone can name). ``request`` makes one
exchange under these rules:

- **One total deadline.** ``timeout`` covers name resolution (in a thread, abandoned when it
  hangs), connecting, the TLS handshake, sending and every read. Each blocking step waits at
  most until the deadline, which is checked again between reads, so a peer that dribbles its
  answer a byte at a time is cut off like one that never answers. (A watchdog that shuts the
  socket down does not do this: Linux keeps delivering bytes that go on arriving.)
- **Addresses checked, then pinned.** The name is resolved here and every address it has is
  checked (``address_problem``): unspecified and multicast addresses always refused; private,
  loopback, link-local, shared and reserved ones too unless ``allow_private``. The connection
  then goes to a checked address (no second lookup a rebinding DNS server could answer
  differently), with the name as TLS SNI, certificate name and ``Host``.
- **https required** unless ``https_only=False``; certificates are verified against the system
  store (or ``SSL_CERT_FILE``).
- **No redirects, ever.** A 3xx is returned as a status like any other; the caller refuses it.
- **Bounded answers.** At most ``max_bytes`` of body (and ``HEAD_BYTES`` of status line and
  headers); a bigger answer is an error.

Every failure is an ``OutboundError`` (a subclass says which kind) whose message is safe to show,
log and audit: it names the host, never the request's body.
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

USER_AGENT = "Portcullis"
HEAD_BYTES = 16 * 1024
_OURS = {"host", "content-length", "connection", "transfer-encoding"}  # set here only


class OutboundError(Exception):
    """The request failed; the message is safe to show (no body, no internal detail)."""


class TimedOut(OutboundError):
    pass


class AddressRefused(OutboundError):
    pass


class TooLarge(OutboundError):
    pass


class TLSFailed(OutboundError):
    pass


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; TimedOut when there are none."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimedOut(f"timed out after {self.seconds:g} s")
        return left


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


def _split(url: str, https_only: bool) -> _Target:
    parts = urlsplit(url)
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes or not parts.hostname:
        raise OutboundError("only https URLs are requested" if https_only else "not an http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundError("the URL has an invalid port") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(parts.scheme, parts.hostname, port, path)


def _resolve(host: str, port: int, deadline: _Deadline) -> list[tuple]:
    """``(family, sockaddr)`` for each address of ``host``, within the deadline."""
    result: dict = {}

    def work() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            result["error"] = error

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(deadline.left())
    if thread.is_alive():
        raise TimedOut(f"timed out after {deadline.seconds:g} s (resolving {host})")
    if "error" in result or not result["infos"]:
        raise OutboundError(f"{host} does not resolve")
    return list(dict.fromkeys((info[0], info[4]) for info in result["infos"]))


def vetted_addresses(host: str, port: int, *, allow_private: bool, deadline: _Deadline) -> list:
    """The addresses to connect to for ``host``: every address it has must be allowed."""
    addresses = _resolve(host, port, deadline)
    for _, sockaddr in addresses:
        problem = address_problem(sockaddr[0], allow_private=allow_private)
        if problem:
            raise AddressRefused(
                f"{host} resolves to {problem}; private or loopback addresses are refused"
            )
    return addresses


def _connect(target: _Target, addresses: list, deadline: _Deadline) -> socket.socket:
    """A TCP connection to the first checked address that answers."""
    failure: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(deadline.left())
            sock.connect(sockaddr)
            return sock
        except TimeoutError:
            sock.close()
            raise TimedOut(f"timed out after {deadline.seconds:g} s") from None
        except OSError as error:
            sock.close()
            failure = error
        except BaseException:
            sock.close()
            raise
    raise OutboundError(f"{target.host} is unreachable ({type(failure).__name__})")


def _tls(sock: socket.socket, target: _Target, deadline: _Deadline) -> socket.socket:
    """TLS over ``sock``, verifying the certificate for the URL's host (also the SNI)."""
    if target.scheme != "https":
        return sock
    sock.settimeout(deadline.left())  # the handshake as a whole waits at most this long
    try:
        return ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
    except ssl.SSLError:
        sock.close()
        raise TLSFailed(f"TLS with {target.host} failed (is its certificate trusted?)") from None
    except BaseException:
        sock.close()
        raise


def _request_bytes(method: str, target: _Target, headers: dict[str, str], body: bytes) -> bytes:
    fields = {"Host": target.authority, "User-Agent": USER_AGENT}
    fields.update({name: value for name, value in headers.items() if name.lower() not in _OURS})
    fields.update({"Content-Length": str(len(body)), "Connection": "close"})
    lines = [f"{method} {target.path} HTTP/1.1"]
    for name, value in fields.items():
        if re.search(r"[\r\n\0]", name + value) or not re.fullmatch(r"[!-9;-~]+", name):
            raise OutboundError(f"invalid request header {name!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _complete(data: bytes, method: str) -> bool:
    """Whether ``data`` holds a whole answer (no need to wait for the peer to close)."""
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    status = re.match(rb"HTTP/\d\.\d (\d{3})", head)
    if status and (method == "HEAD" or status.group(1) in (b"204", b"304")):
        return True
    length = re.search(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$", head)
    if length is not None:
        return len(body) >= int(length.group(1))
    if re.search(rb"(?im)^transfer-encoding:.*chunked", head):
        return body.endswith(b"0\r\n\r\n")
    return False


def _exchange(sock: socket.socket, request: bytes, deadline: _Deadline, cap: int, method) -> bytes:
    """Send ``request``; read the answer until it is complete, EOF, ``cap`` or the deadline."""
    sock.settimeout(deadline.left())
    sock.sendall(request)
    data = b""
    while not _complete(data, method):
        sock.settimeout(deadline.left())  # a read waits at most until the deadline
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > cap:
            raise TooLarge(f"the answer is larger than {cap - HEAD_BYTES} bytes")
    return data


class _Raw:
    """What ``http.client.HTTPResponse`` parses: the bytes already read, as a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def _parse(raw: bytes, method: str, max_bytes: int) -> Response:
    answer = http.client.HTTPResponse(_Raw(raw), method=method)  # type: ignore[arg-type]
    answer.begin()
    body = answer.read()
    if len(body) > max_bytes:
        raise TooLarge(f"the answer is larger than {max_bytes} bytes")
    return Response(answer.status, answer.msg, body)


def request(
    method: str,
    url: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float,
    max_bytes: int,
    https_only: bool = True,
    allow_private: bool = False,
) -> Response:
    """One ``method`` request to ``url`` under the rules above; OutboundError on any failure."""
    deadline = _Deadline(timeout)
    target = _split(url, https_only)
    addresses = vetted_addresses(
        target.host, target.port, allow_private=allow_private, deadline=deadline
    )
    raw_request = _request_bytes(method, target, headers or {}, body)
    sock = None
    try:
        sock = _tls(_connect(target, addresses, deadline), target, deadline)
        raw = _exchange(sock, raw_request, deadline, max_bytes + HEAD_BYTES, method)
        return _parse(raw, method, max_bytes)
    except TimeoutError:
        raise TimedOut(f"timed out after {timeout:g} s") from None
    except ssl.SSLError:
        raise TLSFailed(f"TLS with {target.host} failed") from None
    except (OSError, http.client.HTTPException, UnicodeError, ValueError) as error:
        kind = type(error).__name__
        raise OutboundError(f"{target.host} is unreachable or answered badly ({kind})") from None
    finally:
        if sock is not None:
            sock.close()
