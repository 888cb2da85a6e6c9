"""The signing-key service over ``SigningKey``: rotation, JWKS, and a per-process key cache.

States: ``standby`` (published, not signing) -> ``current`` (exactly one per algorithm;
signs) -> ``previous`` (published, still verifies) -> ``revoked`` (unpublished, no longer
verifies). A current key of every supported algorithm (ES256, RS256) always exists: access
tokens are signed with ``SIGNING_ALG``'s, ID tokens with the client's
``id_token_signed_response_alg`` (RS256 by default), and ``rotate`` turns them all over.

Every worker caches the keys for ``KEYS_REFRESH_SECONDS`` (default 5), so a rotation made
elsewhere (the CLI, another worker) is picked up within that time; a token whose ``kid`` is
unknown forces one immediate reload (at most once a second) before it is refused.

Private keys are stored encrypted (``tokens/key_encryption.py``), decrypted once per worker
when the cache first meets them. At start-up one that does not decrypt stops the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time

from flask import Flask, current_app, has_app_context

from oauth import audit
from oauth.config import ConfigError
from oauth.storage.db import connection, database, is_sqlite, write_transaction
from oauth.storage.models import SigningKey, utcnow
from oauth.tokens import jose as jwt
from oauth.tokens import key_encryption
from oauth.tokens.key_cache import CURRENT, PREVIOUS, REVOKED, STANDBY, KeyCache, Snapshot
from oauth.tokens.key_encryption import KeyEncryptionError

log = logging.getLogger(__name__)

__all__ = ["CURRENT", "PREVIOUS", "REVOKED", "STANDBY"]
EXTENSION = "portcullis.keys"
# "portkeys": serialises key state changes across processes on PostgreSQL (SQLite is
# serialised by BEGIN IMMEDIATE). Distinct from the migrations lock.
ADVISORY_LOCK_KEY = 0x706F72746B657973
# Seconds the JWKS (and discovery) may be cached: the Cache-Control max-age web/wellknown.py sends.
JWKS_MAX_AGE = 300


class KeyServiceError(Exception):
    """A key operation that cannot be done; the message is safe to show to an operator."""


def _cache(app: Flask | None = None) -> KeyCache:
    app = app or current_app._get_current_object()
    cache = app.extensions.get(EXTENSION)
    if cache is None:
        cache = app.extensions.setdefault(EXTENSION, KeyCache())
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
        for key in ensure_current_keys():
            log.info("created a current %s signing key", key.alg)
        cache.invalidate()
        cache.get(_refresh_seconds())
    except KeyEncryptionError as error:
        raise ConfigError(str(error)) from None


def _missing_algs() -> list[str]:
    present = {
        row.alg for row in SigningKey.select(SigningKey.alg).where(SigningKey.state == CURRENT)
    }
    return [alg for alg in jwt.SUPPORTED_ALGS if alg not in present]


def ensure_current_keys() -> list[SigningKey]:
    """Make sure each supported algorithm has a current key; returns the keys it had to
    create or promote (none usually)."""
    if not _missing_algs():
        return []
    with _key_lock():
        # Re-check under the lock: another worker may have won the race.
        made = [_rotate_locked(alg) for alg in _missing_algs()]
    _cache().invalidate()
    return made


@contextlib.contextmanager
def _key_lock():
    """A write transaction that excludes every other key state change, in any process."""
    with write_transaction():
        if not is_sqlite():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        yield


# -- reading ----------------------------------------------------------------------------------


def _snapshot() -> Snapshot:
    return _cache().get(_refresh_seconds())


def signing_key(alg: str | None = None) -> jwt.KeyMaterial:
    """The current key of ``alg`` (default: SIGNING_ALG); cached, created when missing."""
    alg = _check_alg(alg) if alg else _default_alg()
    current = _snapshot().current.get(alg)
    if current is None:
        ensure_current_keys()
        current = _snapshot().current.get(alg)
        if current is None:
            raise KeyServiceError(f"no current {alg} signing key: run `flask keys rotate`")
    if not current.can_sign:
        raise KeyServiceError(f"signing key {current.kid} does not decrypt: see the log")
    return current


# A snapshot older than KEYS_REFRESH_SECONDS plus this, right after a read that should have
# reloaded it, means this worker cannot reload its keys.
STALE_AFTER_SECONDS = 30


def health() -> dict:
    """What /healthz shows about signing keys (never any key material): a current key of
    SIGNING_ALG that signs, and the age of this worker's snapshot (reloaded here if due)."""
    alg = _default_alg()
    snapshot = _snapshot()
    age = time.monotonic() - snapshot.loaded_at
    summary = {"status": "ok", "algorithm": alg, "cache_age_seconds": round(age, 1)}
    current = snapshot.current.get(alg)
    if current is None:
        summary |= {"status": "error", "problem": f"no current {alg} signing key"}
    elif not current.can_sign:
        summary |= {"status": "error", "problem": f"the current {alg} key does not decrypt"}
    elif age > _refresh_seconds() + STALE_AFTER_SECONDS:
        summary |= {"status": "error", "problem": "this worker's key cache is stale"}
    return summary


def verification_keys() -> dict[str, jwt.KeyMaterial]:
    """Every published key by kid (current, standby and previous)."""
    return _snapshot().verification


def public_jwks() -> dict:
    """The JWK Set: current key first, then standby, then previous keys; no private members."""
    return {"keys": [dict(key) for key in published_jwks()]}


def published_jwks() -> tuple[dict, ...]:
    """The public JWKs of ``public_jwks`` as this worker's key snapshot holds them: the same
    tuple until the key cache reloads (a rotation here, or KEYS_REFRESH_SECONDS), so callers
    may cache what they derive from it. Read only: never modify it."""
    return _snapshot().jwks


def sign_jwt(claims: dict, *, typ: str = "JWT", alg: str | None = None) -> str:
    """Sign ``claims`` with the current key of ``alg`` (default: SIGNING_ALG)."""
    return signing_key(alg).sign(claims, typ=typ)


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


def _rotate_locked(alg: str) -> SigningKey:
    """Retire the current key of ``alg``; its oldest standby key, or a new one, signs now."""
    now = utcnow()
    query = SigningKey.select().where((SigningKey.state == STANDBY) & (SigningKey.alg == alg))
    key = query.order_by(SigningKey.created_at, SigningKey.kid).first()
    SigningKey.update(state=PREVIOUS, retired_at=now).where(
        (SigningKey.state == CURRENT) & (SigningKey.alg == alg)
    ).execute()
    if key is None:
        return _new_key(alg, CURRENT, now)
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
    """Rotate every algorithm together (only ``alg``, when given): its oldest standby key, or
    a new key, becomes current and the old one previous. Returns the new key of ``alg``, else
    of SIGNING_ALG. Takes effect at once here, and in other processes within the cache time."""
    algs = [_check_alg(alg)] if alg else list(jwt.SUPPORTED_ALGS)
    made = {}
    with _key_lock():
        for each in algs:
            old = SigningKey.select(SigningKey.kid).where(
                (SigningKey.state == CURRENT) & (SigningKey.alg == each)
            )
            old = old.first()
            made[each] = key = _rotate_locked(each)
            audit.record(
                "key.rotated", user_id=actor_id, kid=key.kid, alg=key.alg,
                previous_kid=old.kid if old else None,
            )  # fmt: skip
    _cache().invalidate()
    return made[alg or _default_alg()]


def unannounced_algs(alg: str | None = None) -> list[str]:
    """The algorithms whose rotation (``alg``'s, default every one's) would sign with a key
    published for less than JWKS_MAX_AGE: no standby key, or only younger ones (a rotation
    promotes the oldest standby key)."""
    algs = [_check_alg(alg)] if alg else list(jwt.SUPPORTED_ALGS)
    cutoff = utcnow() - dt.timedelta(seconds=JWKS_MAX_AGE)
    announced = SigningKey.select(SigningKey.alg).where(
        (SigningKey.state == STANDBY) & (SigningKey.created_at <= cutoff)
    )
    ready = {row.alg for row in announced}
    return [each for each in algs if each not in ready]


def rotation_risk(algs: list[str]) -> str | None:
    """What rotating now risks for ``algs`` (from ``unannounced_algs``), or None."""
    if not algs:
        return None
    return (
        f"no standby {' or '.join(algs)} key has been published for {JWKS_MAX_AGE} seconds: "
        f"resource servers that cache the JWKS (it is sent with Cache-Control max-age="
        f"{JWKS_MAX_AGE}) may reject tokens signed with the new key for up to {JWKS_MAX_AGE} "
        "seconds, until they fetch it again"
    )


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


def current_keys() -> list[SigningKey]:
    """The current key of each algorithm."""
    return list(SigningKey.select().where(SigningKey.state == CURRENT).order_by(SigningKey.alg))


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
