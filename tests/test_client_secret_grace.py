"""Client secret rotation with a grace period: during it the old and the new secret both
authenticate real client_credentials token requests (basic and post), after it only the new
one; grace 0 ends the old secret at once; a second rotation replaces the previous secret."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from oauth.registry import client_secrets, clients
from oauth.security import matches_current_or_previous, sha256_hex
from oauth.storage.models import AuditEvent, Client, utcnow
from tests.m2m_helpers import API, setup_m2m
from tests.oauth_helpers import basic_auth_header

DAY = 24 * 3600


def token(http, client_id: str, secret: str, auth: str):
    data = {"grant_type": "client_credentials", "audience": API}
    if auth == "basic":
        return http.post("/oauth/token", data=data, headers=basic_auth_header(client_id, secret))
    body = {**data, "client_id": client_id, "client_secret": secret}
    return http.post("/oauth/token", data=body)


def works(http, client_id: str, secret: str) -> bool:
    """Whether ``secret`` gets a token, with client_secret_basic and with client_secret_post
    (they always agree; a failure is the usual invalid_client)."""
    answers = []
    for auth in ("basic", "post"):
        response = token(http, client_id, secret, auth)
        if response.status_code != 200:
            assert response.status_code == 401, response.get_data(as_text=True)
            assert response.get_json()["error"] == "invalid_client"
        else:
            assert response.get_json()["access_token"]
        answers.append(response.status_code == 200)
    assert answers[0] == answers[1], answers
    return answers[0]


def rotate(app, client_id: str, **kwargs) -> str:
    with app.app_context():
        return clients.rotate_secret(clients.get_client(client_id), **kwargs)


def info(app, client_id: str) -> dict:
    with app.app_context():
        return clients.client_info(clients.get_client(client_id))


def rotations(app) -> list[dict]:
    with app.app_context():
        rows = AuditEvent.select().where(AuditEvent.event_type == "client.secret_rotated")
        return [row.details for row in rows.order_by(AuditEvent.id)]


def test_the_old_secret_works_during_the_grace_period_and_fails_after(app, client):
    client_id, old = setup_m2m(app)
    assert works(client, client_id, old)  # warms the registry cache with the old row
    assert info(app, client_id)["previous_secret_expires_at"] is None

    before = utcnow().replace(microsecond=0)
    new = rotate(app, client_id, grace_seconds=DAY, actor_id=None)
    assert works(client, client_id, new) and works(client, client_id, old)
    assert not works(client, client_id, old + "x")

    expires = info(app, client_id)["previous_secret_expires_at"]
    moment = dt.datetime.fromisoformat(expires.removesuffix("Z"))
    assert before + dt.timedelta(seconds=DAY) <= moment <= utcnow() + dt.timedelta(seconds=DAY)
    with app.app_context():
        row = Client.get_by_id(client_id)
        # Both only as SHA-256; neither plaintext anywhere in the row.
        assert row.client_secret_hash == sha256_hex(new)
        assert row.previous_secret_hash == sha256_hex(old)
        assert old not in json.dumps(row.__data__, default=str)
    [event] = rotations(app)
    assert event["grace_seconds"] == DAY and event["previous_secret_expires_at"] == expires
    assert old not in json.dumps(event) and new not in json.dumps(event)

    # The grace period is over (its end set in the past through the service: no sleeping).
    with app.app_context():
        client_secrets.end_grace(
            clients.get_client(client_id), at=utcnow() - dt.timedelta(seconds=1)
        )
    assert not works(client, client_id, old)
    assert works(client, client_id, new)
    assert info(app, client_id)["previous_secret_expires_at"] is None


def test_an_expired_previous_secret_fails_even_in_a_cached_row(app, client):
    """The expiry is checked at each request, not only when the row is loaded."""
    client_id, old = setup_m2m(app)
    new = rotate(app, client_id, grace_seconds=60)
    assert works(client, client_id, old)  # the cache holds the row with the grace period
    with app.app_context():
        cached = clients.cached_client(client_id)
        cached.previous_secret_expires_at = utcnow() - dt.timedelta(seconds=1)  # time passed
        assert clients.cached_client(client_id) is cached
    assert not works(client, client_id, old)
    assert works(client, client_id, new)


def test_grace_zero_ends_the_old_secret_at_once(app, client):
    client_id, old = setup_m2m(app)
    assert works(client, client_id, old)  # cached: the rotation must clear it
    new = rotate(app, client_id)  # the default, as before this feature
    assert not works(client, client_id, old)
    assert works(client, client_id, new)
    with app.app_context():
        row = Client.get_by_id(client_id)
        assert row.previous_secret_hash is None and row.previous_secret_expires_at is None
    assert info(app, client_id)["previous_secret_expires_at"] is None
    assert rotations(app)[0]["grace_seconds"] == 0


def test_a_second_rotation_replaces_the_previous_secret(app, client):
    client_id, first = setup_m2m(app)
    second = rotate(app, client_id, grace_seconds=DAY)
    third = rotate(app, client_id, grace_seconds=600)
    assert not works(client, client_id, first)  # only one previous secret: the second
    assert works(client, client_id, second) and works(client, client_id, third)
    fourth = rotate(app, client_id, grace_seconds=0)
    for gone in (first, second, third):
        assert not works(client, client_id, gone)
    assert works(client, client_id, fourth)
    assert [e["grace_seconds"] for e in rotations(app)] == [DAY, 600, 0]


@pytest.mark.parametrize("grace", [-1, 30 * DAY + 1, "60", 1.5, True, None])
def test_a_bad_grace_is_refused_and_changes_nothing(app, client, grace):
    client_id, secret = setup_m2m(app)
    with app.app_context(), pytest.raises(clients.ClientError, match="grace_seconds"):
        clients.rotate_secret(clients.get_client(client_id), grace_seconds=grace)
    assert works(client, client_id, secret)
    assert rotations(app) == []


def test_the_longest_grace_is_thirty_days(app, client):
    client_id, old = setup_m2m(app)
    rotate(app, client_id, grace_seconds=30 * DAY)
    assert works(client, client_id, old)


def test_both_hashes_decide_and_the_previous_only_in_its_grace():
    current, previous = sha256_hex("new"), sha256_hex("old")
    assert matches_current_or_previous("new", current, previous, previous_valid=False)
    assert matches_current_or_previous("old", current, previous, previous_valid=True)
    assert not matches_current_or_previous("old", current, previous, previous_valid=False)
    assert not matches_current_or_previous("old", current, None, previous_valid=True)
    assert not matches_current_or_previous("0" * 64, current, None, previous_valid=True)
    assert not matches_current_or_previous("x", current, previous, previous_valid=True)


def test_cli_rotate_secret_with_grace(app, client, runner):
    client_id, old = setup_m2m(app)
    result = runner.invoke(
        args=["clients", "rotate-secret", client_id, "--grace", "3600", "--json", "--yes"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["client_id"] == client_id and data["previous_secret_expires_at"].endswith("Z")
    assert works(client, client_id, old) and works(client, client_id, data["client_secret"])
    human = runner.invoke(args=["clients", "rotate-secret", client_id, "-y"])
    assert human.exit_code == 0 and "old secret:     no longer valid" in human.output
    newest = human.output.split("client_secret:")[1].split()[0]
    assert not works(client, client_id, data["client_secret"]) and works(client, client_id, newest)
    graced = runner.invoke(args=["clients", "rotate-secret", client_id, "--grace", "60", "-y"])
    assert "old secret:     valid until " in graced.output
    too_long = runner.invoke(args=["clients", "rotate-secret", client_id, "--grace", "2592001"])
    assert too_long.exit_code == 1 and "30 days" in too_long.output
    assert len(too_long.output.strip().splitlines()) == 1
