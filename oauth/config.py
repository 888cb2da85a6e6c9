"""Configuration: defaults -> instance/config.py -> PORTCULLIS_* environment -> test_config."""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SUPPORTED_DATABASE_SCHEMES = ("sqlite", "postgres", "postgresql")
BOOLEAN_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
# Read from the environment before any configuration exists (Flask's instance folder).
ENVIRONMENT_ONLY = ("INSTANCE_PATH",)
# PORTCULLIS_TEST_* and PORTCULLIS_REQUIRE_* belong to the test suite and CI, not the server.
HARNESS_PREFIXES = ("TEST_", "REQUIRE_")
# The key that encrypts the private signing keys: 32 random characters or more.
MIN_KEY_ENCRYPTION_KEY_LENGTH = 32

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A setting that makes start-up impossible; its message names the setting."""


def defaults(app: Flask) -> dict:
    """Every setting and its default (the README's table lists the same)."""
    return {**_core(app), **_limits(), **_accounts(app), **_outbound(), **_operations()}


def _core(app: Flask) -> dict:
    return {
        "ISSUER": "http://127.0.0.1:5000",
        "DATABASE_URL": f"sqlite:///{Path(app.instance_path) / 'portcullis.db'}",
        "SECRET_KEY": None,
        # Key-encryption keys of the private signing keys: None derives one from SECRET_KEY;
        # else "new,old,...": the first encrypts, every one decrypts (rotation).
        "KEY_ENCRYPTION_KEY": None,
        "PLUGINS_DIR": str(PROJECT_ROOT / "plugins"),
        "DISABLED_PLUGINS": [],
        "ACCESS_TOKEN_TTL": 3600,
        "AUTHORIZATION_TTL": 600,
        "REFRESH_TOKEN_REUSE_INTERVAL": 10,
        "DEFAULT_SCOPE": "email",
        "DEFAULT_AUDIENCE": "authenticated",
        # The API identifier a client_credentials request gets when it names none.
        "DEFAULT_API": None,
        "HTTP_HOOK_URL": None,
        "HTTP_HOOK_SECRET": None,
        "HTTP_HOOK_TIMEOUT": 5,
        "SIGNING_ALG": "ES256",
        # Seconds each worker keeps signing keys and registry lookups (clients, APIs, grants).
        "KEYS_REFRESH_SECONDS": 5,
        "REGISTRY_CACHE_SECONDS": 5,
        # The token endpoint answers well-formed client-credentials requests without Flask
        # and Authlib around them (oauth/protocol/lean_token.py); False: always the full path.
        "LEAN_TOKEN_LANE": True,
        "ALLOW_SIGNUP": True,
        "ALLOW_DYNAMIC_REGISTRATION": False,
        "AUTO_MIGRATE": True,
        # The management REST API /api/v1 and its built-in API {ISSUER}/api/v1 (oauth/api).
        "MANAGEMENT_API": True,
    }


def _limits() -> dict:
    return {
        "REGISTRATION_RATE_LIMIT": "10 per hour",
        "CLIENT_AUTH_RATE_LIMIT": "20 per minute",
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "database://",
        # Failed password checks: per account from one IP (stepped: a back-off), per IP over
        # all accounts, per account from browsers that never signed in to it (device cookies).
        "LOGIN_RATE_LIMIT": "10 per minute; 30 per hour; 100 per day",
        "LOGIN_IP_RATE_LIMIT": "50 per minute; 300 per hour",
        "LOGIN_ACCOUNT_RATE_LIMIT": "100 per hour",
        "SIGNUP_RATE_LIMIT": "10 per hour",
        # Passkey sign-ins per IP (no password, so no account to count them under yet).
        "PASSKEY_RATE_LIMIT": "30 per minute; 300 per hour",
        # Reset and verification mails: requests per IP, and mails per address.
        "MAIL_IP_RATE_LIMIT": "20 per hour",
        "MAIL_ADDRESS_RATE_LIMIT": "3 per 15 minutes; 10 per day",
        # Authorization requests from browsers nobody is signed in to (each costs a page, no row).
        "AUTHORIZE_RATE_LIMIT": "60 per minute; 600 per hour",
    }


def _accounts(app: Flask) -> dict:
    return {
        # Where mail goes (smtp://, smtp+starttls://, smtps://, or file:// .eml files).
        "MAIL_URL": f"file://{Path(app.instance_path) / 'outbox'}",
        "MAIL_FROM": None,
        "MAIL_TIMEOUT": 10,
        "EMAIL_VERIFICATION": "optional",
        "EMAIL_VERIFICATION_TTL": 86400,
        # argon2id cost: the RFC 9106 "second recommended" profile (64 MiB, 3 passes).
        "ARGON2_TIME_COST": 3,
        "ARGON2_MEMORY_COST": 65536,
        "ARGON2_PARALLELISM": 4,
        # Browser sessions (seconds): signed out after this long idle, and after this long at all.
        "BROWSER_SESSION_IDLE_TTL": 14 * 24 * 3600,
        "BROWSER_SESSION_TTL": 30 * 24 * 3600,
        "SECOND_STEP_TTL": 300,  # seconds from the password to the second factor (/login/mfa)
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
    }


def _outbound() -> dict:
    return {
        # Reverse proxies in front whose X-Forwarded-For/-Proto/-Host are believed (0: none).
        "PROXY_HOPS": 0,
        # Client ID Metadata Documents (MCP): https client_ids fetched, and how often.
        "CLIENT_ID_METADATA_DOCUMENTS": True,
        "METADATA_FETCH_RATE_LIMIT": "20 per minute; 200 per hour",
        "METADATA_FETCH_HOST_RATE_LIMIT": "30 per minute",
        # Outbound fetches (metadata documents, back-channel logout) may reach loopback and private
        # addresses: tests and closed networks only.
        "FETCH_ALLOW_PRIVATE_ADDRESSES": False,
        # Back-Channel Logout: seconds one delivery may take, attempts before a token is dropped.
        "BACKCHANNEL_LOGOUT_TIMEOUT": 5,
        "BACKCHANNEL_LOGOUT_MAX_ATTEMPTS": 8,
    }


def _operations() -> dict:
    return {
        # text, or json: one JSON object per line on stderr (every record, with request_id).
        "LOG_FORMAT": "text",
        # /metrics answers loopback callers, and others presenting this bearer token.
        "METRICS_TOKEN": None,
        # Spooled audit events (client credentials) reach the table this often, at the latest;
        # FSYNC: each one is synced to disk before the token is sent (survives a power loss).
        "AUDIT_SPOOL_FLUSH_SECONDS": 1,
        "AUDIT_SPOOL_FSYNC": False,
    }


def load_config(app: Flask, test_config: dict | None = None, prepare: bool = True) -> None:
    """Layer the configuration onto ``app.config`` and validate it; ``prepare``: also create
    the instance folder and the secret key (``prepare_instance``)."""
    known = defaults(app)
    app.config.from_mapping(known)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("PORTCULLIS")
    warn_unknown_variables(known)
    if test_config:
        app.config.from_mapping(test_config)
    _check_types(app, known)
    _normalise(app)
    validate(app)
    if prepare:
        prepare_instance(app)


def prepare_instance(app: Flask) -> None:
    """The instance folder (created, writable) and the secret key (generated on first use).
    Deferred for ``flask --help``, which must leave a fresh instance untouched."""
    instance = Path(app.instance_path)
    try:
        instance.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"instance folder {instance}: cannot be created ({error.strerror})"
        ) from None
    if not os.access(instance, os.W_OK | os.X_OK):
        raise ConfigError(f"instance folder {instance}: not writable")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = load_or_create_secret_key(instance)


def _normalise(app: Flask) -> None:
    config = app.config
    config["ISSUER"] = str(config["ISSUER"]).rstrip("/")
    disabled = config["DISABLED_PLUGINS"]
    if isinstance(disabled, str):
        disabled = [name.strip() for name in disabled.split(",") if name.strip()]
    config["DISABLED_PLUGINS"] = list(disabled)
    config["SESSION_COOKIE_SECURE"] = config["ISSUER"].startswith("https://")
    config["EMAIL_VERIFICATION"] = str(config["EMAIL_VERIFICATION"]).strip().lower()
    if not config["MAIL_FROM"]:
        host = urlsplit(config["ISSUER"]).hostname or "localhost"
        config["MAIL_FROM"] = f"Portcullis <no-reply@{host}>"
    config["KEY_ENCRYPTION_KEY"] = _key_encryption_keys(config["KEY_ENCRYPTION_KEY"])
    config["LOG_FORMAT"] = str(config["LOG_FORMAT"]).strip().lower()
    if config["METRICS_TOKEN"] is not None:  # all digits reads as a number from the environment
        config["METRICS_TOKEN"] = str(config["METRICS_TOKEN"]).strip() or None


def _key_encryption_keys(value) -> list[str] | None:
    """KEY_ENCRYPTION_KEY as a list (comma-separated in the environment, or a list in
    instance/config.py); None when unset. The first one, which encrypts, must be long."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # the environment loader reads an all-digit value as a number
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            "PORTCULLIS_KEY_ENCRYPTION_KEY: expected comma-separated keys (new first), "
            f"got {type(value).__name__}"
        )
    keys = list(dict.fromkeys(v.strip() for v in value if v.strip()))
    if not keys:
        return None
    if len(keys[0]) < MIN_KEY_ENCRYPTION_KEY_LENGTH:
        raise ConfigError(
            f"PORTCULLIS_KEY_ENCRYPTION_KEY: the first key (the one that encrypts) has "
            f"{len(keys[0])} characters; use at least {MIN_KEY_ENCRYPTION_KEY_LENGTH}, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return keys


def key_encryption_secrets(config) -> list[str]:
    """The secrets the key-encryption keys derive from, the encrypting one first:
    KEY_ENCRYPTION_KEY's keys, or else SECRET_KEY."""
    explicit = config.get("KEY_ENCRYPTION_KEY")
    if explicit:
        return list(explicit)
    secret = config["SECRET_KEY"]
    return [secret.decode("latin-1") if isinstance(secret, bytes) else str(secret)]


def key_encryption_setting(config) -> str:
    """The setting an operator fixes when a private key does not decrypt."""
    if config.get("KEY_ENCRYPTION_KEY"):
        return "PORTCULLIS_KEY_ENCRYPTION_KEY"
    return "PORTCULLIS_KEY_ENCRYPTION_KEY (unset: derived from PORTCULLIS_SECRET_KEY)"


def warn_unknown_variables(known: dict, environ=None) -> list[str]:
    """Warn about each ``PORTCULLIS_*`` variable that is no setting, naming the closest one."""
    names = [*known, *ENVIRONMENT_ONLY]
    unknown = []
    for variable in sorted(environ if environ is not None else os.environ):
        name = variable.removeprefix("PORTCULLIS_")
        if variable.startswith("PORTCULLIS_") and name not in names:
            if name.startswith(HARNESS_PREFIXES):
                continue
            match = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f" (did you mean PORTCULLIS_{match[0]}?)" if match else ""
            log.warning("unknown setting %s is ignored%s", variable, hint)
            unknown.append(variable)
    return unknown


def _check_types(app: Flask, known: dict) -> None:
    """Booleans and numbers are what their defaults are; a word we do not know stops start-up."""
    for name, default in known.items():
        if isinstance(default, bool):
            app.config[name] = _as_bool(name, app.config.get(name))
        elif isinstance(default, int):
            app.config[name] = _as_number(name, app.config.get(name))


def _as_bool(name: str, value) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in BOOLEAN_WORDS:
        raise ConfigError(f"PORTCULLIS_{name}: expected true/false/1/0/yes/no, got {value!r}")
    return BOOLEAN_WORDS[word]


def _as_number(name: str, value):
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise ConfigError(f"PORTCULLIS_{name}: expected a number, got {value!r}") from None
    return int(number) if number.is_integer() else number


def validate(app: Flask) -> None:
    config = app.config
    issuer = urlsplit(config["ISSUER"])
    if issuer.scheme not in ("http", "https") or not issuer.netloc or issuer.query:
        raise ConfigError(
            f"PORTCULLIS_ISSUER: {config['ISSUER']!r} is not an absolute http(s) URL without query"
        )
    scheme = urlsplit(str(config["DATABASE_URL"])).scheme.split("+")[0]
    if scheme not in SUPPORTED_DATABASE_SCHEMES:
        raise ConfigError(
            f"PORTCULLIS_DATABASE_URL: unsupported scheme {scheme!r} "
            "(use sqlite:///PATH or postgresql://USER@HOST/DB)"
        )
    for name in (
        "ACCESS_TOKEN_TTL",
        "AUTHORIZATION_TTL",
        "REFRESH_TOKEN_REUSE_INTERVAL",
        "BROWSER_SESSION_IDLE_TTL",
        "BROWSER_SESSION_TTL",
        "SECOND_STEP_TTL",
    ):
        value = config[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(
                f"PORTCULLIS_{name}: expected a whole number of seconds, got {value!r}"
            )
    _validate_mail(config)
    _validate_operations(config)
    if config["SIGNING_ALG"] not in ("ES256", "RS256"):
        raise ConfigError(
            f"PORTCULLIS_SIGNING_ALG: expected ES256 or RS256, got {config['SIGNING_ALG']!r}"
        )


MAIL_SCHEMES = ("smtp", "smtp+starttls", "smtps", "file")
EMAIL_VERIFICATION_MODES = ("optional", "required", "off")


def _validate_mail(config) -> None:
    url = urlsplit(str(config["MAIL_URL"]))
    if url.scheme not in MAIL_SCHEMES or (url.scheme == "file" and not url.path):
        raise ConfigError(
            f"PORTCULLIS_MAIL_URL: expected smtp://[user:password@]host[:port], "
            f"smtp+starttls://..., smtps://... or file:///folder, got {url.scheme or 'no'} scheme"
        )
    if url.scheme != "file" and not url.hostname:
        raise ConfigError("PORTCULLIS_MAIL_URL: the SMTP URL names no host")
    try:
        url.port  # noqa: B018  # raises on a port that is no number
    except ValueError:
        raise ConfigError("PORTCULLIS_MAIL_URL: the port is not a number") from None
    if config["EMAIL_VERIFICATION"] not in EMAIL_VERIFICATION_MODES:
        raise ConfigError(
            "PORTCULLIS_EMAIL_VERIFICATION: expected optional, required or off, "
            f"got {config['EMAIL_VERIFICATION']!r}"
        )
    for name in ("MAIL_TIMEOUT", "EMAIL_VERIFICATION_TTL"):
        if config[name] <= 0:
            raise ConfigError(
                f"PORTCULLIS_{name}: expected a positive number, got {config[name]!r}"
            )
    if any(ch in str(config["MAIL_FROM"]) for ch in "\r\n"):
        raise ConfigError(
            "PORTCULLIS_MAIL_FROM: one line, like 'Portcullis <no-reply@example.com>'"
        )


LOG_FORMATS = ("text", "json")


def _validate_operations(config) -> None:
    if config["LOG_FORMAT"] not in LOG_FORMATS:
        raise ConfigError(
            f"PORTCULLIS_LOG_FORMAT: expected text or json, got {config['LOG_FORMAT']!r}"
        )
    if not 0 < config["AUDIT_SPOOL_FLUSH_SECONDS"] <= 3600:
        raise ConfigError(
            "PORTCULLIS_AUDIT_SPOOL_FLUSH_SECONDS: expected seconds between 0 and 3600, "
            f"got {config['AUDIT_SPOOL_FLUSH_SECONDS']!r}"
        )


def load_or_create_secret_key(instance: Path) -> str:
    """Read the instance secret key, creating it (mode 0600) on first start.

    The key is written to a temporary file and hard-linked into place, so several workers
    starting at once all end up reading the same complete key.
    """
    path = instance / "secret_key"
    if not path.exists():
        tmp = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        except OSError as error:
            raise ConfigError(f"{path}: cannot create the secret key ({error.strerror})") from None
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_text().strip()
    if not key:
        raise ConfigError(f"{path}: empty secret key file (delete it to generate a new one)")
    return key


def exit_with(error: ConfigError) -> None:
    """Stop start-up with one clear line and no traceback.

    Exit status 3 is gunicorn's "worker failed to boot", so a misconfigured worker stops the
    whole server instead of being restarted forever.
    """
    print(f"portcullis: configuration error: {error}", file=sys.stderr)
    raise SystemExit(3)
