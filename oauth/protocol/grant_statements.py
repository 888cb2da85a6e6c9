"""PostgreSQL: a grant's common writes as one statement, which is its own transaction.

Refresh rotation (``rotated``): a rotation in a transaction is five round trips: BEGIN, the conditional UPDATE of the token
(``tokens/refresh.spend``), the successor's INSERT, "last used" of the session and of the
consent when due, COMMIT. On PostgreSQL the same writes fit in one statement: the UPDATE
in a ``WITH``, whose ``RETURNING`` row (none when the token is no longer live or its
session was revoked) feeds the INSERT and the touches, so they happen only with it. A
statement outside a transaction commits alone and is atomic; its row locks are the
UPDATE's, as in the transaction. When it changes nothing, the grant runs the careful path
in a transaction (the locked re-read, the reuse policy). SQLite allows no data-modifying
``WITH`` and queues its writers anyway (``storage/sqlite_writers.py``): it keeps the
transaction. So does a grant whose client "last used" is due (once a minute per client).

Code exchange (``redeemed``): the same for the conditional consumption of the code (still
approved, unexpired, its user active), which feeds the session's INSERT, the first refresh
token's and the consent's "last used"; nothing is written when the code changed.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import peewee

from oauth import logs
from oauth.accounts import consents
from oauth.plugins.hookspecs import TokenContext
from oauth.registry import clients
from oauth.security import random_token, sha256_hex
from oauth.storage.db import database, is_sqlite
from oauth.storage.models import OAuthSession, RefreshToken, utcnow
from oauth.tokens import issue, refresh

ROTATED = """UPDATE "refresh_token" SET "rotated_at" = %(at)s, "successor_ciphertext" = %(sealed)s
    WHERE "id" = %(token_id)s AND "rotated_at" IS NULL AND EXISTS (
        SELECT 1 FROM "oauth_session" WHERE "oauth_session"."id" = "refresh_token"."session_id"
        AND "oauth_session"."revoked_at" IS NULL)
    RETURNING "session_id", "id\""""
SESSION_USED = """UPDATE "oauth_session" SET "last_used_at" = %(at)s
    WHERE "id" = (SELECT "session_id" FROM rotated)"""
CONSENT_USED = """UPDATE "consent" SET "last_used_at" = %(at)s
    WHERE "user_id" = %(user_id)s AND "client_id" = %(client_id)s
    AND ("last_used_at" IS NULL OR "last_used_at" <= %(cutoff)s)
    AND EXISTS (SELECT 1 FROM {after})"""
SUCCESSOR = """INSERT INTO "refresh_token" ("session_id", "token_hash", "parent_id", "created_at")
    SELECT "session_id", %(token_hash)s, "id", %(at)s FROM rotated"""


@cache
def statement(touch_session: bool, touch_consent: bool) -> str:
    """The rotation's statement, with the touches that are due."""
    parts = [f"rotated AS ({ROTATED})"]
    if touch_session:
        parts.append(f"session_used AS ({SESSION_USED})")
    if touch_consent:
        parts.append(f"consent_used AS ({CONSENT_USED.format(after='rotated')})")
    return "WITH " + ",\n".join(parts) + "\n" + SUCCESSOR


def rotated(context: TokenContext, rotation: refresh.Rotation | None) -> bool:
    """Rotate as ``rotation`` prepared, in one statement, when that can be done: True if it
    was (the successor is ``rotation.child``), False if the caller must run the transaction
    (SQLite, no rotation prepared, client "last used" due, or the token changed since)."""
    if rotation is None or is_sqlite() or clients.touch_due(context.client):
        return False
    user, client, session = context.user, context.client, rotation.session
    touch_session = refresh.touch_due(session, rotation.at)
    touch_consent = consents.touch_due(user, client)
    values = {
        **_consent_values(context, rotation.at),
        "sealed": rotation.sealed,
        "token_id": rotation.row.id,
        "token_hash": sha256_hex(rotation.child),
    }
    sql = statement(touch_session, touch_consent)
    if not database.execute_sql(sql, values).rowcount:
        return False
    if touch_session:
        session.last_used_at = rotation.at
    if touch_consent:
        consents.touched(user, client)
    logs.note(user_id=user.id)  # the token's subject, for the request's log line
    return True


def _consent_values(context: TokenContext, now: dt.datetime) -> dict:
    cutoff = now - dt.timedelta(seconds=consents.TOUCH_INTERVAL)
    return {
        "at": RefreshToken.rotated_at.db_value(now),
        "user_id": context.user.id,
        "client_id": context.client.client_id,
        "cutoff": RefreshToken.rotated_at.db_value(cutoff),
    }


CONSUMED = """UPDATE "authorization_request" SET "status" = 'consumed', "session_id" = %(s_id)s
    WHERE "id" = %(row_id)s AND "status" = 'approved' AND "expires_at" >= %(at)s
    AND EXISTS (SELECT 1 FROM "user" WHERE "user"."id" = "authorization_request"."user_id"
        AND NOT "user"."disabled")
    RETURNING "id\""""
FIRST_TOKEN = """INSERT INTO "refresh_token" ("session_id", "token_hash", "created_at")
    SELECT "id", %(token_hash)s, %(at)s FROM session"""
# A value in a SELECT list has no column to take its type from: these are said.
CASTS = {peewee.DateTimeField: "timestamp", peewee.IntegerField: "integer"}


@cache
def redemption(fields: tuple[peewee.Field, ...], refresh_token: bool, touch_consent: bool) -> str:
    """The code exchange's statement: the session's INSERT of ``fields``, the rest as due."""
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    values = ", ".join(_value(field) for field in fields)
    parts = [
        f"consumed AS ({CONSUMED})",
        # the columns are the model's, the values placeholders: nothing of a request's
        f'session AS (INSERT INTO "oauth_session" ({columns}) SELECT {values} '  # noqa: S608
        'FROM consumed RETURNING "id")',
    ]
    if refresh_token:
        parts.append(f"first_token AS ({FIRST_TOKEN})")
    if touch_consent:
        parts.append(f"consent_used AS ({CONSENT_USED.format(after='consumed')})")
    return "WITH " + ",\n".join(parts) + "\nSELECT count(*) FROM consumed"


def _value(field: peewee.Field) -> str:
    cast = next((name for kind, name in CASTS.items() if isinstance(field, kind)), None)
    placeholder = f"%(s_{field.column_name})s"
    return f"CAST({placeholder} AS {cast})" if cast else placeholder


def redeemed(context: TokenContext, row_id: str, token: dict) -> bool | None:
    """Redeem the code ``row_id`` into ``context.session`` in one statement: True if it was
    (``token`` gets its refresh token), False if the code changed since validation (the
    careful path answers), None where the transaction must do it (SQLite, client "last used"
    due)."""
    user, client, session = context.user, context.client, context.session
    if is_sqlite() or clients.touch_due(client):
        return None
    now = utcnow()
    touch_consent = consents.touch_due(user, client)
    refresh_token = random_token(32) if client.check_grant_type("refresh_token") else None
    data = session.__data__
    fields = tuple(f for f in OAuthSession._meta.sorted_fields if f.name in data)
    values = {
        **_consent_values(context, now),
        **{f"s_{f.column_name}": f.db_value(data[f.name]) for f in fields},
        "row_id": row_id,
        "token_hash": sha256_hex(refresh_token) if refresh_token else None,
    }
    sql = redemption(fields, refresh_token is not None, touch_consent)
    if not database.execute_sql(sql, values).fetchone()[0]:
        return False
    session._dirty.clear()
    if refresh_token is not None:
        issue.add_refresh_token(token, context, refresh_token=refresh_token)
    if touch_consent:
        consents.touched(user, client)
    logs.note(user_id=user.id)
    return True
