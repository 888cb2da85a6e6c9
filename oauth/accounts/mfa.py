"""Second factors: TOTP (RFC 6238) and single-use recovery codes.

- The TOTP secret is sealed at rest under the key-encryption key ring that seals private
  signing keys (``tokens/key_encryption.py``), bound to its user; a pending enrolment becomes
  a factor only when a first code from the authenticator is entered.
- A code is accepted from the previous, current or next 30-second step, and only for a step
  later than the last one used (``last_used_step``, moved by a conditional UPDATE), so a code
  cannot be replayed inside its window, not even by two requests at once.
- Ten recovery codes are made at enrolment, shown once, stored as SHA-256 of the user id and
  the code (80 random bits each), and each spent by a conditional UPDATE.

Every check is the caller's to run under ``oauth.ratelimit.passwords.guarded``; every change
is audited here, in its transaction.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
import time
from urllib.parse import urlsplit

import pyotp
from flask import current_app

from oauth import audit, metrics
from oauth.accounts import passkeys
from oauth.security import KeyDecryptionError, sha256_hex
from oauth.storage.db import write_transaction
from oauth.storage.models import RecoveryCode, TotpFactor, User, utcnow
from oauth.tokens.claims import RECOVERY_METHOD, TOTP_METHOD, WEBAUTHN_METHOD
from oauth.tokens.key_encryption import keyring

log = logging.getLogger(__name__)

STEP_SECONDS = 30
DIGITS = 6
VALID_WINDOW = 1  # steps either side of now: clocks drift, people type slowly
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 10  # 80 bits: 16 base32 characters, shown in groups of four
SEAL_ALG = "TOTP"


class MfaError(Exception):
    """A second-factor change that cannot be made; the message is for the user."""


def _seal_kid(user_id: str) -> str:
    return f"totp:{user_id}"


def _seal(secret: str, user_id: str) -> str:
    return keyring().encrypt(secret, kid=_seal_kid(user_id), alg=SEAL_ALG)


def _open(row: TotpFactor) -> str | None:
    try:
        return keyring().decrypt(row.secret_sealed, kid=_seal_kid(row.user_id), alg=SEAL_ALG)
    except KeyDecryptionError as error:
        log.error("TOTP secret of user %s does not open: %s", row.user_id, error)
        return None


# --- what a user has -------------------------------------------------------------------------


def totp_factor(user: User) -> TotpFactor | None:
    """The user's confirmed TOTP factor, or None."""
    return TotpFactor.get_or_none(
        (TotpFactor.user == user.id) & TotpFactor.confirmed_at.is_null(False)
    )


def recovery_codes_left(user: User) -> int:
    return (
        RecoveryCode.select()
        .where((RecoveryCode.user == user.id) & RecoveryCode.used_at.is_null())
        .count()
    )


def has_second_factor(user: User) -> bool:
    """Whether sign-in asks this user for a second step (a confirmed factor exists)."""
    return totp_factor(user) is not None or passkeys.has_passkeys(user)


def factors(user: User) -> list[str]:
    """The user's factors, by method name (for the admin pages and the CLI)."""
    found = [TOTP_METHOD] if totp_factor(user) is not None else []
    return found + ([WEBAUTHN_METHOD] if passkeys.has_passkeys(user) else [])


def factors_by_user(user_ids: list[str]) -> dict[str, list[str]]:
    """{user id: factors} for a page of users, in one query."""
    rows = TotpFactor.select(TotpFactor.user).where(
        TotpFactor.user.in_(user_ids) & TotpFactor.confirmed_at.is_null(False)
    )
    found: dict[str, list[str]] = {user_id: [] for user_id in user_ids}
    for row in rows:
        found[row.user_id].append(TOTP_METHOD)
    for user_id in passkeys.users_with_passkeys(user_ids):
        found[user_id].append(WEBAUTHN_METHOD)
    return found


# --- enrolment -------------------------------------------------------------------------------


def provisioning_uri(secret: str, user: User) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    issuer = urlsplit(current_app.config["ISSUER"]).hostname or "Portcullis"
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=issuer
    )


def qr_code_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as an inline SVG ``data:`` URI (rendered here, no service)."""
    import segno  # only the enrolment page draws one: a worker that never does saves ~1 MB

    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def pending_secret(user: User) -> str | None:
    """The secret of an enrolment that is started and not yet confirmed."""
    row = TotpFactor.get_or_none((TotpFactor.user == user.id) & TotpFactor.confirmed_at.is_null())
    return _open(row) if row is not None else None


def start_enrolment(user: User) -> str:
    """A new secret for ``user`` (replacing an unconfirmed one); MfaError if TOTP is on."""
    secret = pyotp.random_base32()  # 160 bits, RFC 4226's recommendation
    with write_transaction():
        if totp_factor(user) is not None:
            raise MfaError("An authenticator app is already set up. Remove it first.")
        TotpFactor.delete().where(TotpFactor.user == user.id).execute()
        TotpFactor.create(user=user.id, secret_sealed=_seal(secret, user.id))
    return secret


def _matching_step(secret: str, code: str, now: float) -> int | None:
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step  # no early exit: the same work whichever step matches
    return found


def _spend_step(row: TotpFactor, step: int) -> bool:
    """Record ``step`` as used unless it (or a later one) already was: one winner."""
    spent = (
        TotpFactor.update(last_used_step=step)
        .where(
            (TotpFactor.id == row.id)
            & (TotpFactor.last_used_step.is_null() | (TotpFactor.last_used_step < step))
        )
        .execute()
    )
    return spent == 1


def _normalise_totp(code: str) -> str | None:
    code = "".join((code or "").split())
    return code if len(code) == DIGITS and code.isascii() and code.isdigit() else None


def confirm_enrolment(user: User, code: str) -> list[str] | None:
    """Turn the pending enrolment into the user's factor when ``code`` is right; returns the
    new recovery codes (shown once), or None (a wrong code, or no enrolment started)."""
    row = TotpFactor.get_or_none((TotpFactor.user == user.id) & TotpFactor.confirmed_at.is_null())
    normalised = _normalise_totp(code)
    secret = _open(row) if row is not None else None
    step = _matching_step(secret, normalised, time.time()) if secret and normalised else None
    if step is None:
        return None
    with write_transaction():
        if not _spend_step(row, step):
            return None
        TotpFactor.update(confirmed_at=utcnow()).where(TotpFactor.id == row.id).execute()
        codes = _replace_recovery_codes(user)
        audit.record("mfa.totp.enabled", user_id=user.id)
    return codes


# --- recovery codes --------------------------------------------------------------------------


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())[:64]


def _recovery_hash(user_id: str, code: str) -> str:
    return sha256_hex(f"recovery:{user_id}:{_normalise_recovery(code)}")


def _new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4)).lower()


def _replace_recovery_codes(user: User) -> list[str]:
    """In the caller's transaction: ten fresh codes; the old ones stop working."""
    RecoveryCode.delete().where(RecoveryCode.user == user.id).execute()
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.insert_many(
        [{"user": user.id, "code_hash": _recovery_hash(user.id, c)} for c in codes]
    ).execute()
    return codes


def regenerate_recovery_codes(user: User) -> list[str]:
    """Ten new recovery codes for a user with a factor (the caller proved a second factor
    or the password); the old codes stop working."""
    with write_transaction():
        if totp_factor(user) is None:
            raise MfaError("Set up an authenticator app first.")
        codes = _replace_recovery_codes(user)
        audit.record("mfa.recovery_codes.regenerated", user_id=user.id)
    return codes


def _spend_recovery_code(user: User, code: str) -> bool:
    with write_transaction():
        spent = (
            RecoveryCode.update(used_at=utcnow())
            .where(
                (RecoveryCode.user == user.id)
                & (RecoveryCode.code_hash == _recovery_hash(user.id, code))
                & RecoveryCode.used_at.is_null()
            )
            .execute()
        )
        if spent:
            audit.record("mfa.recovery_code.used", user_id=user.id, left=recovery_codes_left(user))
    return spent == 1


# --- checking a code -------------------------------------------------------------------------


def _check_totp(user: User, code: str) -> bool:
    row = totp_factor(user)
    secret = _open(row) if row is not None else None
    step = _matching_step(secret, code, time.time()) if secret else None
    if step is None:
        return False
    with write_transaction():
        return _spend_step(row, step)


def verify(user: User, code: str) -> str | None:
    """The method a right ``code`` proves (``totp`` or ``recovery``), else None. A TOTP code
    of a step already used and a spent recovery code are wrong codes."""
    if totp_factor(user) is None:
        return None
    totp_code = _normalise_totp(code)
    if totp_code is not None:
        method = TOTP_METHOD if _check_totp(user, totp_code) else None
    elif _normalise_recovery(code) and _spend_recovery_code(user, code):
        method = RECOVERY_METHOD
    else:
        method = None
    with write_transaction():
        if method is None:
            audit.record("mfa.failed", user_id=user.id)
        else:
            audit.record("mfa.verified", user_id=user.id, method=method)
    if method is None:
        metrics.SIGN_IN_FAILURES.labels("second_factor").inc()
    return method


def rewrap_secrets() -> int:
    """Re-seal every TOTP secret under the current KEK (after ``flask keys rewrap``), all or
    nothing; MfaError names the first user whose secret no configured KEK opens."""
    ring = keyring()
    with write_transaction():
        rows = list(TotpFactor.select().order_by(TotpFactor.id))
        for row in rows:
            try:
                secret = ring.decrypt(row.secret_sealed, kid=_seal_kid(row.user_id), alg=SEAL_ALG)
            except KeyDecryptionError as error:
                raise MfaError(f"TOTP secret of user {row.user_id}: {error}") from None
            sealed = _seal(secret, row.user_id)
            TotpFactor.update(secret_sealed=sealed).where(TotpFactor.id == row.id).execute()
    return len(rows)


# --- removing --------------------------------------------------------------------------------


def _delete_all(user: User) -> int:
    removed = TotpFactor.delete().where(TotpFactor.user == user.id).execute()
    RecoveryCode.delete().where(RecoveryCode.user == user.id).execute()
    return removed


def disable_totp(user: User) -> None:
    """The user removes their authenticator (after proving the password or a code)."""
    with write_transaction():
        _delete_all(user)
        audit.record("mfa.totp.disabled", user_id=user.id)


def reset(user: User, *, actor_id: str | None, via: str) -> list[str]:
    """An admin removes every second factor of ``user`` (lost phone); returns what was removed."""
    with write_transaction():
        removed = factors(user)
        _delete_all(user)
        passkeys.remove_all(user, actor_id=actor_id)
        audit.record("mfa.reset", user_id=user.id, actor=actor_id, via=via, factors=removed)
    return removed
