"""Private signing keys at rest: sealed under the app's key-encryption keys (KEK).

``SigningKey.private_pem`` holds ``kek1.<kek id>.<AES-256-GCM ciphertext>`` (see
``security.KeyRing``), bound to the row's kid and alg; ``""`` once the key is revoked. A bare
PEM (a database from before migration 0007, a restored old backup) still reads, with a
warning, and start-up encrypts it. The KEKs: ``KEY_ENCRYPTION_KEY`` (the first encrypts,
every one decrypts), else one derived from ``SECRET_KEY``.

The key service (``tokens/keys.py``) opens a key once, when its cache first meets it, never
per token; the functions that change rows expect its key lock to be held.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app

from oauth.config import key_encryption_secrets, key_encryption_setting
from oauth.security import KeyDecryptionError, KeyRing, envelope_kek_id, is_plaintext_key
from oauth.storage.db import database, is_sqlite
from oauth.storage.models import SigningKey

log = logging.getLogger(__name__)

EXTENSION = "portcullis.keyring"
PLAINTEXT = "plaintext"


class KeyEncryptionError(Exception):
    """A private key that cannot be opened; the message names the setting to fix."""


def keyring(app: Flask | None = None) -> KeyRing:
    """This app's key ring, built once from its settings."""
    app = app or current_app._get_current_object()
    ring = app.extensions.get(EXTENSION)
    if ring is None:
        ring = app.extensions.setdefault(EXTENSION, KeyRing(key_encryption_secrets(app.config)))
    return ring


def seal(private_pem: str, *, kid: str, alg: str) -> str:
    """``private_pem`` encrypted under the current KEK, for the row ``kid``/``alg``."""
    return keyring().encrypt(private_pem, kid=kid, alg=alg)


def _hint() -> str:
    if current_app.config.get("KEY_ENCRYPTION_KEY"):
        return (
            "list the key-encryption key it was encrypted under in "
            "PORTCULLIS_KEY_ENCRYPTION_KEY (after the new one), then run `flask keys rewrap`"
        )
    return (
        "was PORTCULLIS_SECRET_KEY changed? Give the old secret key as "
        "PORTCULLIS_KEY_ENCRYPTION_KEY=NEW_KEK,OLD_SECRET_KEY, then run `flask keys rewrap`"
    )


def open_private_key(row: SigningKey) -> str | None:
    """The PEM of ``row`` (None when it has no private part any more)."""
    stored = row.private_pem
    if not stored:
        return None
    if is_plaintext_key(stored):
        log.warning(
            "signing key %s is stored unencrypted: restart or run `flask keys rewrap`", row.kid
        )
        return stored
    try:
        return keyring().decrypt(stored, kid=row.kid, alg=row.alg)
    except KeyDecryptionError as error:
        setting = key_encryption_setting(current_app.config)
        hint = f"; {_hint()}" if error.missing_kek else ""
        raise KeyEncryptionError(f"{setting}: {error}{hint}") from None


def protection(row: SigningKey) -> str | None:
    """How the private part is kept: the KEK id, ``plaintext``, or None (erased)."""
    if is_plaintext_key(row.private_pem):
        return PLAINTEXT
    return envelope_kek_id(row.private_pem)


def _secure_delete() -> None:
    """SQLite: what is overwritten is zeroed, so a replaced plaintext key leaves no trace."""
    if is_sqlite():
        database.execute_sql("PRAGMA secure_delete = ON")


def plaintext_keys_exist() -> bool:
    return SigningKey.select().where(SigningKey.private_pem.startswith("-----BEGIN")).exists()


def encrypt_plaintext_keys() -> list[str]:
    """Encrypt every private key stored as a bare PEM; their kids. Needs the key lock."""
    _secure_delete()
    sealed = []
    for row in SigningKey.select().where(SigningKey.private_pem.startswith("-----BEGIN")):
        row.private_pem = seal(row.private_pem, kid=row.kid, alg=row.alg)
        row.save(only=[SigningKey.private_pem])
        sealed.append(row.kid)
    return sealed


def rewrap_all() -> tuple[int, int]:
    """Re-encrypt every private key under the current KEK (fresh nonces); returns (keys
    re-encrypted, of which were under another KEK or in plaintext). Needs the key lock;
    the first key that does not open raises KeyEncryptionError and the caller rolls back."""
    ring = keyring()
    _secure_delete()
    total = moved = 0
    for row in SigningKey.select().where(SigningKey.private_pem != "").order_by(SigningKey.kid):
        private_pem = open_private_key(row)
        if protection(row) != ring.current_id:
            moved += 1
        row.private_pem = seal(private_pem, kid=row.kid, alg=row.alg)
        row.save(only=[SigningKey.private_pem])
        total += 1
    return total, moved
