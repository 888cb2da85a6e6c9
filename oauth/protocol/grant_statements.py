"""A grant's common writes in one short step: one statement on PostgreSQL, one batch on SQLite.

Refresh rotation (``rotated``): in a transaction, a rotation is five round trips or more:
BEGIN, the conditional UPDATE of the token (``tokens/refresh.spend``), the successor's
INSERT, "last used" of the session and of the consent when due, COMMIT. On PostgreSQL the
same writes fit in one statement: the UPDATE in a ``WITH``, whose ``RETURNING`` row (none
when the token is no longer live or its session was revoked) feeds the INSERT and the
touches, so they happen only with it. A statement outside a transaction commits alone and
is atomic; its row locks are the UPDATE's, as in the transaction. SQLite allows no
data-modifying ``WITH``; there the same statements run as one batch
(``storage/sqlite_batch.py``) that holds the writers' lock for nothing but them, and an
UPDATE that changes no row rolls the batch back. When either changes nothing, the grant runs
the careful path in a transaction (the locked re-read, the reuse policy). So does a grant
whose client "last used" is due (once a minute per client): that write has its own
transaction.

Code exchange (``redeemed``): the same for the conditional consumption of the code (still
approved, unexpired, its user active), with the session's INSERT, the first refresh token's
and the consent's "last used"; nothing is written when the code changed.

The statements are built from the same query builders as the transaction's writes (the
conditions live in one place) and compiled once per variant (``storage/compiled.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import peewee

from oauth import logs
from oauth.accounts import consents
from oauth.plugins.hookspecs import TokenContext
from oauth.registry import clients
from oauth.security import random_token, sha256_hex
from oauth.storage import models, sqlite_batch
from oauth.storage.compiled import execute, insert_statement, statement
from oauth.storage.db import is_sqlite
from oauth.storage.models import AuthorizationRequest, OAuthSession, RefreshToken, User, utcnow
from oauth.tokens import issue, refresh

# A value in a SELECT list has no column to take its type from: these are said.
CASTS = {peewee.DateTimeField: "timestamp", peewee.IntegerField: "integer"}


def _typed(value, field: peewee.Field) -> peewee.Node:
    cast = next((name for kind, name in CASTS.items() if isinstance(field, kind)), None)
    return peewee.Cast(peewee.Value(value), cast) if cast else peewee.Value(value)


def _after(cte: peewee.CTE, query: peewee.Query) -> peewee.Query:
    """``query`` (an UPDATE) only when ``cte`` returned a row."""
    return query.where(peewee.fn.EXISTS(peewee.Select([cte], [peewee.SQL("1")])))


def _consent_used(cte, at, user_id, client_id, cutoff) -> peewee.CTE:
    return _after(cte, consents.touch_query(at, user_id, client_id, cutoff)).cte("consent_used")


def rotated(context: TokenContext, rotation: refresh.Rotation | None) -> bool:
    """Rotate as ``rotation`` prepared, in one step, when that can be done: True if it was
    (the successor is ``rotation.child``), False if the caller must run the transaction
    (no rotation prepared, client "last used" due, or the token changed since)."""
    if rotation is None or clients.touch_due(context.client):
        return False
    user, client, session = context.user, context.client, rotation.session
    touches = Touches(refresh.touch_due(session, rotation.at), consents.touch_due(user, client))
    at, cutoff = _moments(rotation.at)
    if is_sqlite():
        done = _rotated_in_batch(context, rotation, touches, at, cutoff)
    else:
        done = _rotated_in_one_statement(context, rotation, touches, at, cutoff)
    if not done:
        return False
    if touches.session:
        session.last_used_at = rotation.at
    if touches.consent:
        consents.touched(user, client)
    logs.note(user_id=user.id)  # the token's subject, for the request's log line
    return True


@dataclass(frozen=True)
class Touches:
    """Which "last used" a grant writes with its rows (each at most once a minute)."""

    session: bool = False
    consent: bool = False


def _rotated_in_batch(context, rotation, touches: Touches, at, cutoff) -> bool:
    user, client, session = context.user, context.client, rotation.session
    row_id, token_hash = rotation.row.id, sha256_hex(rotation.child)
    steps = [
        (
            *statement(
                "refresh.token.rotated_live", refresh.live_rotated, at, rotation.sealed, row_id
            ),
            True,
        ),
        (*_new_token_statement(session.id, token_hash, row_id, at), False),
    ]
    if touches.session:
        steps.append(
            (*statement("refresh.session.used", refresh.session_used, at, session.id), False)
        )
    if touches.consent:
        steps.append((*_consent_statement(at, user, client, cutoff), False))
    return sqlite_batch.run(steps)


def _new_token_statement(session_id, token_hash, parent_id, at) -> tuple[str, list]:
    return statement("refresh.token.new", refresh.new_token, session_id, token_hash, parent_id, at)


def _consent_statement(at, user, client, cutoff) -> tuple[str, list]:
    return statement("consents.touch", consents.touch_query, at, user.id, client.client_id, cutoff)


def _rotated_in_one_statement(context, rotation, touches: Touches, at, cutoff) -> bool:
    user, client, session = context.user, context.client, rotation.session

    def build(at, sealed, token_id, token_hash, *due):
        live = refresh.live_rotated(at, sealed, token_id)
        done = live.returning(RefreshToken.session, RefreshToken.id).cte("rotated")
        ctes = [done]
        if touches.session:
            session_id, *due = due
            ctes.append(_after(done, refresh.session_used(at, session_id)).cte("session_used"))
        if touches.consent:
            ctes.append(_consent_used(done, at, *due))
        successor = [done.c.session_id, peewee.Value(token_hash), done.c.id]
        successor.append(_typed(at, RefreshToken.created_at))
        fields = [RefreshToken.session, RefreshToken.token_hash, RefreshToken.parent]
        fields.append(RefreshToken.created_at)
        return RefreshToken.insert_from(peewee.Select([done], successor), fields).with_cte(*ctes)

    name = f"grant_statements.rotated:{touches.session}:{touches.consent}"
    values = [at, rotation.sealed, rotation.row.id, sha256_hex(rotation.child)]
    if touches.session:
        values.append(session.id)
    if touches.consent:
        values += [user.id, client.client_id, cutoff]
    return bool(execute(name, build, *values))


def _moments(now: dt.datetime) -> tuple:
    """``now`` and the consent's touch cutoff, as the database takes them."""
    cutoff = now - dt.timedelta(seconds=models.LAST_USED_EVERY)
    return RefreshToken.rotated_at.db_value(now), RefreshToken.rotated_at.db_value(cutoff)


def consumed(session_id: str, row_id: str):
    """Consume the code ``row_id`` into the session ``session_id``."""
    changes = {AuthorizationRequest.status: "consumed", AuthorizationRequest.session_id: session_id}
    return AuthorizationRequest.update(changes).where(AuthorizationRequest.id == row_id)


def consumed_if_redeemable(session_id: str, row_id: str, now):
    """Consume the code if it is still approved and unexpired and its user active."""
    active_user = User.select(User.id).where(
        (User.id == AuthorizationRequest.user) & (User.disabled == False)  # noqa: E712
    )
    return consumed(session_id, row_id).where(
        (AuthorizationRequest.status == "approved")
        & (AuthorizationRequest.expires_at >= now)
        & peewee.fn.EXISTS(active_user)
    )


def redeemed(context: TokenContext, row_id: str, token: dict) -> bool:
    """Redeem the code ``row_id`` into ``context.session`` in one step: True if it was
    (``token`` gets its refresh token), False if the caller must run the transaction (client
    "last used" due, or the code changed since validation)."""
    user, client, session = context.user, context.client, context.session
    if clients.touch_due(client):
        return False
    touches = Touches(consent=consents.touch_due(user, client))
    refresh_token = random_token(32) if client.check_grant_type("refresh_token") else None
    at, cutoff = _moments(utcnow())
    redeem = _redeemed_in_batch if is_sqlite() else _redeemed_in_one_statement
    if not redeem(context, row_id, refresh_token, touches, at, cutoff):
        return False
    session._dirty.clear()
    if refresh_token is not None:
        issue.add_refresh_token(token, context, refresh_token=refresh_token)
    if touches.consent:
        consents.touched(user, client)
    logs.note(user_id=user.id)
    return True


def _redeemed_in_batch(context, row_id, refresh_token, touches: Touches, at, cutoff) -> bool:
    """The session first: the consumed code points at it."""
    user, client, session = context.user, context.client, context.session
    steps = [
        (*insert_statement(session), False),
        (*statement("grants.code.redeemed", consumed_if_redeemable, session.id, row_id, at), True),
    ]  # fmt: skip
    if refresh_token is not None:
        steps.append(
            (*_new_token_statement(session.id, sha256_hex(refresh_token), None, at), False)
        )
    if touches.consent:
        steps.append((*_consent_statement(at, user, client, cutoff), False))
    return sqlite_batch.run(steps)


def _redeemed_in_one_statement(context, row_id, refresh_token, touches, at, cutoff) -> bool:
    user, client, session = context.user, context.client, context.session
    data = session.__data__
    fields = tuple(f for f in OAuthSession._meta.sorted_fields if f.name in data)

    def build(at, session_id, row_id, *rest):
        columns, rest = rest[: len(fields)], rest[len(fields) :]
        done = consumed_if_redeemable(session_id, row_id, at)
        done = done.returning(AuthorizationRequest.id).cte("consumed")
        typed = [_typed(value, field) for value, field in zip(columns, fields, strict=True)]
        stored = OAuthSession.insert_from(peewee.Select([done], typed), list(fields))
        stored = stored.returning(OAuthSession.id).cte("session")
        ctes = [done, stored]
        if refresh_token is not None:
            token_hash, *rest = rest
            first = [stored.c.id, peewee.Value(token_hash), _typed(at, RefreshToken.created_at)]
            token_fields = [RefreshToken.session, RefreshToken.token_hash, RefreshToken.created_at]
            first_token = RefreshToken.insert_from(peewee.Select([stored], first), token_fields)
            ctes.append(first_token.cte("first_token"))
        if touches.consent:
            ctes.append(_consent_used(done, at, *rest))
        return OAuthSession.select(peewee.SQL("1")).from_(stored).with_cte(*ctes)

    name = f"grant_statements.redeemed:{','.join(f.name for f in fields)}"
    name += f":{refresh_token is not None}:{touches.consent}"
    values = [at, session.id, row_id, *(f.db_value(data[f.name]) for f in fields)]
    if refresh_token is not None:
        values.append(sha256_hex(refresh_token))
    if touches.consent:
        values += [user.id, client.client_id, cutoff]
    return bool(execute(name, build, *values))
