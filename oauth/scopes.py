"""Scopes this server understands, with the plain words shown on the consent page."""

from __future__ import annotations

from flask import current_app

STANDARD_SCOPES: dict[str, str] = {
    "openid": "Confirm your identity (sign you in with your account)",
    "email": "See your email address",
    "profile": "See your name, picture and username",
    "phone": "See your phone number",
    "offline_access": "Stay connected to your account when you are not using the app",
}


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
