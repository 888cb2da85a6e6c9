"""The signing-key service over ``SigningKey``: rotation, JWKS, and a per-process key cache.

States: ``standby`` (published, not signing) -> ``current`` (exactly one; signs) ->
``previous`` (published, still verifies) -> ``revoked`` (unpublished, no longer verifies).

Every worker caches the keys for ``KEYS_REFRESH_SECONDS`` (default 5), so a rotation made
elsewhere (the CLI, another worker) is picked up within that time; a token whose ``kid`` is
unknown forces one immediate reload (at most once a second) before it is refused.

Private keys are stored encrypted (``tokens/key_encryption.py``), decrypted once per worker
when the cache first meets them. At start-up one that does not decrypt stops the server.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, current_app, has_app_context

from oauth import audit
from oauth.config import ConfigError
from oauth.storage.db import connection, database, is_sqlite, write_transaction
from oauth.storage.models import SigningKey, utcnow
from oauth.tokens import jose as jwt
from oauth.tokens import key_encryption
from oauth.tokens.key_encryption import KeyEncryptionError

log = logging.getLogger(__name__)

STANDBY = "standby"
CURRENT = "current"
PREVIOUS = "previous"
REVOKED = "revoked"
PUBLISHED_STATES = (CURRENT, STANDBY, PREVIOUS)

EXTENSION = "portcullis.keys"
UNKNOWN_KID_RELOAD_INTERVAL = 1.0
# "portkeys": serialises key state changes across processes on PostgreSQL (SQLite is
# serialised by BEGIN IMMEDIATE). Distinct from the migrations lock.
ADVISORY_LOCK_KEY = 0x706F72746B657973


class KeyServiceError(Exception):
    """A key operation that cannot be done; the message is safe to show to an operator."""


@dataclass(frozen=True)
class _Snapshot:
    current: jwt.KeyMaterial | None
    verification: dict[str, jwt.KeyMaterial]
    jwks: tuple[dict, ...]
    loaded_at: float


@dataclass
class _KeyCache:
    """Per-app cache. Readers take ``snapshot`` without locking; reloads are serialised."""

    snapshot: _Snapshot | None = None
    generation: int = 0
    last_forced: float = -math.inf
    materials: dict[str, jwt.KeyMaterial] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, refresh: float) -> _Snapshot:
        snap = self.snapshot
        if snap is not None and time.monotonic() - snap.loaded_at < refresh:
            return snap
        if snap is not None:
            # Another thread is already reloading: its keys are at most a moment fresher.
            if not self.lock.acquire(blocking=False):
                return snap
        else:
            self.lock.acquire()
        try:
            latest = self.snapshot
            if (
                latest is not None
                and latest is not snap
                and time.monotonic() - latest.loaded_at < refresh
            ):
                return latest
            return self._reload()
        finally:
            self.lock.release()

    def force_reload(self) -> _Snapshot | None:
        """Reload now unless a forced reload happened less than a second ago (then None)."""
        with self.lock:
            now = time.monotonic()
            if now - self.last_forced < UNKNOWN_KID_RELOAD_INTERVAL:
                return None
            self.last_forced = now
            return self._reload()

    def invalidate(self) -> None:
        self.generation += 1
        self.snapshot = None

    def load_strict(self) -> _Snapshot:
        """Reload now; a key that does not decrypt raises KeyEncryptionError (start-up)."""
        with self.lock:
            return self._reload(strict=True)

    def _material(self, row: SigningKey, strict: bool) -> jwt.KeyMaterial:
        material = self.materials.get(row.kid)
        known = material is not None and material.alg == row.alg
        if known and (material.can_sign or not row.private_pem):
            return material  # decrypted once, reused by every later reload
        try:
            private_pem = key_encryption.open_private_key(row)
        except KeyEncryptionError as error:
            if strict:
                raise
            # Verification needs only the public half; signing with it fails clearly.
            log.error("%s (key %s verifies only)", error, row.kid)
            private_pem = None
        return jwt.KeyMaterial(row.kid, row.alg, private_pem, row.public_jwk)

    def _reload(self, strict: bool = False) -> _Snapshot:
        generation = self.generation
        rows = list(
            SigningKey.select()
            .where(SigningKey.state.in_(PUBLISHED_STATES))
            .order_by(SigningKey.created_at, SigningKey.kid)
        )
        materials = {row.kid: self._material(row, strict) for row in rows}
        self.materials = materials

        current = next((materials[r.kid] for r in rows if r.state == CURRENT), None)
        standby = [r for r in rows if r.state == STANDBY]
        previous = sorted(
            (r for r in rows if r.state == PREVIOUS),
            key=lambda r: r.retired_at or r.created_at,
            reverse=True,
        )
        ordered = [r for r in rows if r.state == CURRENT] + standby + previous
        loaded_at = time.monotonic()
        if generation != self.generation:
            # Invalidated while we were reading: keep the result for this caller only.
            loaded_at = -math.inf
        snap = _Snapshot(
            current=current,
            verification={r.kid: materials[r.kid] for r in ordered},
            jwks=tuple(materials[r.kid].public_jwk for r in ordered),
            loaded_at=loaded_at,
        )
        self.snapshot = snap
        return snap


def _cache(app: Flask | None = None) -> _KeyCache:
    app = app or current_app._get_current_object()
    cache = app.extensions.get(EXTENSION)
    if cache is None:
        cache = app.extensions.setdefault(EXTENSION, _KeyCache())
    return cache


def _refresh_seconds() -> float:
    return float(current_app.config["KEYS_REFRESH_SECONDS"])


def _check_alg(alg: str) -> str:
    if alg not in jwt.SUPPORTED_ALGS:
        raise KeyServiceError(
            f"unsupported algorithm {alg!r}: use {' or '.join(jwt.SUPPORTED_ALGS)}"
        )
    return alg


def _default_alg() -> str:
    return _check_alg(str(current_app.config["SIGNING_ALG"]))


# -- start-up ---------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Ensure a current key exists (race-safe across workers) and set up the key cache.

    Idempotent. When the schema is not there yet (``AUTO_MIGRATE`` off, before
    ``flask init-db``) it does nothing: the first signature creates the key instead.
    """
    alg = str(app.config["SIGNING_ALG"])
    if alg not in jwt.SUPPORTED_ALGS:
        raise ConfigError(
            f"PORTCULLIS_SIGNING_ALG: unsupported algorithm {alg!r}; use "
            + " or ".join(jwt.SUPPORTED_ALGS)
        )
    _cache(app)
    active = has_app_context() and current_app._get_current_object() is app
    with contextlib.ExitStack() as stack:
        if not active:
            stack.enter_context(app.app_context())
        stack.enter_context(connection())
        if not SigningKey.table_exists():
            log.warning("signing_key table missing: run `flask init-db`")
            return
        _open_keys_or_stop(app, alg)


def _open_keys_or_stop(app: Flask, alg: str) -> None:
    """Encrypt plaintext leftovers, make sure a current key exists, and decrypt every key,
    or stop start-up: never a new key over keys this configuration cannot open."""
    cache = _cache(app)
    try:
        key_encryption.keyring(app)
        cache.invalidate()
        cache.load_strict()
        if key_encryption.plaintext_keys_exist():
            with _key_lock():
                sealed = key_encryption.encrypt_plaintext_keys()
            log.warning("encrypted %d signing keys stored in plaintext", len(sealed))
        if ensure_current_key() is not None:
            log.info("created the first signing key (%s)", alg)
        cache.invalidate()
        cache.get(_refresh_seconds())
    except KeyEncryptionError as error:
        raise ConfigError(str(error)) from None


def ensure_current_key() -> SigningKey | None:
    """Make sure one current key exists; returns the key it had to create or promote, else None."""
    if SigningKey.select().where(SigningKey.state == CURRENT).exists():
        return None
    with _key_lock():
        # Re-check under the lock: another worker may have won the race.
        if SigningKey.select().where(SigningKey.state == CURRENT).exists():
            return None
        key = _rotate_locked(None)
    _cache().invalidate()
    return key


@contextlib.contextmanager
def _key_lock():
    """A write transaction that excludes every other key state change, in any process."""
    with write_transaction():
        if not is_sqlite():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        yield


# -- reading ----------------------------------------------------------------------------------


def _snapshot() -> _Snapshot:
    return _cache().get(_refresh_seconds())


def signing_key() -> jwt.KeyMaterial:
    """The current signing key (cached; creates one when the table has none)."""
    current = _snapshot().current
    if current is None:
        ensure_current_key()
        current = _snapshot().current
        if current is None:
            raise KeyServiceError("no current signing key: run `flask keys rotate`")
    if not current.can_sign:
        raise KeyServiceError(f"signing key {current.kid} does not decrypt: see the log")
    return current


def verification_keys() -> dict[str, jwt.KeyMaterial]:
    """Every published key by kid (current, standby and previous)."""
    return _snapshot().verification


def public_jwks() -> dict:
    """The JWK Set: current key first, then standby, then previous keys; no private members."""
    return {"keys": [dict(key) for key in _snapshot().jwks]}


def sign_jwt(claims: dict, *, typ: str = "JWT") -> str:
    """Sign ``claims`` with the current key."""
    return signing_key().sign(claims, typ=typ)


def verify_jwt(token: str, *, typ: str | None = None, allow_expired: bool = False) -> dict:
    """Verify a token signed by one of our published keys; raises ``jwt.InvalidTokenError``."""
    try:
        return jwt.verify(token, _snapshot().verification, typ=typ, allow_expired=allow_expired)
    except jwt.UnknownKeyError:
        fresh = _cache().force_reload()
        if fresh is None:
            raise
        return jwt.verify(token, fresh.verification, typ=typ, allow_expired=allow_expired)


# -- changing ---------------------------------------------------------------------------------


def _new_key(alg: str, state: str, now) -> SigningKey:
    private_pem, public_jwk, kid = jwt.generate_key(alg)
    return SigningKey.create(
        kid=kid,
        alg=alg,
        private_pem=key_encryption.seal(private_pem, kid=kid, alg=alg),
        public_jwk=public_jwk,
        state=state,
        created_at=now,
        activated_at=now if state == CURRENT else None,
    )


def _rotate_locked(alg: str | None) -> SigningKey:
    now = utcnow()
    query = SigningKey.select().where(SigningKey.state == STANDBY)
    if alg is not None:
        query = query.where(SigningKey.alg == alg)
    key = query.order_by(SigningKey.created_at, SigningKey.kid).first()
    SigningKey.update(state=PREVIOUS, retired_at=now).where(SigningKey.state == CURRENT).execute()
    if key is None:
        return _new_key(alg or _default_alg(), CURRENT, now)
    key.state = CURRENT
    key.activated_at = now
    key.save()
    return key


def add_key(alg: str | None = None, *, actor_id: str | None = None) -> SigningKey:
    """Create a standby key: published in the JWKS before it ever signs."""
    alg = _check_alg(alg) if alg else _default_alg()
    with _key_lock():
        key = _new_key(alg, STANDBY, utcnow())
        audit.record("key.added", user_id=actor_id, kid=key.kid, alg=key.alg)
    _cache().invalidate()
    return key


def rotate(alg: str | None = None, *, actor_id: str | None = None) -> SigningKey:
    """Make the oldest standby key (of ``alg``, when given) current, or a new key; the old one
    becomes previous. Takes effect at once here, and in other processes within the cache time."""
    if alg:
        _check_alg(alg)
    with _key_lock():
        old = SigningKey.select(SigningKey.kid).where(SigningKey.state == CURRENT).first()
        key = _rotate_locked(alg or None)
        audit.record(
            "key.rotated",
            user_id=actor_id,
            kid=key.kid,
            alg=key.alg,
            previous_kid=old.kid if old else None,
        )
    _cache().invalidate()
    return key


def revoke(kid: str, *, actor_id: str | None = None) -> SigningKey:
    """Unpublish a standby or previous key; tokens it signed stop verifying."""
    with _key_lock():
        key = SigningKey.get_or_none(SigningKey.kid == kid)
        if key is None:
            raise KeyServiceError(f"no signing key with kid {kid}")
        if key.state == CURRENT:
            raise KeyServiceError(f"{kid} is the current signing key: rotate first")
        if key.state != REVOKED:
            now = utcnow()
            key.state = REVOKED
            key.revoked_at = now
            key.retired_at = key.retired_at or now
            # The private half has no use any more; do not keep it lying around.
            key.private_pem = ""
            key.save()
            audit.record("key.revoked", user_id=actor_id, kid=key.kid, alg=key.alg)
    _cache().invalidate()
    return key


def list_keys() -> list[SigningKey]:
    """Every key, revoked ones included, oldest first."""
    return list(SigningKey.select().order_by(SigningKey.created_at, SigningKey.kid))


def rewrap(*, actor_id: str | None = None) -> tuple[int, int]:
    """Re-encrypt every private key under the current key-encryption key (the first of
    KEY_ENCRYPTION_KEY): (keys re-encrypted, of which were under another KEK or plaintext).
    All or nothing: a key that does not decrypt changes nothing and raises KeyServiceError."""
    try:
        with _key_lock():
            total, moved = key_encryption.rewrap_all()
            kek = key_encryption.keyring().current_id
            audit.record("keys.rewrapped", user_id=actor_id, kek=kek, keys=total, moved=moved)
    except KeyEncryptionError as error:
        raise KeyServiceError(str(error)) from None
    _cache().invalidate()
    return total, moved
