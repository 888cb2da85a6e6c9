"""Small security primitives: random secrets, hashing at rest, constant-time checks, safe redirects."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` bytes (default 256 bits) of entropy."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """How secrets, codes and tokens are stored: unsalted SHA-256 (they are high-entropy)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches_hash(value: str, stored_hash: str) -> bool:
    """Compare ``value`` with a stored SHA-256 hex digest in constant time."""
    return hmac.compare_digest(sha256_hex(value), stored_hash or "")


def safe_next_path(target: str | None, default: str = "/") -> str:
    """Return ``target`` when it is a same-site path, else ``default``.

    Refuses absolute URLs, scheme-relative ``//host`` and the ``/\\host`` trick browsers
    treat as ``//host``, and anything with control characters.
    """
    if not target or not isinstance(target, str):
        return default
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return default
    if not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def lookup_key(value, max_length: int = 64) -> str | None:
    """``value`` when it can be an identifier we issued, else None.

    Keeps NUL bytes (which PostgreSQL refuses in text) and absurd lengths away from queries.
    """
    if not isinstance(value, str) or not value or len(value) > max_length or "\x00" in value:
        return None
    return value
