"""The lean lane of UserInfo and introspection (oauth/protocol/lean_resource.py,
oauth/web/resource_lane.py): it answers the well-formed request exactly as the Flask view
would (body bytes, status, headers, log line), and sends every other request, errors
included, to Flask untouched. Each request is made twice, lane on and ``LEAN_TOKEN_LANE``
off, and the lane's decisions are recorded by a spy that runs it unchanged."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest

from oauth.protocol import lean_resource
from oauth.registry import apis, clients, resource_servers
from oauth.storage.models import OAuthSession, User, utcnow
from oauth.tokens import keys
from tests.m2m_helpers import API, cc_token, setup_m2m
from tests.oauth_helpers import Flow, basic_auth_header, decode_jwt_unverified, make_client

FORM = "application/x-www-form-urlencoded"
VARYING = {"x-request-id", "vary", "content-length"}  # as in test_token_lane.py
INACTIVE = {"active": False}


def spy_on(monkeypatch, name: str) -> list:
    """The statuses the lane's ``name`` answered (None: it left the request to Flask)."""
    decided, real = [], getattr(lean_resource, name)

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        decided.append(None if result is None else result.status)
        return result

    monkeypatch.setattr(lean_resource, name, spy)
    return decided


@pytest.fixture
def userinfo_lane(monkeypatch):
    return spy_on(monkeypatch, "userinfo_answer")


@pytest.fixture
def introspection_lane(monkeypatch):
    return spy_on(monkeypatch, "introspection_answer")


@pytest.fixture
def flow(app):
    """Alice signed in to a confidential app; the API calls go from a cookie-less client."""
    browser = app.test_client()
    client_id, secret = make_client(app)
    flow = Flow(app, browser, client_id=client_id, secret=secret)
    flow.auth.create_user(name="Alice", phone="+15550001")
    flow.auth.login()
    return flow


def both_ways(app, caplog, send):
    """``send(http)`` through the lane and through Flask: both responses and the request
    log line's endpoint, client and user of each."""
    results = []
    for lane in (True, False):
        app.config["LEAN_TOKEN_LANE"] = lane
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="portcullis.request"):
            response = send(app.test_client())
        (line,) = [r for r in caplog.records if r.name == "portcullis.request"]
        results.append((response, (line.endpoint, line.client_id, line.user_id, line.status)))
    app.config["LEAN_TOKEN_LANE"] = True
    (lane, lane_line), (full, full_line) = results
    assert lane_line == full_line
    return lane, full


def headers_of(response) -> dict:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in VARYING}


def assert_same(lane, full) -> None:
    assert lane.status_code == full.status_code
    assert lane.get_data() == full.get_data()
    assert headers_of(lane) == headers_of(full)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- UserInfo --------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["openid", "openid email", "openid email profile phone"])
def test_userinfo_lane_answers_like_the_view(app, flow, caplog, userinfo_lane, scope):
    token = flow.tokens(scope=scope)["access_token"]
    lane, full = both_ways(
        app, caplog, lambda http: http.get("/oauth/userinfo", headers=bearer(token))
    )
    assert userinfo_lane == [200]  # the lane answered the first; it was off for the second
    assert_same(lane, full)
    assert lane.status_code == 200 and lane.headers["Cache-Control"] == "no-store"
    assert lane.headers["Access-Control-Allow-Origin"] == "*" and lane.headers["X-Request-ID"]
    assert lane.get_json()["sub"] and ("email" in lane.get_json()) == ("email" in scope)


def test_a_post_without_a_body_takes_the_lane(app, flow, caplog, userinfo_lane):
    token = flow.tokens()["access_token"]
    lane, full = both_ways(
        app, caplog, lambda http: http.post("/oauth/userinfo", headers=bearer(token))
    )
    assert userinfo_lane == [200]
    assert_same(lane, full)


def _refused_tokens(app, flow) -> dict[str, str]:
    """Tokens UserInfo refuses, each for a different reason."""
    refused = {"garbage": "not.a.token", "empty-ish": "   x"}
    refused["no openid"] = flow.tokens(scope="email")["access_token"]
    refused["id token"] = flow.tokens()["id_token"]
    live = flow.tokens()["access_token"]
    _, claims = decode_jwt_unverified(live)
    with app.app_context():
        refused["other issuer"] = keys.sign_jwt(
            {**claims, "iss": "https://evil.example"}, typ="at+jwt"
        )
        refused["expired"] = keys.sign_jwt({**claims, "exp": int(time.time()) - 3600}, typ="at+jwt")
    refused["tampered"] = live[:-4] + ("AAAA" if not live.endswith("AAAA") else "BBBB")
    machine = setup_m2m(app)
    refused["machine token"] = cc_token(app.test_client(), *machine, audience=API).get_json()[
        "access_token"
    ]
    return refused


def test_refused_tokens_get_the_views_answer(app, flow, caplog, userinfo_lane):
    for case, token in _refused_tokens(app, flow).items():
        lane, full = both_ways(
            app, caplog, lambda http, t=token: http.get("/oauth/userinfo", headers=bearer(t))
        )
        assert_same(lane, full)
        assert lane.status_code in (401, 403), case
        assert lane.headers["WWW-Authenticate"].startswith("Bearer"), case
    assert set(userinfo_lane) == {None}  # every one reached the lane, which left it to Flask


def test_revoked_sessions_and_disabled_users_are_refused_by_the_view(
    app, flow, caplog, userinfo_lane
):
    revoked, disabled = flow.tokens()["access_token"], flow.tokens()["access_token"]
    with app.app_context():
        session_id = decode_jwt_unverified(revoked)[1]["session_id"]
        OAuthSession.update(revoked_at=utcnow()).where(OAuthSession.id == session_id).execute()
    for token in (revoked, disabled):
        lane, full = both_ways(
            app, caplog, lambda http, t=token: http.get("/oauth/userinfo", headers=bearer(t))
        )
        if token == disabled:
            assert_same(lane, full)
            assert lane.status_code == 200  # the other session's token still works
            with app.app_context():
                User.update(disabled=True).execute()
            lane, full = both_ways(
                app, caplog, lambda http, t=token: http.get("/oauth/userinfo", headers=bearer(t))
            )
        assert_same(lane, full)
        assert lane.status_code == 401
    assert userinfo_lane == [None, 200, None]


def test_other_userinfo_requests_never_enter_the_lane(app, flow, caplog, userinfo_lane):
    token = flow.tokens()["access_token"]
    requests = {
        "no token": lambda http: http.get("/oauth/userinfo"),
        "token in the body": lambda http: http.post(
            "/oauth/userinfo", data={"access_token": token}
        ),
        "header and a body": lambda http: http.post(
            "/oauth/userinfo", data={"x": "1"}, headers=bearer(token)
        ),
        "a query string": lambda http: http.get(
            "/oauth/userinfo?access_token=" + token, headers=bearer(token)
        ),
        "basic auth": lambda http: http.get("/oauth/userinfo", headers=basic_auth_header("a", "b")),
        "HEAD": lambda http: http.head("/oauth/userinfo", headers=bearer(token)),
        "PUT": lambda http: http.put("/oauth/userinfo", headers=bearer(token)),
    }
    for send in requests.values():
        lane, full = both_ways(app, caplog, send)
        assert_same(lane, full)
    assert userinfo_lane == []  # none was even passed to the lane's logic


USERINFO_PLUGIN = """
from oauth import hookimpl

calls = []
mode = ["ok"]


@hookimpl
def userinfo_claims(claims, user, scopes):
    calls.append(user.email)
    if mode[0] == "broken":
        raise RuntimeError("plugin bug")
    return {"https://example.com/plan": "gold"}
"""


def test_the_userinfo_hook_runs_once_and_a_failure_is_the_views_500(
    make_app, plugin_dir, caplog, userinfo_lane
):
    (plugin_dir / "plan.py").write_text(USERINFO_PLUGIN)
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    module = next(m for _, m in app.extensions["portcullis.plugins"].pm.list_name_plugin()
                  if hasattr(m, "calls"))  # fmt: skip
    client_id, secret = make_client(app)
    flow = Flow(app, app.test_client(), client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    token = flow.tokens()["access_token"]
    send = lambda http: http.get("/oauth/userinfo", headers=bearer(token))  # noqa: E731

    lane, full = both_ways(app, caplog, send)
    assert_same(lane, full)
    assert lane.get_json()["https://example.com/plan"] == "gold"
    assert len(module.calls) == 2  # once per request
    module.mode[0] = "broken"
    with caplog.at_level(logging.ERROR):
        lane, full = both_ways(app, caplog, send)
    assert_same(lane, full)
    assert lane.status_code == 500 and lane.get_json()["error"] == "server_error"
    assert "plan" not in lane.get_data(as_text=True)  # the plugin is named in the log only
    assert len(module.calls) == 4  # a failure is not retried on the full path
    assert userinfo_lane == [200, 500]


# --- introspection ---------------------------------------------------------------------------


def introspect(http, data: dict, headers: dict | None = None, content_type: str = FORM):
    body = data if isinstance(data, str) else "&".join(f"{k}={v}" for k, v in data.items())
    return http.post(
        "/oauth/introspect", data=body, headers=headers or {}, content_type=content_type
    )


def compare_introspection(app, caplog, data, headers=None, content_type=FORM):
    lane, full = both_ways(app, caplog, lambda http: introspect(http, data, headers, content_type))
    assert_same(lane, full)
    return lane


def link(app, identifier: str, client_id: str | None) -> None:
    with app.app_context():
        api = apis.get_api(identifier) or apis.create_api(identifier, identifier)
        resource_servers.set_resource_server(
            api, clients.get_client(client_id) if client_id else None
        )


def test_introspection_lane_answers_like_the_endpoint(app, flow, caplog, introspection_lane):
    issued = flow.tokens(scope="openid email")
    own = basic_auth_header(flow.client_id, flow.secret)
    post = {"client_id": flow.client_id, "client_secret": flow.secret}
    cases = [
        ({"token": issued["access_token"]}, own),
        ({"token": issued["access_token"], "token_type_hint": "access_token"}, own),
        ({"token": issued["access_token"], **post}, None),
        ({"token": issued["refresh_token"]}, own),
        ({"token": issued["refresh_token"], "token_type_hint": "refresh_token"}, own),
        ({"token": issued["refresh_token"], "token_type_hint": "unknown_kind", **post}, None),
        ({"token": issued["access_token"], "client_id": flow.client_id}, own),
    ]
    for data, headers in cases:
        response = compare_introspection(app, caplog, data, headers)
        assert response.status_code == 200
        body = response.get_json()
        assert body["active"] is True and body["client_id"] == flow.client_id
        assert body["username"] == "alice@example.com"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Pragma"] == "no-cache"
    assert introspection_lane == [200] * len(cases)


def test_inactive_tokens_are_answered_by_the_lane(app, flow, caplog, introspection_lane):
    own = basic_auth_header(flow.client_id, flow.secret)
    tokens = _refused_tokens(app, flow)
    del tokens["no openid"]  # a live token: introspection does not care about openid
    del tokens["machine token"]  # another client's
    revoked = flow.tokens()
    with app.app_context():
        session_id = decode_jwt_unverified(revoked["access_token"])[1]["session_id"]
        OAuthSession.update(revoked_at=utcnow()).where(OAuthSession.id == session_id).execute()
    tokens |= {
        "revoked access": revoked["access_token"],
        "revoked refresh": revoked["refresh_token"],
    }
    tokens |= {"unknown refresh": "r" * 40}
    for case, token in tokens.items():
        response = compare_introspection(app, caplog, {"token": token.strip()}, own)
        assert response.get_json() == INACTIVE, case
    assert introspection_lane == [200] * len(tokens)


def test_disabled_users_tokens_are_inactive(app, flow, caplog, introspection_lane):
    issued = flow.tokens()
    with app.app_context():
        User.update(disabled=True).execute()
    own = basic_auth_header(flow.client_id, flow.secret)
    for token in (issued["access_token"], issued["refresh_token"]):
        assert compare_introspection(app, caplog, {"token": token}, own).get_json() == INACTIVE
    assert introspection_lane == [200, 200]


def test_who_may_see_a_token_is_the_same_through_the_lane(app, flow, caplog, introspection_lane):
    link(app, API, None)
    issued = flow.tokens(resource=API)
    machine = setup_m2m(app, identifier=API)
    machine_token = cc_token(app.test_client(), *machine, audience=API).get_json()["access_token"]
    server = make_client(app, name="API server")
    other = make_client(app, name="Other App")
    as_server = basic_auth_header(*server)

    def seen(token, credentials=as_server):
        return compare_introspection(app, caplog, {"token": token}, credentials).get_json()

    assert seen(issued["access_token"]) == INACTIVE  # not yet the API's resource server
    link(app, API, server[0])
    assert seen(issued["access_token"])["aud"] == API
    assert seen(machine_token)["client_id"] == machine[0]
    assert seen(issued["refresh_token"]) == INACTIVE  # only ever for its own client
    assert seen(machine_token, basic_auth_header(*machine))["active"] is True
    assert seen(issued["access_token"], basic_auth_header(*other)) == INACTIVE
    assert seen(machine_token, basic_auth_header(*other)) == INACTIVE
    assert introspection_lane == [200] * 7


def test_bad_introspection_requests_get_the_endpoints_answer(app, flow, caplog, introspection_lane):
    token = flow.tokens()["access_token"]
    own = basic_auth_header(flow.client_id, flow.secret)
    public_id, _ = make_client(app, public=True, name="SPA")
    malformed = [
        "Basic !!!notbase64", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer " + token,
    ]  # fmt: skip
    cases = {
        "wrong secret": ({"token": token}, basic_auth_header(flow.client_id, "wrong"), 401),
        "unknown client": ({"token": token}, basic_auth_header("nobody", "x"), 401),
        "no credentials": ({"token": token}, None, 401),
        "public client": ({"token": token, "client_id": public_id}, None, 401),
        "wrong post secret": (
            {"token": token, "client_id": flow.client_id, "client_secret": "x"}, None, 401,
        ),
        "two clients": ({"token": token, "client_id": public_id}, own, 400),
        "two methods": ({"token": token, "client_secret": flow.secret}, own, 200),
        "no token": ({"token_type_hint": "access_token"}, own, 400),
        "empty token": ("token=", own, 400),
        "repeated token": (f"token={token}&token=x", own, 200),
        "unknown parameter": (f"token={token}&x=1", own, 200),
        **{f"malformed {n}": ({"token": token}, {"Authorization": a}, 401)
           for n, a in enumerate(malformed)},
    }  # fmt: skip
    for case, (data, headers, status) in cases.items():
        response = compare_introspection(app, caplog, data, headers)
        assert response.status_code == status, case
    as_json = json.dumps({"token": token})
    assert compare_introspection(app, caplog, as_json, own, "application/json").status_code == 400
    assert set(introspection_lane) == {None}  # read by the lane, all left to the endpoint


def test_failed_introspection_auth_is_still_throttled(make_app, introspection_lane):
    app = make_app(CLIENT_AUTH_RATE_LIMIT="3/minute")
    http = app.test_client()
    machine = setup_m2m(app)
    token = cc_token(http, *machine, audience=API).get_json()["access_token"]
    wrong = basic_auth_header(machine[0], "wrong")
    statuses = [introspect(http, {"token": token}, wrong).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    owner = introspect(http, {"token": token}, basic_auth_header(*machine))
    assert owner.status_code == 200 and owner.get_json()["active"] is True
    assert introspection_lane == [None] * 5 + [200]


def test_the_setting_turns_the_lanes_off(app, flow, introspection_lane, userinfo_lane):
    app.config["LEAN_TOKEN_LANE"] = False
    tokens = flow.tokens()
    http = app.test_client()
    assert http.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    own = basic_auth_header(flow.client_id, flow.secret)
    assert introspect(http, {"token": tokens["access_token"]}, own).get_json()["active"] is True
    assert introspection_lane == userinfo_lane == []


def test_strict_form_takes_only_clean_forms():
    assert lean_resource.strict_form(b"token=a.b.c&token_type_hint=access_token") == {
        "token": "a.b.c",
        "token_type_hint": "access_token",
    }
    for body in (
        b"token=a&token=b",
        b"token=",
        b"token=a&grant_type=x",
        b"token=%ff",
        b"tok\xe9=a",
    ):
        assert lean_resource.strict_form(body) is None
