"""One SSRF-safe POST of a logout token (Back-Channel Logout 1.0 §2.5).

The host is resolved once and every address checked: loopback, private, link-local, multicast
and reserved addresses are refused unless ``FETCH_ALLOW_PRIVATE_ADDRESSES`` (tests, closed
networks); the connection goes to the checked address (no second lookup to rebind), TLS still
verifies the URL's host name. Redirects are never followed (a 3xx is a failure). The deadline
bounds connecting, sending and reading the answer: a watchdog shuts the socket down, as the HTTP
hook does (plugins/builtin/http_hook.py). Name resolution itself is not interruptible.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 64 * 1024


class DeliveryError(Exception):
    """Why a delivery failed; the message is safe to log and audit (no token in it)."""


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> tuple:
    """The first acceptable socket address of ``host``; DeliveryError when there is none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise DeliveryError(f"cannot resolve {host}") from None
    if not infos:
        raise DeliveryError(f"cannot resolve {host}")
    if not allow_private and not all(_is_public(info[4][0]) for info in infos):
        raise DeliveryError(f"{host} resolves to a private or loopback address (refused)")
    family, _, _, _, address = infos[0]
    return family, address


class _Connection(http.client.HTTPSConnection):
    """Connects to an address checked beforehand; plain HTTP when ``tls`` is None."""

    def __init__(self, host, port, *, target, tls, timeout) -> None:
        super().__init__(host, port, timeout=timeout, context=tls or ssl.create_default_context())
        self._target = target
        self._tls = tls

    def connect(self) -> None:
        family, address = self._target
        sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock = sock  # visible to the watchdog before the (blocking) connect
        sock.settimeout(self.timeout)
        sock.connect(address)
        if self._tls is not None:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _parts(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise DeliveryError("invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError("not an http(s) URL")
    port = port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port, target


def post_form(url: str, body: bytes, *, timeout: float, allow_private: bool) -> int:
    """POST ``body`` (form-encoded) once and return the status; DeliveryError on failure."""
    scheme, host, port, path = _parts(url)
    target = resolve(host, port, allow_private=allow_private)
    tls = ssl.create_default_context() if scheme == "https" else None
    connection = _Connection(host, port, target=target, tls=tls, timeout=timeout)
    fired = threading.Event()

    def shut() -> None:
        fired.set()
        if connection.sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection.sock, socket.SHUT_RDWR)

    timer = threading.Timer(timeout, shut)
    timer.daemon = True
    timer.start()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-store"}
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)
        status = response.status
    except (OSError, http.client.HTTPException, UnicodeError) as error:
        if fired.is_set() or isinstance(error, TimeoutError):
            raise DeliveryError(f"timed out after {timeout:g} s") from None
        raise DeliveryError(f"unreachable: {type(error).__name__}") from None
    finally:
        timer.cancel()
        connection.close()
    if fired.is_set():
        raise DeliveryError(f"timed out after {timeout:g} s")
    return status
