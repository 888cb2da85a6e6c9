"""Small security primitives: random secrets, hashing at rest, constant-time checks, safe
redirects, and the key-encryption keys that keep private signing keys encrypted at rest."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random string with ``nbytes`` bytes (default 256 bits) of entropy."""
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """How secrets, codes and tokens are stored: unsalted SHA-256 (they are high-entropy)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def matches_hash(value: str, stored_hash: str) -> bool:
    """Compare ``value`` with a stored SHA-256 hex digest in constant time."""
    return hmac.compare_digest(sha256_hex(value), stored_hash or "")


# Compared against when there is no previous secret, so every check compares twice.
_NO_PREVIOUS_HASH = "0" * 64


def matches_current_or_previous(
    value: str, current_hash: str, previous_hash: str | None, *, previous_valid: bool
) -> bool:
    """``value`` matches the current hash, or the previous one while ``previous_valid``.

    Both comparisons always run in constant time, and are combined with ``|`` and ``&`` on
    bools (no short circuit): neither the time taken nor the answer says which one matched.
    """
    digest = sha256_hex(value)  # once: both comparisons are of the same digest
    current = hmac.compare_digest(digest, current_hash or "")
    previous = hmac.compare_digest(digest, previous_hash or _NO_PREVIOUS_HASH)
    return current | (previous & (previous_valid and previous_hash is not None))


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


# -- key-encryption keys (KEK) ----------------------------------------------------------------

# HKDF's fixed info label: a KEK secret (SECRET_KEY by default) becomes an AES-256 key used for
# nothing else. Changing it would make every stored private key unreadable.
KEK_INFO = b"portcullis signing-key encryption v1"
ENVELOPE_PREFIX = "kek1"
NONCE_BYTES = 12


class KeyDecryptionError(Exception):
    """A stored private key the configured KEKs cannot open. The message names the key id
    and the KEK id, never key material; ``missing_kek``: its KEK is not configured."""

    def __init__(self, message: str, *, missing_kek: bool = False) -> None:
        super().__init__(message)
        self.missing_kek = missing_kek


def derive_kek(secret: str) -> bytes:
    """The AES-256 key-encryption key of one secret (HKDF-SHA256, fixed info label)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEK_INFO)
    return hkdf.derive(secret.encode("utf-8"))


def _kek_id(key: bytes) -> str:
    """A short public name of a KEK (a hash of it), so an operator can tell which one a row
    is encrypted under; it reveals nothing about the key."""
    return hashlib.sha256(b"portcullis kek id\x00" + key).hexdigest()[:8]


def is_plaintext_key(stored: str | None) -> bool:
    """A private key stored as a bare PEM (a database from before migration 0007)."""
    return bool(stored) and stored.lstrip().startswith("-----BEGIN")


def envelope_kek_id(stored: str | None) -> str | None:
    """The id of the KEK a stored private key is encrypted under (None: plaintext or none)."""
    if not stored or not stored.startswith(ENVELOPE_PREFIX + "."):
        return None
    fields = stored.split(".")
    return fields[1] if len(fields) == 3 else None


def _associated_data(kek_id: str, kid: str, alg: str) -> bytes:
    # Binds the ciphertext to its row: a private key copied onto another row does not open.
    return "\x00".join(("portcullis signing key", kek_id, kid, alg)).encode("utf-8")


class KeyRing:
    """AES-256-GCM key-encryption keys: the first encrypts, every one decrypts (rotation)."""

    def __init__(self, kek_secrets: Iterable[str]) -> None:
        keys = [derive_kek(secret) for secret in kek_secrets]
        if not keys:
            raise ValueError("a key ring needs at least one key-encryption key")
        self._keys = [(_kek_id(key), AESGCM(key)) for key in keys]

    @property
    def current_id(self) -> str:
        """The id of the KEK that encrypts."""
        return self._keys[0][0]

    @property
    def ids(self) -> list[str]:
        return [kek_id for kek_id, _ in self._keys]

    def encrypt(self, private_pem: str, *, kid: str, alg: str) -> str:
        """``kek1.<kek id>.<base64url(nonce | ciphertext | tag)>`` under the current KEK."""
        kek_id, aead = self._keys[0]
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = aead.encrypt(
            nonce, private_pem.encode("utf-8"), _associated_data(kek_id, kid, alg)
        )
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{ENVELOPE_PREFIX}.{kek_id}.{body}"

    def decrypt(self, stored: str, *, kid: str, alg: str) -> str:
        """The PEM inside ``stored``; KeyDecryptionError when no configured KEK opens it."""
        kek_id = envelope_kek_id(stored)
        if kek_id is None:
            raise KeyDecryptionError(f"signing key {kid}: not an encrypted private key")
        candidates = [aead for known, aead in self._keys if known == kek_id]
        if not candidates:
            raise KeyDecryptionError(
                f"signing key {kid} is encrypted under key-encryption key {kek_id}, "
                f"which is not configured (configured: {', '.join(self.ids)})",
                missing_kek=True,
            )
        try:
            raw = base64.urlsafe_b64decode(stored.split(".")[2] + "==")
        except (binascii.Error, ValueError):
            raw = b""
        for aead in candidates:
            try:
                plain = aead.decrypt(
                    raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(kek_id, kid, alg)
                )
            except (InvalidTag, ValueError):
                continue
            return plain.decode("utf-8")
        raise KeyDecryptionError(
            f"signing key {kid} does not decrypt under key-encryption key {kek_id}: "
            "the row was altered or copied from another key"
        )
