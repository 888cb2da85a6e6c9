"""The per-process cache of the signing keys (``tokens/keys.py`` is the service over it).

Readers take a snapshot without locking; reloads are serialised. A snapshot holds the current
key of each algorithm (one per algorithm: ID tokens are signed with the client's
``id_token_signed_response_alg``), every published key for verification, and the JWKS.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

from oauth.storage.models import SigningKey
from oauth.tokens import jose as jwt
from oauth.tokens import key_encryption
from oauth.tokens.key_encryption import KeyEncryptionError

log = logging.getLogger(__name__)

STANDBY = "standby"
CURRENT = "current"
PREVIOUS = "previous"
REVOKED = "revoked"
PUBLISHED_STATES = (CURRENT, STANDBY, PREVIOUS)
UNKNOWN_KID_RELOAD_INTERVAL = 1.0


@dataclass(frozen=True)
class Snapshot:
    current: dict[str, jwt.KeyMaterial]  # alg -> its current key
    verification: dict[str, jwt.KeyMaterial]
    jwks: tuple[dict, ...]
    loaded_at: float


@dataclass
class KeyCache:
    """Per-app cache. Readers take ``snapshot`` without locking; reloads are serialised."""

    snapshot: Snapshot | None = None
    generation: int = 0
    last_forced: float = -math.inf
    materials: dict[str, jwt.KeyMaterial] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, refresh: float) -> Snapshot:
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

    def force_reload(self) -> Snapshot | None:
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

    def load_strict(self) -> Snapshot:
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

    def _reload(self, strict: bool = False) -> Snapshot:
        generation = self.generation
        rows = list(
            SigningKey.select()
            .where(SigningKey.state.in_(PUBLISHED_STATES))
            .order_by(SigningKey.created_at, SigningKey.kid)
        )
        materials = {row.kid: self._material(row, strict) for row in rows}
        self.materials = materials

        current = {r.alg: materials[r.kid] for r in rows if r.state == CURRENT}
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
        snap = Snapshot(
            current=current,
            verification={r.kid: materials[r.kid] for r in ordered},
            jwks=tuple(materials[r.kid].public_jwk for r in ordered),
            loaded_at=loaded_at,
        )
        self.snapshot = snap
        return snap
