"""Password hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def init_app(app: Flask) -> None:
    app.extensions["portcullis.password_hasher"] = PasswordHasher(
        time_cost=int(app.config["ARGON2_TIME_COST"]),
        memory_cost=int(app.config["ARGON2_MEMORY_COST"]),
        parallelism=int(app.config["ARGON2_PARALLELISM"]),
    )
    # Verifying against this when the account does not exist keeps login timing uniform.
    app.extensions["portcullis.dummy_hash"] = app.extensions["portcullis.password_hasher"].hash(
        "portcullis-dummy-password"
    )


def _hasher() -> PasswordHasher:
    return current_app.extensions["portcullis.password_hasher"]


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher().verify(
            password_hash or current_app.extensions["portcullis.dummy_hash"], password
        ) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters."
    return None
