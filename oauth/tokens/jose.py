"""JOSE in one place: key generation, JWS signing and verification, JWK thumbprints, at_hash.

This is the only module that imports a JOSE library (python-jose); the rest of the project
talks to it through :class:`KeyMaterial`, :func:`verify` and :class:`InvalidTokenError`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from jose import jwk, jws
from jose.backends.base import Key
from jose.exceptions import JOSEError

from oauth import compact_json

SUPPORTED_ALGS = ("ES256", "RS256")
RSA_KEY_SIZE = 2048
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


# Our own tokens carry our own clock; a minute covers the skew between instances.
MAX_CLOCK_SKEW = 60


class InvalidTokenError(Exception):
    """The token does not verify. The message is short and never contains the token."""


class UnknownKeyError(InvalidTokenError):
    """The token names a ``kid`` that is not among the verification keys."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int, length: int | None = None) -> str:
    length = length or max(1, (value.bit_length() + 7) // 8)
    return b64url(value.to_bytes(length, "big"))


def _public_members(public_key) -> dict:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError("only P-256 EC keys are supported")
        numbers = public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url_uint(numbers.x, 32),
            "y": _b64url_uint(numbers.y, 32),
        }
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    raise ValueError("unsupported key type")


def thumbprint(public_jwk: dict) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url)."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[public_jwk["kty"]]
    canonical = json.dumps(
        {name: public_jwk[name] for name in required}, separators=(",", ":"), sort_keys=True
    )
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def generate_key(alg: str) -> tuple[str, dict, str]:
    """A new key pair: (private PEM, public JWK with kid/alg/use, kid)."""
    if alg == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
    else:
        raise ValueError(f"unsupported algorithm {alg!r}: use {' or '.join(SUPPORTED_ALGS)}")
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_jwk = _public_members(private_key.public_key())
    kid = thumbprint(public_jwk)
    public_jwk.update(kid=kid, alg=alg, use="sig")
    return private_pem, public_jwk, kid


def _load_private_key(private_pem: str, alg: str):
    private_key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    expected = ec.EllipticCurvePrivateKey if alg == "ES256" else rsa.RSAPrivateKey
    if not isinstance(private_key, expected):
        raise ValueError(f"the private key does not match alg {alg}")
    return private_key


class KeyMaterial:
    """One key: its public python-jose Key for verification and its private key for signing,
    each built once and reused for every token."""

    __slots__ = (
        "kid", "alg", "public_jwk", "_private_pem", "_public_key", "_signer", "_lock", "_headers",
    )  # fmt: skip

    def __init__(self, kid: str, alg: str, private_pem: str | None, public_jwk: dict) -> None:
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported algorithm {alg!r}")
        leaked = PRIVATE_JWK_MEMBERS & public_jwk.keys()
        if leaked:
            raise ValueError("the public JWK carries private members")
        self.kid = kid
        self.alg = alg
        self.public_jwk = dict(public_jwk, kid=kid, alg=alg, use="sig")
        self._private_pem = private_pem or None
        # A separate public Key for verification: python-jose warns when verifying with a
        # private RSA key, and the pytest config turns warnings into errors.
        self._public_key: Key = jwk.construct(
            {k: v for k, v in self.public_jwk.items() if k != "use"}, alg
        )
        self._signer = None  # the cryptography private key, once loaded
        self._lock = threading.Lock()
        self._headers: dict[str, bytes] = {}

    @property
    def can_sign(self) -> bool:
        return self._private_pem is not None

    def _signing_key(self):
        signer = self._signer
        if signer is None:
            if self._private_pem is None:
                raise ValueError(f"key {self.kid} has no private part")
            # Built lazily: previous and standby keys only verify, so they never pay for it.
            with self._lock:
                if self._signer is None:
                    self._signer = _load_private_key(self._private_pem, self.alg)
                signer = self._signer
        return signer

    def _header(self, typ: str) -> bytes:
        header = self._headers.get(typ)
        if header is None:
            fields = {"alg": self.alg, "kid": self.kid, "typ": typ}
            header = b64url(json.dumps(fields, separators=(",", ":")).encode("utf-8")).encode()
            if len(self._headers) < 8:  # our own few types; bounded all the same
                self._headers[typ] = header
        return header

    def sign(self, claims: dict, typ: str = "JWT") -> str:
        """A compact JWS over ``claims``; protected header ``{"alg", "kid", "typ"}``.

        Signed with ``cryptography`` directly: the header of each ``typ`` is encoded once per
        key, and ES256's DER signature becomes JWS's fixed-size ``r || s`` (RFC 7518 §3.4)."""
        payload = compact_json.dumps(claims)
        signing_input = self._header(typ) + b"." + b64url(payload).encode()
        key = self._signing_key()
        if self.alg == "ES256":
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return (signing_input + b"." + b64url(signature).encode()).decode("ascii")

    def verify(self, token: str | bytes) -> bytes:
        """The payload when the signature is valid for this key; InvalidTokenError otherwise."""
        try:
            return jws.verify(token, self._public_key, algorithms=[self.alg])
        except JOSEError:
            raise InvalidTokenError("invalid signature") from None

    def __repr__(self) -> str:
        return f"KeyMaterial(kid={self.kid!r}, alg={self.alg!r}, can_sign={self.can_sign})"


def unverified_header(token: str | bytes) -> dict:
    """The protected header, not verified; InvalidTokenError when it is malformed."""
    try:
        header = jws.get_unverified_header(token)
    except (JOSEError, UnicodeError, TypeError, AttributeError):
        raise InvalidTokenError("malformed token") from None
    return header


def _media_type(value: str) -> str:
    value = value.strip().lower()
    return value.removeprefix("application/")


def _numeric(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def verify(
    token: str,
    keys: dict[str, KeyMaterial],
    *,
    typ: str | None = None,
    leeway: int = 0,
    allow_expired: bool = False,
) -> dict:
    """Verify a compact JWS JWT with the key its ``kid`` names and return its claims
    (``allow_expired``: an expired one too, as an OIDC ``id_token_hint`` may be)."""
    if not isinstance(token, str | bytes) or not token:
        raise InvalidTokenError("malformed token")
    digest = hashlib.sha256(token.encode() if isinstance(token, str) else token).digest()
    seen = _verified.get((digest, typ))
    if seen is not None and keys.get(seen[0].kid) is seen[0]:
        claims = dict(seen[1])
    else:
        header = unverified_header(token)
        key = _key_for(header, keys, typ)
        claims = _claims(key.verify(token))
        _remember(digest, typ, key, claims)
    _check_times(claims, leeway, allow_expired)
    return claims


# Tokens whose signature verified, by SHA-256 and expected ``typ``: the same bytes verify the
# same way under the same key, and an ES256 verification is most of a UserInfo or
# introspection request's work (a resource server introspects one token many times). A hit
# needs the very key object that verified it among the keys passed in (a revoked or
# replaced key is not), and the times are checked on every use; failures are not kept.
VERIFIED_KEPT = 1024
_verified: dict[tuple[bytes, str | None], tuple[KeyMaterial, dict]] = {}


def _claims(payload: bytes) -> dict:
    try:
        claims = json.loads(payload)
    except (ValueError, UnicodeError):
        raise InvalidTokenError("malformed claims") from None
    if not isinstance(claims, dict):
        raise InvalidTokenError("malformed claims")
    return claims


def _remember(digest: bytes, typ: str | None, key: KeyMaterial, claims: dict) -> None:
    if len(_verified) >= VERIFIED_KEPT:  # bounded: forgetting only costs a verification
        _verified.clear()
    _verified[(digest, typ)] = (key, dict(claims))


def _key_for(header: dict, keys: dict[str, KeyMaterial], typ: str | None) -> KeyMaterial:
    """The key the header names, once the header is one we accept."""
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidTokenError("token has no kid")
    if "crit" in header:
        raise InvalidTokenError("unsupported critical header")
    if typ is not None:
        header_typ = header.get("typ")
        if not isinstance(header_typ, str) or _media_type(header_typ) != _media_type(typ):
            raise InvalidTokenError("wrong token type")
    key = keys.get(kid)
    if key is None:
        raise UnknownKeyError("unknown signing key")
    if header.get("alg") != key.alg:
        raise InvalidTokenError("algorithm does not match the key")
    return key


def _check_times(claims: dict, leeway: int, allow_expired: bool = False) -> None:
    now = time.time()
    exp = claims.get("exp")
    if not _numeric(exp):
        raise InvalidTokenError("token has no valid exp")
    if now >= exp + leeway and not allow_expired:
        raise InvalidTokenError("token expired")
    nbf = claims.get("nbf")
    if nbf is not None and (not _numeric(nbf) or now + leeway < nbf):
        raise InvalidTokenError("token not yet valid")
    iat = claims.get("iat")
    if iat is not None and (not _numeric(iat) or iat > now + leeway + MAX_CLOCK_SKEW):
        raise InvalidTokenError("token issued in the future")


def at_hash(access_token: str) -> str:
    """OIDC ``at_hash`` for ES256/RS256: left half of SHA-256, base64url without padding."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])
