"""Private signing keys encrypted at rest under the key-encryption key (issue 9 item 12).

A data migration: every private key still stored as a PEM is encrypted under the current
KEK (``KEY_ENCRYPTION_KEY``, else derived from ``SECRET_KEY``), bound to its kid and alg.
The KEK comes from the app that migrates (``create_app`` and ``flask init-db`` run
migrations inside its application context). Run without an app, the rows are left as they
are and the first start-up encrypts them (``tokens/key_encryption.encrypt_plaintext_keys``).
"""

import logging

from flask import current_app, has_app_context
from peewee import CharField, Model, SqliteDatabase, TextField

from oauth.config import key_encryption_secrets
from oauth.security import KeyRing, is_plaintext_key

log = logging.getLogger(__name__)


def up(migrator, db):
    class SigningKey(Model):
        kid = CharField(primary_key=True, max_length=64)
        alg = CharField(max_length=16)
        private_pem = TextField()

        class Meta:
            database = db
            table_name = "signing_key"

    rows = [row for row in SigningKey.select() if is_plaintext_key(row.private_pem)]
    if not rows:
        return
    if not has_app_context():
        log.warning("%d plaintext signing keys left for the next start-up to encrypt", len(rows))
        return
    if isinstance(db, SqliteDatabase):
        # The plaintext overwritten below must not linger in the file's free space.
        db.execute_sql("PRAGMA secure_delete = ON")
    ring = KeyRing(key_encryption_secrets(current_app.config))
    for row in rows:
        sealed = ring.encrypt(row.private_pem, kid=row.kid, alg=row.alg)
        SigningKey.update(private_pem=sealed).where(SigningKey.kid == row.kid).execute()
    log.info("encrypted %d signing keys under key-encryption key %s", len(rows), ring.current_id)
