"""Passkeys (WebAuthn, with py_webauthn): registered on /settings/security, used as a second
factor at /login/mfa and as a sign-in without a password.

The relying party is the issuer: its host is the RP id, its origin the only origin accepted.
A ceremony's challenge lives in this browser's (signed) Flask session with its purpose, its
user and an expiry; answering it spends it in ``webauthn_challenge`` first, so a challenge is
answered at most once, whatever copies of the cookie exist. Every passkey is discoverable and
verifies its user (PIN, biometrics): it is then a whole multi-factor sign-in by itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
import types
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import peewee
from flask import current_app, session

from oauth import audit, metrics
from oauth.security import sha256_hex
from oauth.storage.db import write_transaction
from oauth.storage.models import BaseModel, JSONField, User, utcnow

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

CHALLENGE_TTL = 300  # seconds a ceremony may take
SESSION_KEY = "webauthn"
MAX_NAME_LENGTH = 100
MAX_RESPONSE_LENGTH = 64 * 1024  # characters of the browser's JSON answer


@functools.cache
def _webauthn() -> types.SimpleNamespace:
    """py_webauthn, imported by the first ceremony instead of by every worker at start-up:
    with the pyOpenSSL and x509 code it loads, it is about 14 MB of each worker's memory that
    a worker serving only tokens never uses (issue 13)."""
    import webauthn
    from webauthn.helpers import bytes_to_base64url, parse_authentication_credential_json
    from webauthn.helpers.exceptions import WebAuthnException
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        AuthenticatorTransport,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    return types.SimpleNamespace(
        base64url_to_bytes=webauthn.base64url_to_bytes,
        generate_authentication_options=webauthn.generate_authentication_options,
        generate_registration_options=webauthn.generate_registration_options,
        options_to_json=webauthn.options_to_json,
        verify_authentication_response=webauthn.verify_authentication_response,
        verify_registration_response=webauthn.verify_registration_response,
        bytes_to_base64url=bytes_to_base64url,
        parse_authentication_credential_json=parse_authentication_credential_json,
        WebAuthnException=WebAuthnException,
        AuthenticatorSelectionCriteria=AuthenticatorSelectionCriteria,
        AuthenticatorTransport=AuthenticatorTransport,
        PublicKeyCredentialDescriptor=PublicKeyCredentialDescriptor,
        ResidentKeyRequirement=ResidentKeyRequirement,
        UserVerificationRequirement=UserVerificationRequirement,
        transports=frozenset(t.value for t in AuthenticatorTransport),
    )


class _Lazy:
    """``lib.name``: ``_webauthn().name``, so the library loads on first use."""

    def __getattr__(self, name: str):
        return getattr(_webauthn(), name)


lib = _Lazy()


class WebAuthnCredential(BaseModel):
    """One registered passkey: its id, COSE public key and signature counter."""

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="passkeys")
    credential_id = peewee.CharField(max_length=1400, unique=True)  # base64url
    public_key = peewee.TextField()  # base64url of the COSE key
    sign_count = peewee.BigIntegerField(default=0)
    transports = JSONField(default=list)
    name = peewee.CharField(max_length=MAX_NAME_LENGTH)
    created_at = peewee.DateTimeField(default=utcnow)
    last_used_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "webauthn_credential"


class WebAuthnChallenge(BaseModel):
    """A challenge already answered (its hash), kept until it would have expired anyway."""

    challenge_hash = peewee.CharField(primary_key=True, max_length=64)
    expires_at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "webauthn_challenge"


class PasskeyError(Exception):
    """A ceremony refused: the message is safe to show."""


def relying_party() -> tuple[str, str]:
    """(RP id, origin) from the issuer: its host, and scheme://host[:port]."""
    parts = urlsplit(current_app.config["ISSUER"])
    host = (parts.hostname or "").lower()
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default_port else ""
    return host, f"{parts.scheme}://{host}{port}"


# --- challenges -------------------------------------------------------------------------


def _remember(purpose: str, challenge: bytes, user_id: str | None, **extra) -> None:
    session[SESSION_KEY] = {
        "purpose": purpose,
        "challenge": lib.bytes_to_base64url(challenge),
        "user": user_id,
        "expires": int(time.time()) + CHALLENGE_TTL,
        **extra,
    }


def _take(purpose: str, user_id: str | None) -> dict:
    """This browser's pending ``purpose`` ceremony for ``user_id``, spent (single use)."""
    state = session.pop(SESSION_KEY, None)
    if not isinstance(state, dict) or state.get("purpose") != purpose:
        raise PasskeyError("No passkey request is in progress here. Please try again.")
    if state.get("user") != user_id or int(state.get("expires", 0)) < time.time():
        raise PasskeyError("The passkey request expired. Please try again.")
    now = utcnow()
    try:
        with write_transaction():
            WebAuthnChallenge.delete().where(WebAuthnChallenge.expires_at <= now).execute()
            WebAuthnChallenge.create(
                challenge_hash=sha256_hex(state["challenge"]),
                expires_at=now + dt.timedelta(seconds=CHALLENGE_TTL),
            )
    except peewee.IntegrityError:
        raise PasskeyError("This passkey request was already answered. Please try again.") from None
    return state


def _check_size(response_json: str) -> None:
    if not isinstance(response_json, str) or not 0 < len(response_json) <= MAX_RESPONSE_LENGTH:
        raise PasskeyError("The passkey answer is missing or too large.")


# --- registration -----------------------------------------------------------------------


def list_for(user: User) -> list[WebAuthnCredential]:
    query = WebAuthnCredential.select().where(WebAuthnCredential.user == user.id)
    return list(query.order_by(WebAuthnCredential.created_at, WebAuthnCredential.id))


def has_passkeys(user: User) -> bool:
    return WebAuthnCredential.select().where(WebAuthnCredential.user == user.id).exists()


def users_with_passkeys(user_ids: list[str]) -> set[str]:
    """Which of ``user_ids`` have a passkey (one query, for a page of users)."""
    rows = WebAuthnCredential.select(WebAuthnCredential.user).where(
        WebAuthnCredential.user.in_(user_ids)
    )
    return {row.user_id for row in rows.distinct()}


def _descriptors(rows: list[WebAuthnCredential]) -> list[PublicKeyCredentialDescriptor]:
    return [
        lib.PublicKeyCredentialDescriptor(
            id=lib.base64url_to_bytes(row.credential_id),
            transports=[
                lib.AuthenticatorTransport(t) for t in row.transports if t in lib.transports
            ],
        )
        for row in rows
    ]


def clean_name(name: str | None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise PasskeyError("Give the passkey a name, such as the device it is on.")
    if len(name) > MAX_NAME_LENGTH:
        raise PasskeyError(f"The name may have at most {MAX_NAME_LENGTH} characters.")
    return name


def registration_options(user: User, *, name: str, browser_session: str | None) -> str:
    """Start registering a passkey named ``name`` (the caller proved the password): JSON."""
    rp_id, _ = relying_party()
    options = lib.generate_registration_options(
        rp_id=rp_id,
        rp_name="Portcullis",
        user_name=user.email,
        user_id=user.id.encode(),
        user_display_name=user.name or user.email,
        timeout=CHALLENGE_TTL * 1000,
        authenticator_selection=lib.AuthenticatorSelectionCriteria(
            resident_key=lib.ResidentKeyRequirement.REQUIRED,
            user_verification=lib.UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(list_for(user)),
    )
    _remember("register", options.challenge, user.id, name=clean_name(name), bs=browser_session)
    return lib.options_to_json(options)


def _transports(response: dict) -> list[str]:
    found = (response.get("response") or {}).get("transports") or []
    return [t for t in found if isinstance(t, str) and t in lib.transports][:8]


def finish_registration(
    user: User, response_json: str, *, browser_session: str | None
) -> WebAuthnCredential:
    """Verify the browser's answer to ``registration_options`` and store the passkey."""
    _check_size(response_json)
    state = _take("register", user.id)
    if state.get("bs") != browser_session:
        raise PasskeyError("The passkey request expired. Please try again.")
    rp_id, origin = relying_party()
    try:
        verified = lib.verify_registration_response(
            credential=response_json,
            expected_challenge=lib.base64url_to_bytes(state["challenge"]),
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
        transports = _transports(current_app.json.loads(response_json))
    except (lib.WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        raise PasskeyError("The passkey could not be verified.") from None
    try:
        with write_transaction():
            row = WebAuthnCredential.create(
                user=user.id,
                credential_id=lib.bytes_to_base64url(verified.credential_id),
                public_key=lib.bytes_to_base64url(verified.credential_public_key),
                sign_count=verified.sign_count,
                transports=transports,
                name=state["name"],
            )
            audit.record("passkey.added", user_id=user.id, passkey=row.id, name=row.name)
    except peewee.IntegrityError:
        raise PasskeyError("This passkey is already registered.") from None
    return row


def remove(user: User, passkey_id: int) -> bool:
    """Remove one of ``user``'s passkeys; False when they have none with that id."""
    with write_transaction():
        row = WebAuthnCredential.get_or_none(
            (WebAuthnCredential.id == passkey_id) & (WebAuthnCredential.user == user.id)
        )
        if row is None:
            return False
        row.delete_instance()
        audit.record("passkey.removed", user_id=user.id, passkey=row.id, name=row.name)
    return True


def remove_all(user: User, *, actor_id: str | None = None) -> int:
    """Remove every passkey of ``user`` (an admin's factor reset): the number removed."""
    with write_transaction():
        count = WebAuthnCredential.delete().where(WebAuthnCredential.user == user.id).execute()
        if count:
            audit.record("passkeys.removed", user_id=user.id, count=count, actor=actor_id)
    return count


# --- authentication ---------------------------------------------------------------------


def authentication_options(purpose: str, user: User | None = None) -> str:
    """Start an assertion: ``login`` (no user yet: any discoverable passkey, user verification
    required) or ``mfa`` (the second step of ``user``'s sign-in: their passkeys)."""
    rp_id, _ = relying_party()
    options = lib.generate_authentication_options(
        rp_id=rp_id,
        timeout=CHALLENGE_TTL * 1000,
        allow_credentials=_descriptors(list_for(user)) if user is not None else [],
        user_verification=(
            lib.UserVerificationRequirement.REQUIRED
            if user is None
            else lib.UserVerificationRequirement.PREFERRED
        ),
    )
    _remember(purpose, options.challenge, user.id if user is not None else None)
    return lib.options_to_json(options)


def _find_credential(parsed, user: User | None) -> WebAuthnCredential:
    row = (
        WebAuthnCredential.select(WebAuthnCredential, User)
        .join(User)
        .where(WebAuthnCredential.credential_id == lib.bytes_to_base64url(parsed.raw_id))
        .first()
    )
    if row is None or (user is not None and row.user_id != user.id):
        raise PasskeyError("This passkey is not registered for this account.")
    if user is None and (parsed.response.user_handle or b"") != row.user_id.encode():
        raise PasskeyError("This passkey is not registered for this account.")
    if row.user.disabled:
        raise PasskeyError("This passkey is not registered for this account.")
    required = current_app.config.get("EMAIL_VERIFICATION") == "required"
    if user is None and required and not row.user.email_verified:
        raise PasskeyError("Confirm your email address first: open the link we mailed you.")
    return row


def _check_assertion(state: dict, response_json: str, user: User | None) -> WebAuthnCredential:
    rp_id, origin = relying_party()
    try:
        parsed = lib.parse_authentication_credential_json(response_json)
    except (lib.WebAuthnException, ValueError, TypeError, KeyError, AttributeError):
        raise PasskeyError("The passkey could not be verified.") from None
    row = _find_credential(parsed, user)
    try:
        verified = lib.verify_authentication_response(
            credential=parsed,
            expected_challenge=lib.base64url_to_bytes(state["challenge"]),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=lib.base64url_to_bytes(row.public_key),
            credential_current_sign_count=row.sign_count,
            require_user_verification=user is None,
        )
    except (lib.WebAuthnException, ValueError, TypeError, KeyError, AttributeError) as error:
        if "sign count" in str(error):
            raise PasskeyError("This passkey's signature counter went backwards.") from None
        raise PasskeyError("The passkey could not be verified.") from None
    new = verified.new_sign_count
    # Counters only move forwards (an authenticator without one always says 0); re-checked
    # under the write lock, so a concurrent use of the same counter value loses here.
    forwards = WebAuthnCredential.sign_count < new if new else WebAuthnCredential.sign_count == 0
    with write_transaction():
        moved = (
            WebAuthnCredential.update(sign_count=new, last_used_at=utcnow())
            .where((WebAuthnCredential.id == row.id) & forwards)
            .execute()
        )
        if not moved:
            raise PasskeyError("This passkey's signature counter went backwards.")
        if user is None:
            User.update(last_sign_in_at=utcnow()).where(User.id == row.user_id).execute()
            audit.record("login.succeeded", user_id=row.user_id, method="webauthn")
        else:
            audit.record("mfa.verified", user_id=row.user_id, method="webauthn")
    return row


def verify_assertion(purpose: str, response_json: str, user: User | None = None):
    """The passkey that answered this browser's pending ``purpose`` challenge (for ``user``
    when given), its counter moved on; PasskeyError (audited) when refused."""
    _check_size(response_json)
    try:
        state = _take(purpose, user.id if user is not None else None)
        return _check_assertion(state, response_json, user)
    except PasskeyError as error:
        with write_transaction():
            audit.record(
                "login.failed" if user is None else "mfa.failed",
                user_id=user.id if user is not None else None,
                method="webauthn",
                reason=str(error),
            )
        metrics.SIGN_IN_FAILURES.labels("passkey" if user is None else "second_factor").inc()
        raise
