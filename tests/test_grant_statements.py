"""A refresh rotation and a code exchange are one step each (protocol/grant_statements.py):
one statement on PostgreSQL, one batch on SQLite (storage/sqlite_batch.py). They write what
the transaction writes (the rotated token and its successor; the consumed code, the session
and its first refresh token; "last used" of the session and of the consent when due, and
only then), and nothing when what was validated changed meanwhile."""

from __future__ import annotations

import datetime as dt

import pytest

from oauth.accounts import consents
from oauth.protocol import grant_statements
from oauth.security import sha256_hex
from oauth.storage.models import AuthorizationRequest, Consent, OAuthSession, RefreshToken, utcnow
from tests.test_http_hook_limits import user_flow
from tests.test_plugins import write_plugin


@pytest.fixture
def outcomes(monkeypatch):
    """What each call of ``grant_statements.rotated`` and ``redeemed`` answered, in a list
    per function (they run as they are)."""
    seen = {"rotated": [], "redeemed": []}

    def spy(name):
        real = getattr(grant_statements, name)

        def call(*args):
            seen[name].append(real(*args))
            return seen[name][-1]

        monkeypatch.setattr(grant_statements, name, call)

    spy("rotated")
    spy("redeemed")
    return seen


def _last_used(app, ago: dt.timedelta) -> None:
    with app.app_context():
        at = utcnow() - ago
        OAuthSession.update(last_used_at=at).execute()
        Consent.update(last_used_at=at).execute()
    consents._touched.clear()  # this process wrote none of them lately


@pytest.mark.parametrize("due", [True, False], ids=["touches-due", "nothing-due"])
def test_a_rotation_writes_the_successor_and_the_touches_that_are_due(make_app, outcomes, due):
    app = make_app()
    flow = user_flow(app)
    first = flow.tokens()["refresh_token"]
    ago = dt.timedelta(minutes=10 if due else 0, seconds=20)
    _last_used(app, ago)
    response = flow.refresh(first)
    assert response.status_code == 200, response.get_data(as_text=True)
    successor = response.get_json()["refresh_token"]
    with app.app_context():
        assert outcomes["rotated"] == [True]
        old = RefreshToken.get(RefreshToken.token_hash == sha256_hex(first))
        new = RefreshToken.get(RefreshToken.token_hash == sha256_hex(successor))
        assert old.rotated_at is not None and old.successor_ciphertext
        assert (new.parent_id, new.session_id, new.rotated_at) == (old.id, old.session_id, None)
        recent = utcnow() - dt.timedelta(seconds=10)
        assert (OAuthSession.get().last_used_at > recent) is due
        assert (Consent.get().last_used_at > recent) is due
    again = flow.refresh(successor)  # the successor is live and rotates in turn
    assert again.status_code == 200, again.get_data(as_text=True)


REVOKING_PLUGIN = """
from oauth import hookimpl
from oauth.storage.models import OAuthSession, utcnow

@hookimpl
def customize_access_token(claims, context):
    if context.grant_type == "refresh_token":  # after validation, before the write
        OAuthSession.update(revoked_at=utcnow()).execute()
"""


def test_a_session_revoked_during_the_hook_gets_no_successor(make_app, plugin_dir, outcomes):
    write_plugin(plugin_dir, "revoking", REVOKING_PLUGIN)
    app = make_app()
    flow = user_flow(app)
    first = flow.tokens()["refresh_token"]
    response = flow.refresh(first)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_grant"
    with app.app_context():
        assert outcomes["rotated"] == [
            False
        ]  # the statement changed nothing; the careful path answered
        assert RefreshToken.select().count() == 1
        assert RefreshToken.get().rotated_at is None


@pytest.mark.parametrize("due", [True, False], ids=["touch-due", "nothing-due"])
def test_a_code_exchange_writes_the_session_its_refresh_token_and_the_touch_due(
    make_app, outcomes, due
):
    app = make_app()
    flow = user_flow(app)
    flow.tokens()  # the client's "last used" is now: not due for a minute
    outcomes["redeemed"].clear()
    ago = dt.timedelta(minutes=10 if due else 0, seconds=20)
    with app.app_context():
        Consent.update(last_used_at=utcnow() - ago).execute()
    if due:
        consents._touched.clear()  # else this process wrote it just now
    code, _ = flow.get_code()
    response = flow.exchange(code)
    assert response.status_code == 200, response.get_data(as_text=True)
    plain = response.get_json()["refresh_token"]
    with app.app_context():
        assert outcomes["redeemed"] == [True]
        token = RefreshToken.get(RefreshToken.token_hash == sha256_hex(plain))
        row = AuthorizationRequest.get(AuthorizationRequest.code_hash == sha256_hex(code))
        session = OAuthSession.get_by_id(token.session_id)
        assert (row.status, row.session_id, token.parent_id) == ("consumed", session.id, None)
        assert (session.user_id, session.client_id, session.revoked_at) == (
            row.user_id, row.client_id, None,
        )  # fmt: skip
        assert session.scope == row.scope and session.amr == row.amr
        recent = utcnow() - dt.timedelta(seconds=10)
        assert (Consent.get().last_used_at > recent) is due
    assert flow.refresh(plain).status_code == 200
    assert flow.exchange(code).get_json()["error"] == "invalid_grant"  # a replay


DISABLING_PLUGIN = """
from oauth import hookimpl
from oauth.storage.models import User

exchanges = []

@hookimpl
def customize_access_token(claims, context):
    if context.grant_type == "authorization_code":  # after validation, before the write
        exchanges.append(1)
        if len(exchanges) == 2:  # the first one touched the client ("last used")
            User.update(disabled=True).execute()
"""


def test_a_user_disabled_during_the_hook_redeems_nothing(make_app, plugin_dir, outcomes):
    write_plugin(plugin_dir, "disabling", DISABLING_PLUGIN)
    app = make_app()
    flow = user_flow(app)
    flow.tokens()
    outcomes["redeemed"].clear()
    code, _ = flow.get_code()
    response = flow.exchange(code)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_grant"
    with app.app_context():
        assert outcomes["redeemed"] == [False]  # the careful path answered
        row = AuthorizationRequest.get(AuthorizationRequest.code_hash == sha256_hex(code))
        assert row.status == "approved"
        assert OAuthSession.select().count() == 1  # the first exchange's
        assert RefreshToken.select().count() == 1
