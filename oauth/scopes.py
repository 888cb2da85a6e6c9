"""Scopes this server understands, with the plain words shown on the consent page."""

from __future__ import annotations

import re

from flask import current_app

# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")

STANDARD_SCOPES: dict[str, str] = {
    "openid": "Confirm your identity (sign you in with your account)",
    "email": "See your email address",
    "profile": "See your name, picture and username",
    "phone": "See your phone number",
    "offline_access": "Stay connected to your account when you are not using the app",
}


def is_scope_token(value) -> bool:
    """Whether ``value`` is a single valid scope (printable ASCII, no space, quote or backslash)."""
    return isinstance(value, str) and SCOPE_TOKEN.fullmatch(value) is not None


def supported_scopes() -> dict[str, str]:
    """Standard scopes plus those plugins register (``register_scopes``), in a stable order."""
    extra = current_app.extensions.get("portcullis.extra_scopes", {})
    return {**STANDARD_SCOPES, **extra}


def parse(scope: str | None) -> list[str]:
    """Split a scope string, dropping duplicates but keeping the order."""
    seen: dict[str, None] = {}
    for item in (scope or "").split():
        seen.setdefault(item, None)
    return list(seen)


def unknown(scopes: list[str]) -> list[str]:
    known = supported_scopes()
    return [s for s in scopes if s not in known]


def describe(scopes: list[str]) -> list[tuple[str, str]]:
    known = supported_scopes()
    return [(s, known.get(s, s)) for s in scopes]
