"""The lean lane's user grants (oauth/protocol/lean_grants.py): a refresh or a code exchange by
an authenticated client is answered by the lane, success and error alike, exactly as the full
endpoint answers it, and a check that writes (a replayed code, a reused refresh token) writes
once; a failed client authentication is left to the full endpoint (and its limits)."""

from __future__ import annotations

import logging

import pytest

from oauth import audit
from oauth.protocol import lean_grants
from oauth.storage.db import database
from oauth.storage.models import AuditEvent, OAuthSession, User
from tests.oauth_helpers import Flow, basic_auth_header, decode_jwt_unverified, make_client
from tests.test_token_lane import VARYING

USER_TOKEN_KEYS = {"access_token", "token_type", "expires_in", "scope", "id_token", "refresh_token"}


@pytest.fixture
def lane_answers(monkeypatch):
    """The status of each request the user-grant lane answered (a spy: it runs unchanged)."""
    answered = []
    real = lean_grants.answer

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        answered.append(result[0])
        return result

    monkeypatch.setattr(lean_grants, "answer", spy)
    return answered


def signed_in_flow(app, *, public=False, email="alice@example.com") -> Flow:
    client_id, secret = make_client(app, public=public)
    flow = Flow(app, app.test_client(), client_id=client_id, secret=secret)
    flow.auth.create_user(email)
    flow.auth.login(email)
    return flow


def through(app, lane: bool, request):
    app.config["LEAN_TOKEN_LANE"] = lane
    try:
        return request()
    finally:
        app.config["LEAN_TOKEN_LANE"] = True


def headers_of(response) -> dict:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in VARYING}


def assert_same_answer(lane, full, status):
    assert lane.status_code == full.status_code == status, (lane.get_json(), full.get_json())
    assert headers_of(lane) == headers_of(full)
    lane_body, full_body = lane.get_json(), full.get_json()
    if status != 200:
        assert lane_body == full_body
        return
    assert set(lane_body) == set(full_body)
    for name in ("access_token", "id_token"):
        lane_header, lane_claims = decode_jwt_unverified(lane_body[name])
        full_header, full_claims = decode_jwt_unverified(full_body[name])
        assert lane_header == full_header and set(lane_claims) == set(full_claims)
        for claim in ("iss", "sub", "aud", "client_id", "scope", "amr", "azp"):
            assert lane_claims.get(claim) == full_claims.get(claim)


def events(app, event_type: str) -> list[AuditEvent]:
    with app.app_context():
        audit.flush_spool()
        return list(AuditEvent.select().where(AuditEvent.event_type == event_type))


def test_a_code_exchange_takes_the_lane_and_answers_like_the_full_endpoint(app, lane_answers):
    flow = signed_in_flow(app)
    lane = through(app, True, lambda: flow.exchange(flow.get_code()[0]))
    full = through(app, False, lambda: flow.exchange(flow.get_code()[0]))
    assert lane_answers == [200]  # the lane answered the first, and was off for the second
    assert_same_answer(lane, full, 200)
    assert set(lane.get_json()) == USER_TOKEN_KEYS
    assert lane.headers["Cache-Control"] == "no-store" and lane.headers["Pragma"] == "no-cache"
    issued = events(app, "token.issued")
    jtis = {decode_jwt_unverified(r.get_json()["access_token"])[1]["jti"] for r in (lane, full)}
    assert {e.details["jti"] for e in issued} == jtis
    assert {(e.ip, e.user_id is not None, e.details["grant_type"]) for e in issued} == {
        ("127.0.0.1", True, "authorization_code")
    }


def test_a_refresh_takes_the_lane_and_answers_like_the_full_endpoint(app, lane_answers):
    flow = signed_in_flow(app)
    lane_rt, full_rt = flow.tokens()["refresh_token"], flow.tokens()["refresh_token"]
    lane = through(app, True, lambda: flow.refresh(lane_rt, scope="openid email"))
    full = through(app, False, lambda: flow.refresh(full_rt, scope="openid email"))
    assert lane_answers[-1] == 200
    assert_same_answer(lane, full, 200)
    assert lane.get_json()["scope"] == "openid email"
    # The rotated token works on, through the lane.
    assert flow.refresh(lane.get_json()["refresh_token"]).status_code == 200
    refreshes = [
        e for e in events(app, "token.issued") if e.details["grant_type"] != "authorization_code"
    ]
    assert len(refreshes) == 3 and {e.ip for e in refreshes} == {"127.0.0.1"}


def test_client_secret_post_and_public_clients_take_the_lane(app, lane_answers):
    flow = signed_in_flow(app)
    assert flow.exchange(flow.get_code()[0], auth="post").status_code == 200
    public = signed_in_flow(app, public=True, email="bea@example.com")
    tokens = public.exchange(public.get_code()[0])
    assert tokens.status_code == 200, tokens.get_json()
    assert public.refresh(tokens.get_json()["refresh_token"]).status_code == 200
    assert lane_answers == [200, 200, 200]


CODE_ERRORS = {
    "another redirect_uri": {"redirect_uri": "https://elsewhere.example/cb"},
    "a wrong verifier": {"code_verifier": "w" * 43},
    "a malformed verifier": {"code_verifier": "short"},
    "no verifier": {"code_verifier": None},
    "an unknown code": {"code": "not-a-code"},
    "a resource not granted": {"resource": "https://other.example/api"},
}


@pytest.mark.parametrize("case", sorted(CODE_ERRORS))
def test_a_refused_code_exchange_is_refused_by_the_lane_as_before(app, lane_answers, case):
    flow = signed_in_flow(app)
    code = flow.get_code()[0]  # refused, so not consumed: the same code goes through both
    extra = CODE_ERRORS[case]

    def exchange():
        return flow.exchange(
            extra.get("code", code), **{k: v for k, v in extra.items() if k != "code"}
        )

    lane, full = through(app, True, exchange), through(app, False, exchange)
    assert lane_answers == [lane.status_code]
    assert_same_answer(lane, full, lane.status_code)
    assert lane.status_code == 400 and lane.get_json()["error"] in {
        "invalid_grant", "invalid_request", "invalid_target",
    }  # fmt: skip
    assert flow.exchange(code).status_code == 200  # still unused


def test_a_replayed_code_revokes_its_tokens_once_per_request(app, lane_answers):
    flow = signed_in_flow(app)
    code = flow.get_code()[0]
    tokens = flow.exchange(code).get_json()
    lane = through(app, True, lambda: flow.exchange(code))
    assert len(events(app, "code.replayed")) == 1  # not twice: the lane did not pass it on
    full = through(app, False, lambda: flow.exchange(code))
    assert_same_answer(lane, full, 400)
    assert lane.get_json()["error"] == "invalid_grant" and lane_answers == [200, 400]
    assert len(events(app, "code.replayed")) == 2
    assert flow.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_a_reused_refresh_token_ends_its_session_once(make_app, lane_answers):
    app = make_app(REFRESH_TOKEN_REUSE_INTERVAL=0)
    flow = signed_in_flow(app)
    answers = []
    for lane in (True, False):  # a session for each door
        first = flow.tokens()["refresh_token"]
        assert flow.refresh(first).status_code == 200
        answers.append(through(app, lane, lambda first=first: flow.refresh(first)))
        assert len(events(app, "refresh_token.reuse_detected")) == len(answers)  # once each
    assert_same_answer(*answers, 400)
    assert lane_answers == [200, 200, 400, 200, 200]
    with app.app_context():
        assert {s.revoked_reason for s in OAuthSession.select()} == {"refresh_token_reuse"}


def test_a_replay_within_the_interval_gets_the_current_token(app, lane_answers):
    flow = signed_in_flow(app)
    first = flow.tokens()["refresh_token"]
    current = flow.refresh(first).get_json()["refresh_token"]
    again = flow.refresh(first)
    assert again.status_code == 200 and again.get_json()["refresh_token"] == current
    assert lane_answers == [200, 200, 200]


REFRESH_ERRORS = {
    "an unknown token": {"refresh_token": "nope"},
    "a wider scope": {"scope": "openid email admin"},
    "a resource not granted": {"resource": "https://other.example/api"},
}


@pytest.mark.parametrize("case", sorted(REFRESH_ERRORS))
def test_a_refused_refresh_is_refused_by_the_lane_as_before(app, lane_answers, case):
    flow = signed_in_flow(app)
    token = flow.tokens()["refresh_token"]
    extra = {"refresh_token": token, **REFRESH_ERRORS[case]}

    def refresh():
        return flow.refresh(**extra)

    lane, full = through(app, True, refresh), through(app, False, refresh)
    assert_same_answer(lane, full, 400)
    assert lane_answers[-1] == 400


def test_a_disabled_user_and_another_clients_token_are_refused_as_before(app, lane_answers):
    flow = signed_in_flow(app)
    other_id, other_secret = make_client(app, name="Other")
    token = flow.tokens()["refresh_token"]
    body = {"grant_type": "refresh_token", "refresh_token": token}

    def as_other():
        return flow.browser.post(
            "/oauth/token", data=body, headers=basic_auth_header(other_id, other_secret)
        )

    assert_same_answer(through(app, True, as_other), through(app, False, as_other), 400)
    with app.app_context():
        User.update(disabled=True).execute()
    lane, full = (
        through(app, True, lambda: flow.refresh(token)),
        through(app, False, lambda: flow.refresh(token)),
    )
    assert_same_answer(lane, full, 400)
    assert lane.get_json()["error"] == "invalid_grant"
    assert lane_answers[-2:] == [400, 400]


def test_failed_client_authentication_goes_to_the_full_endpoint_and_is_throttled(
    make_app, lane_answers
):
    app = make_app(CLIENT_AUTH_RATE_LIMIT="3/minute")
    flow = signed_in_flow(app)
    token = flow.tokens()["refresh_token"]
    body = {"grant_type": "refresh_token", "refresh_token": token}
    wrong = basic_auth_header(flow.client_id, "wrong")
    statuses = [
        flow.browser.post("/oauth/token", data=body, headers=wrong).status_code for _ in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    assert flow.refresh(token).status_code == 200  # the owner is never refused
    assert lane_answers == [200, 200]  # the code exchange and the owner's refresh only


PLUGIN = """
from oauth import hookimpl
from oauth.plugins.hookspecs import TokenDenied

calls = []


@hookimpl
def customize_access_token(claims, context):
    calls.append(context.grant_type)
    mode = context.request.headers.get("X-Mode")
    if mode == "refuse":
        raise TokenDenied("access_denied", "Not today.")
    if mode == "break":
        raise RuntimeError("plugin bug")
    return {"https://example.com/ip_seen": context.request.uri}
"""


def test_hooks_run_once_and_a_refusal_consumes_nothing(make_app, plugin_dir, lane_answers, caplog):
    (plugin_dir / "modes.py").write_text(PLUGIN)
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    flow = signed_in_flow(app)
    host = app.extensions["portcullis.plugins"]
    module = next(p for _n, p in host.pm.list_name_plugin() if hasattr(p, "calls"))
    code = flow.get_code()[0]

    def exchange(mode):
        data = {"grant_type": "authorization_code", "code": code, "code_verifier": flow.verifier,
                "redirect_uri": flow.redirect_uri}  # fmt: skip
        auth = basic_auth_header(flow.client_id, flow.secret)
        return lambda: flow.browser.post(
            "/oauth/token", data=data, headers={**auth, "X-Mode": mode}
        )

    refused = [through(app, lane, exchange("refuse")) for lane in (True, False)]
    assert_same_answer(*refused, 403)
    with caplog.at_level(logging.ERROR):
        broken = [through(app, lane, exchange("break")) for lane in (True, False)]
    assert_same_answer(*broken, 500)
    assert "modes" not in broken[0].get_data(as_text=True)
    ok = through(app, True, exchange("ok"))  # nothing was consumed by the refusals
    assert ok.status_code == 200
    claims = decode_jwt_unverified(ok.get_json()["access_token"])[1]
    assert claims["https://example.com/ip_seen"] == "http://localhost/oauth/token"
    assert module.calls == ["authorization_code"] * 5  # once per request
    assert lane_answers == [403, 500, 200]


def test_an_unexpected_failure_answers_500_as_flask_does_and_never_shows_it(app, caplog):
    """Not a refusal but a fault (here the table of refresh tokens is gone): the lane logs it
    with its traceback and answers the full endpoint's 500, with no detail of the fault."""
    flow = signed_in_flow(app)
    lane_rt, full_rt = flow.tokens()["refresh_token"], flow.tokens()["refresh_token"]
    with app.app_context():
        database.execute_sql("ALTER TABLE refresh_token RENAME TO refresh_token_gone")
    caplog.set_level(logging.ERROR)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: Flask answers its 500
    try:
        lane = through(app, True, lambda: flow.refresh(lane_rt))
        full = through(app, False, lambda: flow.refresh(full_rt))
    finally:
        with app.app_context():
            database.execute_sql("ALTER TABLE refresh_token_gone RENAME TO refresh_token")
    assert_same_answer(lane, full, 500)
    assert lane.get_json()["error"] == "server_error"
    assert "refresh_token" not in lane.get_data(as_text=True)
    faults = [r for r in caplog.records if r.getMessage() == "Exception on /oauth/token [POST]"]
    assert len(faults) == 2 and all(r.exc_info for r in faults)  # the lane's, then Flask's
    assert faults[0].name == "oauth.web.lane"
    assert flow.refresh(lane_rt).status_code == 200  # nothing was spent by the failed tries
