"""A real SMTP server for the tests (aiosmtpd on a loopback port): plain, STARTTLS or TLS
with a self-signed certificate, optional authentication, and a switch that makes it refuse."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import re
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class Inbox:
    """The aiosmtpd handler: keeps every accepted message; ``refuse`` makes DATA fail."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: str | None = None
        self.delay = 0.0
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        if self.delay:
            time.sleep(self.delay)  # a slow server (blocks its own thread only)
        if self.refuse:
            return self.refuse
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int = 1, timeout: float = 15) -> list:
        """Block until ``count`` messages arrived (the sender runs in the background)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"expected {count} mail(s), got {len(self.messages)}"
                self._arrived.wait(left)
        return list(self.messages)

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 (also its own CA bundle) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SMTPServer:
    """One running server; ``url`` is what PORTCULLIS_MAIL_URL would be."""

    def __init__(self, tmp_path: Path, *, mode="plain", login: tuple[str, str] | None = None):
        self.inbox = Inbox()
        self.port = free_port()
        self.logins: list[str] = []
        kwargs: dict = {}
        scheme = {"plain": "smtp", "starttls": "smtp+starttls", "tls": "smtps"}[mode]
        if mode != "plain":
            self.cert, key = self_signed_cert(tmp_path)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert, key)
            if mode == "starttls":
                kwargs.update(tls_context=context, require_starttls=True)
            else:
                kwargs.update(ssl_context=context)
        if login is not None:
            # AUTH is advertised and checked; aiosmtpd warns when it is required without TLS.
            kwargs.update(authenticator=self._authenticator(login), auth_required=mode != "plain")
            kwargs.update(auth_require_tls=mode == "starttls")
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)
        credentials = f"{login[0]}:{login[1]}@" if login else ""
        host = "localhost" if mode != "plain" else "127.0.0.1"
        self.url = f"{scheme}://{credentials}{host}:{self.port}"

    def _authenticator(self, login: tuple[str, str]):
        def check(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and (
                    auth_data.login.decode(),
                    auth_data.password.decode(),
                )
                == login
            )
            self.logins.append(auth_data.login.decode() if ok else "refused")
            return AuthResult(success=ok, handled=False)

        return check

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    """Start SMTP servers: ``smtp()`` plain, ``smtp(mode="starttls", login=("u", "p"))``...
    TLS servers' certificate is trusted through SSL_CERT_FILE, as an operator would do."""
    started: list[SMTPServer] = []

    def start(**kwargs) -> SMTPServer:
        server = SMTPServer(tmp_path, **kwargs)
        if getattr(server, "cert", None) is not None:
            monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        started.append(server.__enter__())
        return server

    yield start
    for server in started:
        server.__exit__()


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message, path: str) -> str:
    """The first link to ``path`` in the plain-text body."""
    match = re.search(rf"https?://\S+{re.escape(path)}\?token=[\w\-]+", text_of(message))
    assert match, f"no {path} link in:\n{text_of(message)}"
    return match.group(0)


def token_of(link: str) -> str:
    return link.rsplit("token=", 1)[1]


def wait_for_sender(app, timeout: float = 15) -> None:
    """Let this app's background sender finish what it is doing."""
    app.extensions["portcullis.mail"].join(timeout)
