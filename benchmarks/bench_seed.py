"""Bulk rows for the "cost grows with work, not with data" benchmark (``run.py --scale``).

``seed(rows, api_identifier)`` adds ``rows`` clients, ``rows`` users and ``rows`` consents
to the current app's database (inside ``app.app_context()``), fast: one prepared
``INSERT`` per table run over the rows (``executemany``), in transactions of ``BATCH`` rows. The rows look like real ones:

- clients: every other one a machine client (``client_credentials``, ``client_secret_basic``,
  with a client grant for every scope of the benchmark's API, so ``client_grant`` grows too),
  the others confidential web apps (``authorization_code`` + ``refresh_token``, a redirect
  URI). Every secret is random and stored as its SHA-256, like ``create_client`` does;
- users: verified accounts sharing one argon2id hash of one password (hashing 100,000
  passwords would take many minutes and measures nothing the token endpoint does);
- consents: user *i* has consented to web app *i mod (web apps)* for ``openid profile email``
  and the default audience (``DEFAULT_AUDIENCE``).

Service functions are bypassed on purpose (one row at a time, each with its audit event,
would take minutes); the columns are the ones those functions write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import peewee
from flask import current_app

from oauth.accounts import passwords
from oauth.security import random_token, sha256_hex
from oauth.storage.db import database
from oauth.storage.models import Api, Client, ClientGrant, Consent, User, utcnow

BATCH = 2000  # rows per transaction
SEED_PASSWORD = "seeded-user-password"  # every seeded user's password (one shared hash)
CONSENT_SCOPES = ["openid", "profile", "email"]


@dataclass
class Seeded:
    clients: int = 0
    users: int = 0
    consents: int = 0
    grants: int = 0
    # (client_id, secret) of the first machine clients, for a load spread over many clients.
    machine_credentials: list[tuple[str, str]] = field(default_factory=list)


def _value(row: dict, name: str, defaults: dict):
    if name in row:
        return row[name]
    default = defaults[name]
    return default() if callable(default) else default


def _insert(model, rows: list[dict]) -> None:
    """One prepared INSERT run over the rows (``executemany``), ``BATCH`` rows per transaction.

    The values go through each field's ``db_value`` (JSON, booleans, times) and the model's defaults fill
    the columns not given, like peewee's ``insert_many``, whose per-value SQL building would take most of the time here."""
    if not rows:
        return
    fields = [f for f in model._meta.sorted_fields if not isinstance(f, peewee.AutoField)]
    defaults = {f.name: f.default for f in fields if f.name not in rows[0]}
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    marks = ", ".join([database.param] * len(fields))
    sql = f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({marks})'  # our column names
    for start in range(0, len(rows), BATCH):
        params = [
            tuple(f.db_value(_value(row, f.name, defaults)) for f in fields)
            for row in rows[start : start + BATCH]
        ]
        with database.atomic():
            database.cursor().executemany(sql, params)


def _client_rows(rows: int, tag: str, now, keep: int, seeded: Seeded) -> list[dict]:
    result = []
    for i in range(rows):
        machine = i % 2 == 1
        secret = random_token(32)
        client_id = str(uuid.uuid4())
        if machine and len(seeded.machine_credentials) < keep:
            seeded.machine_credentials.append((client_id, secret))
        result.append(
            {
                "client_id": client_id,
                "client_secret_hash": sha256_hex(secret),
                "name": f"seeded {'machine' if machine else 'web'} client {tag}-{i}",
                "client_uri": "" if machine else f"https://app{i}.{tag}.example",
                "logo_uri": "",
                "redirect_uris": [] if machine else [f"https://app{i}.{tag}.example/callback"],
                "grant_types": ["client_credentials"]
                if machine
                else ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_basic",
                "registration_type": "manual",
                "metadata": {},
                "require_mfa": False,
                "created_at": now,
                "updated_at": now,
            }
        )
    return result


def seed(rows: int, api_identifier: str, *, keep_credentials: int = 0) -> Seeded:
    """Add ``rows`` clients, users and consents (and a client grant per machine client).

    ``keep_credentials``: how many machine clients' (client_id, secret) to return."""
    api = Api.get(Api.identifier == api_identifier)
    scopes = api.scope_values
    tag = random_token(4).lower()  # unique names and e-mail addresses in every run
    now = utcnow()
    seeded = Seeded()
    clients = _client_rows(rows, tag, now, keep_credentials, seeded)
    _insert(Client, clients)
    seeded.clients = len(clients)
    grants = [
        {"client": c["client_id"], "api": api.id, "scopes": scopes, "created_at": now}
        for c in clients
        if c["grant_types"] == ["client_credentials"]
    ]
    _insert(ClientGrant, grants)
    seeded.grants = len(grants)
    password_hash = passwords.hash_password(SEED_PASSWORD)
    users = [
        {
            "id": str(uuid.uuid4()),
            "email": f"user{i}@{tag}.seed.example",
            "password_hash": password_hash,
            "name": f"Seeded User {i}",
            "email_verified": True,
            "app_metadata": {},
            "user_metadata": {},
            "created_at": now,
            "updated_at": now,
        }
        for i in range(rows)
    ]
    _insert(User, users)
    seeded.users = len(users)
    audience = current_app.config["DEFAULT_AUDIENCE"]
    web = [c["client_id"] for c in clients if c["grant_types"] != ["client_credentials"]]
    consents = [
        {
            "user": user["id"],
            "client": web[i % len(web)],
            "scopes": CONSENT_SCOPES,
            "resources": [audience],
            "created_at": now,
            "updated_at": now,
        }
        for i, user in enumerate(users)
    ] if web else []  # fmt: skip
    _insert(Consent, consents)
    seeded.consents = len(consents)
    return seeded
