"""Consents: the only owner of Consent rows. A consent is what a user has let one client
do (its scopes) and for which APIs (its resources, the audiences of the tokens); it is
remembered on the consent page, covers later requests, is touched when tokens are issued,
listed on "authorized apps" and revoked there.

A consent made before resources were remembered (``resources`` NULL) covers only
``DEFAULT_AUDIENCE``."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from flask import current_app

from oauth import audit
from oauth.accounts import backchannel
from oauth.registry import apis
from oauth.scopes import describe
from oauth.storage import models
from oauth.storage.compiled import execute
from oauth.storage.db import database, for_update, write_transaction
from oauth.storage.models import AuthorizationRequest, Client, Consent, OAuthSession, User, utcnow
from oauth.tokens import refresh


@dataclass(frozen=True)
class UserGrant:
    """One application the user has authorized, ready to show."""

    client: Client
    scopes: list[tuple[str, str]]  # (scope, plain words)
    resources: list[str]  # the audiences approved (API identifiers or DEFAULT_AUDIENCE)
    granted_at: dt.datetime
    last_used_at: dt.datetime | None

    @property
    def apis(self) -> list[tuple[str, str]]:
        """The APIs approved beyond DEFAULT_AUDIENCE, as (identifier, name)."""
        default = current_app.config["DEFAULT_AUDIENCE"]
        named = [(aud, apis.cached_api(aud)) for aud in self.resources if aud != default]
        return [(aud, api.name if api is not None else aud) for aud, api in named]


def resources_of(consent: Consent) -> list[str]:
    """The audiences a consent covers (a consent older than resources: DEFAULT_AUDIENCE)."""
    if consent.resources is None:
        return [current_app.config["DEFAULT_AUDIENCE"]]
    return list(consent.resources)


def covers(user: User, client_id: str, scopes: list[str], resource: str) -> bool:
    """Whether ``user`` already consented to ``client_id`` for every one of ``scopes``, for
    tokens whose audience is ``resource``."""
    consent = Consent.get_or_none((Consent.user == user) & (Consent.client == client_id))
    return (
        consent is not None
        and set(scopes) <= set(consent.scopes or [])
        and resource in resources_of(consent)
    )


def remember(user: User, client_id: str, scopes: list[str], resource: str) -> None:
    """Record (or widen) the consent, in the caller's transaction, and audit it."""
    consent = for_update(
        Consent.select().where((Consent.user == user) & (Consent.client == client_id))
    ).first()
    if consent is None:
        Consent.create(user=user, client=client_id, scopes=scopes, resources=[resource])
    else:
        consent.scopes = sorted(set(consent.scopes or []) | set(scopes))
        consent.resources = sorted(set(resources_of(consent)) | {resource})
        consent.updated_at = utcnow()
        consent.save()
    audit.record(
        "consent.granted", user_id=user.id, client_id=client_id, scopes=scopes, resource=resource
    )


_touched: dict[tuple[str, str], float] = {}  # (user id, client id) -> when this process wrote it


def touch(user: User, client: Client) -> None:
    """The app just got tokens for the user: "last used" on the authorized-apps page.

    In the caller's write transaction, and at most once per ``LAST_USED_EVERY`` (a minute)
    per user and app, in each process and in the database across processes: an app
    refreshing every few seconds would otherwise rewrite this row on every token."""
    if not touch_due(user, client):
        return
    key = (user.id, client.client_id)
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=models.LAST_USED_EVERY)
    at, cutoff = Consent.last_used_at.db_value(now), Consent.last_used_at.db_value(cutoff)
    execute("consents.touch", touch_query, at, user.id, client.client_id, cutoff)
    database.after_commit(lambda: _remember_touch(key))


def touch_due(user: User, client: Client) -> bool:
    """Whether ``touch`` would write (this process has not written it lately)."""
    key = (user.id, client.client_id)
    every = models.LAST_USED_EVERY
    return time.monotonic() - _touched.get(key, -every) >= every


def touched(user: User, client: Client) -> None:
    """After a commit that wrote "last used" of the consent as ``touch`` does."""
    _remember_touch((user.id, client.client_id))


def touch_query(at, user_id, client_id, cutoff):
    """The consent's "last used", unless written since ``cutoff`` (``touch``)."""
    return Consent.update(last_used_at=at).where(
        (Consent.user == user_id)
        & (Consent.client == client_id)
        & (Consent.last_used_at.is_null() | (Consent.last_used_at <= cutoff))
    )


def _remember_touch(key: tuple[str, str]) -> None:
    if len(_touched) >= 4096:  # bounded: forgetting only costs one more UPDATE
        _touched.clear()
    _touched[key] = time.monotonic()


def count(user: User | None = None) -> int:
    """How many consents exist (of ``user``, or in all)."""
    query = Consent.select()
    return (query.where(Consent.user == user) if user is not None else query).count()


def list_user_grants(user: User) -> list[UserGrant]:
    """Every application ``user`` has consented to, most recently authorized first."""
    query = (
        Consent.select(Consent, Client)
        .join(Client)
        .where(Consent.user == user)
        .order_by(Consent.created_at.desc(), Client.name)
    )
    return [
        UserGrant(
            client=consent.client,
            scopes=describe(list(consent.scopes or [])),
            resources=resources_of(consent),
            granted_at=consent.created_at,
            last_used_at=consent.last_used_at,
        )
        for consent in query
    ]


def revoke_user_grant(user: User, client: Client) -> bool:
    """Withdraw ``user``'s consent to ``client`` and end every token family it issued.

    Returns False (and changes nothing) when there was no grant. Refresh tokens are deleted,
    access tokens of the revoked sessions stop being accepted, and codes issued but not yet
    exchanged are voided; the next authorization asks for consent again.
    """
    with write_transaction():
        consent = for_update(
            Consent.select().where((Consent.user == user) & (Consent.client == client))
        ).first()
        if consent is None:
            return False
        consent.delete_instance()
        sessions = list(
            for_update(
                OAuthSession.select().where(
                    (OAuthSession.user == user)
                    & (OAuthSession.client == client)
                    & OAuthSession.revoked_at.is_null()
                )
            )
        )
        for session in sessions:
            refresh.revoke_session(session, "revoked_by_user")
        # A code approved a moment ago would otherwise still buy a fresh token family.
        AuthorizationRequest.update(status="denied").where(
            (AuthorizationRequest.user == user)
            & (AuthorizationRequest.client == client)
            & (AuthorizationRequest.status == "approved")
        ).execute()
        audit.record(
            "grant.revoked",
            user_id=user.id,
            client_id=client.client_id,
            scopes=list(consent.scopes or []),
            resources=resources_of(consent),
            sessions_revoked=len(sessions),
        )
        backchannel.app_revoked(user.id, client)  # its back-channel logout, if registered
    return True
