"""How a rendered mail leaves the server: SMTP (plain, STARTTLS, TLS, with or without
authentication) or ``.eml`` files in a folder, from ``MAIL_URL``.

``smtp://[user:password@]host[:25]``, ``smtp+starttls://...[:587]``, ``smtps://...[:465]``
(TLS from the first byte), ``file:///path/to/outbox`` (the default, ``<instance>/outbox``:
one file per message, its path logged, so ``make run`` needs no mail server). TLS trusts the
system store, or the bundle named by ``SSL_CERT_FILE``, and checks the host name.
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailError(Exception):
    """A message could not be handed over; the text names the cause (never a credential)."""


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str
    html: str


def build(message: Message, sender: str, domain: str) -> EmailMessage:
    """A multipart/alternative mail: the plain text first, the HTML alternative second."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.to
    mail["Subject"] = " ".join(message.subject.split())
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain=domain)
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text)
    if message.html.strip():
        mail.add_alternative(message.html, subtype="html")
    return mail


def describe(url: str) -> str:
    """The URL without its password, for logs, /healthz and the audit log."""
    parts = urlsplit(url)
    if parts.password is not None:
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
    return url


def send(url: str, mail: EmailMessage, timeout: float) -> str:
    """Hand ``mail`` over; returns where it went (a file path or the SMTP host)."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        folder = Path(unquote(parts.path))
        try:
            return _write_file(folder, mail)
        except OSError as error:
            raise MailError(f"cannot write to {folder}: {error.strerror}") from None
    try:
        return _send_smtp(parts, mail, timeout)
    except smtplib.SMTPAuthenticationError as error:
        raise MailError(f"SMTP authentication failed ({error.smtp_code})") from None
    except smtplib.SMTPResponseException as error:
        raise MailError(
            f"SMTP server refused: {error.smtp_code} {_text(error.smtp_error)}"
        ) from None
    except smtplib.SMTPRecipientsRefused as error:
        codes = sorted({code for code, _ in error.recipients.values()})
        raise MailError(
            f"SMTP server refused the recipient ({', '.join(map(str, codes))})"
        ) from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as error:
        reason = str(error) or type(error).__name__
        raise MailError(f"SMTP {parts.hostname}:{_port(parts)}: {reason}") from None


def _text(value) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:200]


def _port(parts) -> int:
    return parts.port or DEFAULT_PORTS[parts.scheme]


def _send_smtp(parts, mail: EmailMessage, timeout: float) -> str:
    host, port = parts.hostname, _port(parts)
    context = ssl.create_default_context()
    if parts.scheme == "smtps":
        connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        connection = smtplib.SMTP(host, port, timeout=timeout)
    with connection as smtp:
        smtp.ehlo()
        if parts.scheme == "smtp+starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if parts.username is not None:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(mail)
    return f"{host}:{port}"


def _write_file(folder: Path, mail: EmailMessage) -> str:
    """One ``.eml`` per message, readable by the owner only (it may carry a sign-in link)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = folder / f"{stamp}-{secrets.token_hex(4)}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(mail.as_bytes())
    log.info("mail to %s written to %s", mail["To"], path)
    return str(path)
