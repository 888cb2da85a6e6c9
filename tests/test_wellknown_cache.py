"""Discovery and the JWKS as HTTP caches see them (issue 13): bytes serialised once, a strong
ETag, Cache-Control, If-None-Match answered 304, and a new ETag as soon as the keys change."""

from __future__ import annotations

import time

import requests

from oauth.tokens import keys
from tests.live import serve

JWKS = "/.well-known/jwks.json"
DISCOVERY = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


def etag_of(response) -> str:
    tag = response.headers["ETag"]
    assert tag.startswith('"') and tag.endswith('"') and len(tag) > 2, tag  # strong: no W/
    return tag


def test_etag_is_stable_and_matches_the_body(client):
    for path in (JWKS, *DISCOVERY):
        first, second = client.get(path), client.get(path)
        assert first.status_code == second.status_code == 200
        assert etag_of(first) == etag_of(second)
        assert first.data == second.data and first.get_json()
        assert first.headers["Cache-Control"] == f"public, max-age={keys.JWKS_MAX_AGE}"
        assert first.headers["Access-Control-Allow-Origin"] == "*"
        assert first.mimetype == "application/json"
    # Both discovery paths serve the same document, so the same ETag.
    assert etag_of(client.get(DISCOVERY[0])) == etag_of(client.get(DISCOVERY[1]))


def test_head_and_a_query_string_get_the_same_public_answer(client, auth):
    auth.create_user()
    auth.login()  # a browser with a session cookie: the documents still do not vary on it
    for path in (JWKS, *DISCOVERY):
        fresh = client.get(path)
        assert "Vary" not in fresh.headers
        head = client.head(path)
        assert head.status_code == 200 and head.data == b""
        assert head.headers["Content-Length"] == str(len(fresh.data))
        queried = client.get(path + "?cache-buster=1")
        assert queried.status_code == 200 and queried.data == fresh.data
        for answer in (head, queried):
            assert "Vary" not in answer.headers, (path, answer.request.method)
            for name in ("ETag", "Cache-Control", "Access-Control-Allow-Origin"):
                assert answer.headers[name] == fresh.headers[name]


def test_if_none_match_is_answered_304_without_a_body(client):
    for path in (JWKS, *DISCOVERY):
        fresh = client.get(path)
        tag = etag_of(fresh)
        for header in (tag, f"W/{tag}", f'"something-else", {tag}', "*"):
            cached = client.get(path, headers={"If-None-Match": header})
            assert cached.status_code == 304, (path, header)
            assert cached.data == b""
            assert cached.headers["ETag"] == tag
            assert cached.headers["Cache-Control"] == fresh.headers["Cache-Control"]
            assert cached.headers["Access-Control-Allow-Origin"] == "*"
            assert cached.headers.get("Vary") == fresh.headers.get("Vary")


def test_a_stale_or_foreign_etag_gets_the_document(client):
    for path in (JWKS, *DISCOVERY):
        fresh = client.get(path)
        for header in ('"0123456789abcdef"', 'W/"nope"', "not even an etag"):
            answer = client.get(path, headers={"If-None-Match": header})
            assert answer.status_code == 200, (path, header)
            assert answer.data == fresh.data
            assert answer.headers["ETag"] == fresh.headers["ETag"]


def test_key_rotation_changes_the_jwks_etag_at_once(app, client):
    before = client.get(JWKS)
    with app.app_context():
        new = keys.rotate()
    after = client.get(JWKS)
    assert etag_of(after) != etag_of(before)
    assert new.kid in {key["kid"] for key in after.get_json()["keys"]}
    assert new.kid not in {key["kid"] for key in before.get_json()["keys"]}
    # The client's cached copy is stale now: it gets the new set, not a 304.
    revalidated = client.get(JWKS, headers={"If-None-Match": before.headers["ETag"]})
    assert revalidated.status_code == 200 and revalidated.data == after.data
    # Discovery does not name keys: its ETag stays.
    assert etag_of(client.get(DISCOVERY[0])) == etag_of(client.get(DISCOVERY[0]))


def test_revoked_key_leaves_the_jwks_and_its_etag(app, client):
    with app.app_context():
        old = keys.current_keys()[0].kid
        keys.rotate()
    before = client.get(JWKS)
    assert old in {key["kid"] for key in before.get_json()["keys"]}
    with app.app_context():
        keys.revoke(old)
    after = client.get(JWKS)
    assert old not in {key["kid"] for key in after.get_json()["keys"]}
    assert etag_of(after) != etag_of(before)


def test_discovery_follows_the_configuration(app, client):
    before = client.get(DISCOVERY[0])
    assert "registration_endpoint" not in before.get_json()
    app.config["ALLOW_DYNAMIC_REGISTRATION"] = True
    after = client.get(DISCOVERY[0])
    assert after.get_json()["registration_endpoint"].endswith("/oauth/register")
    assert etag_of(after) != etag_of(before)


def test_workers_agree_on_the_etag_and_follow_a_rotation(app, database_url, tmp_path):
    """Over real HTTP (gunicorn, 2 workers): the ETag is a hash of the bytes, so every worker
    gives the same one; 304 goes over the wire without a body; a rotation made elsewhere (this
    process, as the CLI would) reaches every worker within KEYS_REFRESH_SECONDS."""
    with serve(
        database_url, tmp_path, workers=2, SECRET_KEY=app.config["SECRET_KEY"],
        KEYS_REFRESH_SECONDS=1,
    ) as base:  # fmt: skip
        answers = [requests.get(base + JWKS, timeout=10) for _ in range(6)]
        tags = {answer.headers["ETag"] for answer in answers}
        assert len(tags) == 1 and all(answer.status_code == 200 for answer in answers)
        (tag,) = tags
        cached = requests.get(base + JWKS, headers={"If-None-Match": tag}, timeout=10)
        assert cached.status_code == 304 and cached.content == b""
        assert cached.headers["ETag"] == tag
        with app.app_context():
            new = keys.rotate().kid
        deadline = time.monotonic() + 15
        seen: set[str] = set()
        while time.monotonic() < deadline:
            answers = [requests.get(base + JWKS, timeout=10) for _ in range(4)]
            seen = {answer.headers["ETag"] for answer in answers}
            if tag not in seen:
                break
            time.sleep(0.3)
        assert tag not in seen
        assert all(new in answer.text for answer in answers)
