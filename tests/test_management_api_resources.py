"""The management API's resources end to end through real client-credentials tokens: users
(create, search, disable, reset MFA, delete), APIs and client grants, signing keys, consents,
and the audit log (filters, cursor pages), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest

from oauth.accounts import consents, mfa, users
from oauth.storage.db import write_transaction
from oauth.storage.models import AuditEvent, Client, User
from tests.m2m_helpers import cc_token
from tests.management_api_helpers import ManagementCaller, assert_problem, events


@pytest.fixture
def mgmt_app(make_app):
    return make_app(MANAGEMENT_API=True)


@pytest.fixture
def caller(mgmt_app):
    return ManagementCaller(mgmt_app, mgmt_app.test_client())


def test_users_create_search_disable_and_delete(caller, mgmt_app):
    made = caller.post("/users", json={"email": "Ann@Example.com", "password": "correct horse",
                                       "name": "Ann", "user_metadata": {"plan": "pro"}})  # fmt: skip
    assert made.status_code == 201
    ann = made.get_json()
    assert ann["email"] == "ann@example.com" and ann["user_metadata"] == {"plan": "pro"}
    assert "password" not in made.get_data(as_text=True).replace('"password_', "")
    assert ann["created_at"].endswith("Z")
    assert_problem(caller.post("/users", json={"email": "ann@example.com"}), 409)
    assert_problem(caller.post("/users", json={"email": "not an address"}), 422)
    caller.post("/users", json={"email": "bob@example.com", "name": "Bob"})
    found = caller.get("/users?q=ann").get_json()["data"]
    assert [u["email"] for u in found] == ["ann@example.com"]

    etag = caller.get(f"/users/{ann['id']}").headers["ETag"]
    disabled = caller.patch(f"/users/{ann['id']}", json={"disabled": True, "phone": "+1 555"},
                            headers={"If-Match": etag})  # fmt: skip
    assert disabled.status_code == 200
    assert disabled.get_json()["disabled"] is True and disabled.get_json()["phone"] == "+1 555"
    with mgmt_app.app_context():
        assert users.authenticate("ann@example.com", "correct horse") is None
    (event,) = events(mgmt_app, "user.disabled")
    assert event.details["actor_client_id"] == caller.client_id
    enabled = caller.patch(f"/users/{ann['id']}", json={"disabled": False})
    assert enabled.get_json()["disabled"] is False

    assert caller.delete(f"/users/{ann['id']}").status_code == 204
    assert_problem(caller.get(f"/users/{ann['id']}"), 404)
    (deleted,) = events(mgmt_app, "user.deleted")
    assert (
        deleted.details["via"] == "api" and deleted.details["actor_client_id"] == caller.client_id
    )


def test_a_token_without_users_write_cannot_create_a_user(mgmt_app):
    reader = ManagementCaller(mgmt_app, mgmt_app.test_client(), scopes=["users:read"])
    assert_problem(reader.post("/users", json={"email": "eve@example.com"}), 403)
    with mgmt_app.app_context():
        assert User.select().count() == 0
    assert reader.get("/users").status_code == 200


def test_reset_mfa_removes_every_second_factor(caller, mgmt_app):
    with mgmt_app.app_context():
        user = users.create_user("totp@example.com", "correct horse", via="admin")
        secret = mfa.start_enrolment(user)
        assert mfa.confirm_enrolment(user, pyotp.TOTP(secret).now())
        assert mfa.factors(user) == ["totp"]
    assert caller.get(f"/users/{user.id}").get_json()["mfa"] == ["totp"]
    reset = caller.post(f"/users/{user.id}/reset-mfa")
    assert reset.status_code == 200 and reset.get_json() == {"removed": ["totp"]}
    with mgmt_app.app_context():
        assert mfa.factors(user) == []
    (event,) = events(mgmt_app, "mfa.reset")
    assert event.details["via"] == "api" and event.details["actor_client_id"] == caller.client_id


def test_apis_and_client_grants(caller, mgmt_app):
    made = caller.post("/apis", json={"identifier": "https://orders.example", "name": "Orders",
                                      "scopes": [{"value": "read:orders"},
                                                 {"value": "write:orders"}]})  # fmt: skip
    assert made.status_code == 201
    api = made.get_json()
    assert api["builtin"] is False and api["token_ttl"] == 3600
    assert_problem(caller.post("/apis", json={"identifier": "https://orders.example",
                                              "name": "Again"}), 409)  # fmt: skip
    bot = caller.post("/clients", json={"name": "Bot", "grant_types": ["client_credentials"]})
    bot_id, bot_secret = bot.get_json()["client_id"], bot.get_json()["client_secret"]
    grant = caller.post("/client-grants", json={"client_id": bot_id, "api_id": api["id"],
                                                "scopes": ["read:orders"]})  # fmt: skip
    assert grant.status_code == 201
    grant_id = grant.get_json()["id"]
    assert_problem(caller.post("/client-grants", json={"client_id": bot_id,
                                                       "api_id": api["id"]}), 409)  # fmt: skip
    issued = cc_token(caller.http, bot_id, bot_secret, audience="https://orders.example")
    assert issued.get_json()["scope"] == "read:orders"

    widened = caller.patch(f"/client-grants/{grant_id}",
                           json={"scopes": ["read:orders", "write:orders"]})  # fmt: skip
    assert widened.get_json()["scopes"] == ["read:orders", "write:orders"]
    assert_problem(caller.patch(f"/client-grants/{grant_id}", json={"scopes": ["nope"]}), 422)
    listed = caller.get(f"/client-grants?client_id={bot_id}").get_json()["data"]
    assert [g["id"] for g in listed] == [grant_id]

    trimmed = caller.patch(f"/apis/{api['id']}", json={"scopes": [{"value": "read:orders"}]})
    assert [s["value"] for s in trimmed.get_json()["scopes"]] == ["read:orders"]
    assert caller.get(f"/client-grants/{grant_id}").get_json()["scopes"] == ["read:orders"]
    assert caller.delete(f"/client-grants/{grant_id}").status_code == 204
    issued = cc_token(caller.http, bot_id, bot_secret, audience="https://orders.example")
    assert issued.status_code == 400  # no grant any more
    assert caller.delete(f"/apis/{api['id']}").status_code == 204
    assert_problem(caller.get(f"/apis/{api['id']}"), 404)


def test_keys_show_public_parts_only_and_rotate(caller, mgmt_app):
    listed = caller.get("/keys")
    text = listed.get_data(as_text=True)
    assert '"d"' not in text and "PRIVATE" not in text
    assert {k["status"] for k in listed.get_json()["data"]} == {"current"}
    standby = caller.post("/keys", json={"alg": "ES256"})
    assert standby.status_code == 201 and standby.get_json()["status"] == "standby"
    kid = standby.get_json()["kid"]
    rotated = caller.post("/keys/rotate", json={"alg": "ES256"})
    assert rotated.get_json()["kid"] == kid and rotated.get_json()["status"] == "current"
    assert_problem(caller.post(f"/keys/{kid}/revoke"), 409)  # the current key
    previous = [k for k in caller.walk("/keys", 2) if k["status"] == "previous"]
    (old,) = previous
    revoked = caller.post(f"/keys/{old['kid']}/revoke")
    assert revoked.get_json()["status"] == "revoked" and revoked.get_json()["public_jwk"] is None
    # the revoked key signed the caller's own token: it stops verifying, a new one works
    assert_problem(caller.get("/keys"), 401)
    caller.token = caller.fetch_token()
    assert_problem(caller.post("/keys", json={"alg": "HS256"}), 422)
    assert caller.get(f"/keys/{old['kid']}").get_json()["status"] == "revoked"


def test_consents_list_and_revoke(caller, mgmt_app):
    with mgmt_app.app_context():
        user = users.create_user("c@example.com", "correct horse", via="admin")
        app_client = Client.get_by_id(
            caller.post(
                "/clients", json={"name": "Web", "redirect_uris": ["https://w.example/cb"]}
            ).get_json()["client_id"]
        )
        with write_transaction():
            consents.remember(user, app_client.client_id, ["openid", "email"], "authenticated")
    listed = caller.get(f"/consents?user_id={user.id}").get_json()["data"]
    assert [(c["client_id"], c["scopes"]) for c in listed] == [
        (app_client.client_id, ["openid", "email"])
    ]
    assert caller.get(f"/consents?client_id={caller.client_id}").get_json()["data"] == []
    consent_id = listed[0]["id"]
    assert caller.delete(f"/consents/{consent_id}").status_code == 204
    with mgmt_app.app_context():
        assert consents.count(user) == 0
    (event,) = events(mgmt_app, "grant.revoked")
    assert event.details["actor_client_id"] == caller.client_id
    assert_problem(caller.delete(f"/consents/{consent_id}"), 404)


def test_audit_cursor_pages_walk_every_row_once(caller, mgmt_app):
    with mgmt_app.app_context(), write_transaction():
        for n in range(23):
            AuditEvent.create(event_type="test.bulk", details={"n": n})
    rows = caller.walk("/audit-events?event_type=test.bulk", 5)
    assert sorted(r["details"]["n"] for r in rows) == list(range(23))
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    # every user, every client, once each, whatever the page size
    for n in range(7):
        caller.post("/users", json={"email": f"u{n}@example.com"})
    for size in (1, 3, 100):
        walked = caller.walk("/users", size)
        assert len(walked) == len({u["id"] for u in walked}) == 7
    assert len(caller.walk("/clients", 1)) == 1
    # a row added between pages is neither repeated nor does it shift the walk
    first = caller.get("/users?limit=3").get_json()
    caller.post("/users", json={"email": "late@example.com"})
    rest = caller.walk("/users", 3, cursor=first["next_cursor"])
    ids = [u["id"] for u in first["data"] + rest]
    assert len(ids) == len(set(ids)) >= 7


def test_audit_filters(caller, mgmt_app):
    user_id = caller.post("/users", json={"email": "f@example.com"}).get_json()["id"]
    caller.patch(f"/users/{user_id}", json={"name": "F"})
    target = caller.get(f"/audit-events?target={user_id}").get_json()["data"]
    assert {e["event_type"] for e in target} >= {"user.created", "user.updated"}
    assert all(e["user_id"] == user_id or e["client_id"] == user_id for e in target)
    by_actor = caller.get(f"/audit-events?actor={caller.client_id}&event_type=user.updated")
    assert [e["user_id"] for e in by_actor.get_json()["data"]] == [user_id]
    assert caller.get("/audit-events?actor=someone-else").get_json()["data"] == []
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert caller.get("/audit-events", query_string={"since": future}).get_json()["data"] == []
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    recent = caller.get("/audit-events", query_string={"since": past, "limit": 100})
    assert len(recent.get_json()["data"]) >= 2
    assert_problem(caller.get("/audit-events", query_string={"since": future, "until": past}), 400)
    assert_problem(caller.get("/audit-events?since=yesterday"), 400)
    assert_problem(caller.get("/audit-events?actor=%25"), 400)


def test_rotate_secret_with_a_grace_period_keeps_the_old_secret_until_it_ends(caller, mgmt_app):
    created = caller.post("/clients", json={"name": "Shop", "grant_types": ["client_credentials"]})
    client_id, old = created.get_json()["client_id"], created.get_json()["client_secret"]
    rotated = caller.post(f"/clients/{client_id}/rotate-secret", json={"grace_seconds": 3600})
    assert rotated.status_code == 200 and rotated.get_json()["grace_seconds"] == 3600
    new = rotated.get_json()["client_secret"]
    read = caller.get(f"/clients/{client_id}").get_json()
    assert read["previous_secret_expires_at"] is not None
    with mgmt_app.app_context():
        client = Client.get_by_id(client_id)
        assert client.check_client_secret(new) and client.check_client_secret(old)
    assert caller.post(f"/clients/{client_id}/rotate-secret", json={}).status_code == 200
    with mgmt_app.app_context():
        client = Client.get_by_id(client_id)
        assert not client.check_client_secret(old) and not client.check_client_secret(new)
    too_long = caller.post(f"/clients/{client_id}/rotate-secret", json={"grace_seconds": 10**9})
    assert_problem(too_long, 422)
