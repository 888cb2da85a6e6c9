"""storage/compiled.py (queries compiled to SQL once per kind of database) and the bearer-token
check built on it: still real rows through the fields' conversions, values always bound, and
every reason to refuse a token still refuses it."""

from __future__ import annotations

import datetime as dt

import peewee
import pytest

from oauth.storage.compiled import compiled, execute, first, insert, joined
from oauth.storage.models import AuditEvent, Client, OAuthSession, RevokedAccessToken, User, utcnow
from oauth.tokens.jose import InvalidTokenError
from oauth.tokens.verify import verify_access_token
from tests.m2m_helpers import cc_token, setup_m2m
from tests.oauth_helpers import decode_jwt_unverified


def _user_by_email(email):
    return User.select().where(User.email == email)


def _sessions_of(user_id, client_id):
    return OAuthSession.select().where(
        (OAuthSession.user == user_id) & (OAuthSession.client == client_id)
    )


def test_rows_come_back_as_models_with_converted_fields(app_context, auth):
    auth.create_user("ann@example.com", name="Ann", app_metadata={"tier": "gold"})
    user = first(compiled(User, "test.user-by-email", _user_by_email, "ann@example.com"))
    assert isinstance(user, User) and user.name == "Ann"
    assert user.app_metadata == {"tier": "gold"}  # JSON decoded
    assert isinstance(user.created_at, dt.datetime)  # a datetime on SQLite too
    assert user.disabled is False  # a bool, not SQLite's 0
    # The same compiled SQL, other values: each is bound, never pasted into the SQL.
    assert first(compiled(User, "test.user-by-email", _user_by_email, "x' OR '1'='1")) is None
    assert first(compiled(User, "test.user-by-email", _user_by_email, "nobody@example.com")) is None


def test_values_go_where_the_query_put_them(app_context, auth):
    user = auth.create_user("bob@example.com")
    client = Client.create(client_id="c1", name="C1", redirect_uris=[], grant_types=[])
    OAuthSession.create(user=user, client=client, scope="openid", audience="a", auth_time=1)
    found = list(compiled(OAuthSession, "test.sessions", _sessions_of, user.id, "c1"))
    assert [s.scope for s in found] == ["openid"]
    # Swapped values find nothing: the order of the values is the builder's, not the SQL's.
    assert list(compiled(OAuthSession, "test.sessions", _sessions_of, "c1", user.id)) == []


def _used_at(moment, session_id):
    return OAuthSession.update(last_used_at=moment).where(OAuthSession.id == session_id)


def test_execute_writes_with_bound_values_and_counts_rows(app_context, auth):
    user = auth.create_user("cy@example.com")
    client = Client.create(client_id="c2", name="C2", redirect_uris=[], grant_types=[])
    session = OAuthSession.create(user=user, client=client, scope="", audience="a", auth_time=1)
    moment = dt.datetime(2030, 1, 2, 3, 4, 5, 678901)
    at = OAuthSession.last_used_at.db_value(moment)
    assert execute("test.used-at", _used_at, at, session.id) == 1
    assert OAuthSession.get_by_id(session.id).last_used_at == moment  # read back as peewee wrote it
    assert execute("test.used-at", _used_at, at, "no-such-session") == 0


def test_a_builder_that_drops_a_value_is_refused(app_context):
    with pytest.raises(ValueError, match="unused"):
        compiled(User, "test.drops-a-value", lambda a, b: _user_by_email(a), "x", "y")


def test_a_denylisted_client_credentials_token_is_refused(app, client):
    client_id, secret = setup_m2m(app)
    token = cc_token(client, client_id, secret, audience="https://api.example.com").get_json()[
        "access_token"
    ]
    _, claims = decode_jwt_unverified(token)
    with app.test_request_context():
        assert verify_access_token(token).user is None
        RevokedAccessToken.create(jti=claims["jti"], expires_at=utcnow() + dt.timedelta(hours=1))
        with pytest.raises(InvalidTokenError, match="revoked"):
            verify_access_token(token)


def test_a_user_token_dies_with_its_session_its_jti_and_its_user(flow, app):
    tokens = flow.tokens()
    token = tokens["access_token"]
    _, claims = decode_jwt_unverified(token)
    with app.test_request_context():
        verified = verify_access_token(token)
        assert verified.user.id == claims["sub"] and verified.session.id == claims["session_id"]
        assert verified.session.claims is None or isinstance(verified.session.claims, dict)
        User.update(disabled=True).execute()
        with pytest.raises(InvalidTokenError, match="not active"):
            verify_access_token(token)
        User.update(disabled=False).execute()
        RevokedAccessToken.create(jti=claims["jti"], expires_at=utcnow() + dt.timedelta(hours=1))
        with pytest.raises(InvalidTokenError, match="revoked"):
            verify_access_token(token)
        RevokedAccessToken.delete().execute()
        assert verify_access_token(token).user is not None
        OAuthSession.update(revoked_at=utcnow()).execute()
        with pytest.raises(InvalidTokenError, match="revoked"):
            verify_access_token(token)


def test_insert_writes_every_field_through_its_conversion(app_context, auth):
    user = auth.create_user("di@example.com")
    client = Client.create(client_id="c3", name="C3", redirect_uris=[], grant_types=[])
    session = OAuthSession(
        user=user, client=client, scope="openid", audience="a", auth_time=7,
        amr=["pwd", "otp"], claims={"userinfo": {"email": None}},
    )  # fmt: skip
    insert(session)
    stored = OAuthSession.get_by_id(session.id)
    assert (stored.user_id, stored.client_id, stored.auth_time) == (user.id, "c3", 7)
    assert stored.amr == ["pwd", "otp"] and stored.claims == {"userinfo": {"email": None}}
    assert stored.created_at == session.created_at  # the default, as save() would write it
    with pytest.raises(ValueError, match="primary key"):  # an id the database assigns
        insert(AuditEvent(event_type="x"))


def _session_and_client(session_id):
    query = OAuthSession.select(OAuthSession, Client, peewee.Value(7).alias("extra"))
    return query.join(Client).where(OAuthSession.id == session_id)


def test_a_join_gives_one_object_of_each_model_per_row(app_context, auth):
    user = auth.create_user("di@example.com")
    client = Client.create(
        client_id="c3", name="C3", redirect_uris=["https://c3.example/cb"], grant_types=[]
    )
    session = OAuthSession.create(
        user=user, client=client, scope="openid", audience="a", auth_time=1
    )
    [(found, its_client)] = joined(
        (OAuthSession, Client), "test.join", _session_and_client, session.id
    )
    assert isinstance(found, OAuthSession) and isinstance(its_client, Client)
    assert (found.id, found.scope, found.user_id) == (session.id, "openid", user.id)
    assert its_client.client_id == "c3" and its_client.name == "C3"  # not the session's columns
    assert its_client.redirect_uris == ["https://c3.example/cb"]  # JSON decoded
    assert its_client.extra == 7  # a column after the last model's fields: an attribute
    assert joined((OAuthSession, Client), "test.join", _session_and_client, "nothing") == []
