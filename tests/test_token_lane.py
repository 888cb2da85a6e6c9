"""The token endpoint's lean lane (oauth/protocol/lean_token.py, oauth/web/token_lane.py):
it answers the well-formed client-credentials request exactly as the full endpoint would, and
sends every other request, errors included, to the full endpoint untouched."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from authlib.oauth2.rfc6749.requests import OAuth2Request

from oauth import audit
from oauth.protocol import lean_token
from oauth.storage.models import AuditEvent
from tests.m2m_helpers import API, setup_m2m
from tests.oauth_helpers import basic_auth_header, decode_jwt_unverified, make_client

FORM = "application/x-www-form-urlencoded"
# Headers that differ between any two answers, or that only Flask's session machinery adds.
VARYING = {"x-request-id", "vary", "content-length"}


@pytest.fixture
def lane_answers(monkeypatch):
    """What the lane decided for each request: a status it answered, or None (the full
    endpoint answered). A spy: the lane itself runs unchanged."""
    decided = []
    real = lean_token.answer

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        decided.append(None if result is None else result.status)
        return result

    monkeypatch.setattr(lean_token, "answer", spy)
    return decided


def post(http, body: str, headers: dict | None = None, content_type: str = FORM):
    return http.post("/oauth/token", data=body, headers=headers or {}, content_type=content_type)


def both_ways(app, http, body: str, headers: dict | None = None, content_type: str = FORM):
    """The same request through the lane and through the full endpoint."""
    app.config["LEAN_TOKEN_LANE"] = True
    lane = post(http, body, headers, content_type)
    app.config["LEAN_TOKEN_LANE"] = False
    full = post(http, body, headers, content_type)
    app.config["LEAN_TOKEN_LANE"] = True
    return lane, full


def headers_of(response) -> dict:
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in VARYING}


def test_the_lane_answers_like_the_full_endpoint(app, client, lane_answers):
    client_id, secret = setup_m2m(app)
    lane, full = both_ways(
        app, client, f"grant_type=client_credentials&audience={API}",
        basic_auth_header(client_id, secret),
    )  # fmt: skip
    assert lane_answers == [200]  # the lane answered the first, and was off for the second
    assert lane.status_code == full.status_code == 200
    assert headers_of(lane) == headers_of(full)
    assert lane.headers["Cache-Control"] == "no-store" and lane.headers["Pragma"] == "no-cache"
    assert lane.headers["X-Request-ID"]
    lane_body, full_body = lane.get_json(), full.get_json()
    assert set(lane_body) == set(full_body) == {"access_token", "token_type", "expires_in", "scope"}
    assert {k: v for k, v in lane_body.items() if k != "access_token"} == {
        k: v for k, v in full_body.items() if k != "access_token"
    }
    lane_header, lane_claims = decode_jwt_unverified(lane_body["access_token"])
    full_header, full_claims = decode_jwt_unverified(full_body["access_token"])
    assert lane_header == full_header
    assert set(lane_claims) == set(full_claims)
    for name in ("iss", "sub", "aud", "client_id", "scope", "gty"):
        assert lane_claims[name] == full_claims[name]
    assert lane_claims["jti"] != full_claims["jti"]
    with app.app_context():
        audit.flush_spool()
        events = list(AuditEvent.select().where(AuditEvent.event_type == "token.issued"))
    assert len(events) == 2 and {e.ip for e in events} == {"127.0.0.1"}
    assert all(e.client_id == client_id and e.details["audience"] == API for e in events)
    assert {e.details["jti"] for e in events} == {lane_claims["jti"], full_claims["jti"]}


def test_client_secret_post_and_resource_take_the_lane(app, client, lane_answers):
    client_id, secret = setup_m2m(app)
    body = f"grant_type=client_credentials&resource={API}&client_id={client_id}&client_secret={secret}&scope=read%3Athings"
    response = post(client, body)
    assert lane_answers == [200] and response.status_code == 200
    assert response.get_json()["scope"] == "read:things"


BAD_REQUESTS = {
    "wrong secret": ("grant_type=client_credentials&audience={api}", "{id}", "wrong"),
    "unknown client": ("grant_type=client_credentials&audience={api}", "nobody", "x"),
    "no grant_type": ("audience={api}", "{id}", "{secret}"),
    "another grant type": ("grant_type=password&username=a&password=b", "{id}", "{secret}"),
    "duplicate audience": (
        "grant_type=client_credentials&audience={api}&audience={api}", "{id}", "{secret}",
    ),
    "two resources": (
        "grant_type=client_credentials&resource={api}&resource=https://b", "{id}", "{secret}",
    ),
    "scope not granted": (
        "grant_type=client_credentials&audience={api}&scope=admin", "{id}", "{secret}",
    ),
    "unknown API": ("grant_type=client_credentials&audience=https://nope", "{id}", "{secret}"),
    "no API": ("grant_type=client_credentials", "{id}", "{secret}"),
    "audience and resource differ": (
        "grant_type=client_credentials&audience={api}&resource=https://b", "{id}", "{secret}",
    ),
    "header and body name two clients": (
        "grant_type=client_credentials&audience={api}&client_id=other", "{id}", "{secret}",
    ),
    "no credentials": ("grant_type=client_credentials&audience={api}", None, None),
    "a NUL in a value": ("grant_type=client_credentials&audience={api}%00", "{id}", "{secret}"),
    "broken percent-encoding": (
        "grant_type=client_credentials&audience=%ff%fe", "{id}", "{secret}",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_every_other_request_gets_the_full_endpoints_answer(app, client, lane_answers, case):
    client_id, secret = setup_m2m(app, granted=["read:things"])
    template, user, password = BAD_REQUESTS[case]
    values = {"api": API, "id": client_id, "secret": secret}
    body = template.format(**values)
    headers = basic_auth_header(user.format(**values), password.format(**values)) if user else {}
    lane, full = both_ways(app, client, body, headers)
    assert set(lane_answers) <= {None}  # the lane never answered
    assert lane.status_code == full.status_code and lane.status_code in (400, 401)
    assert lane.get_json() == full.get_json()
    assert lane.headers.get("WWW-Authenticate") == full.headers.get("WWW-Authenticate")
    with app.app_context():
        audit.flush_spool()
        assert AuditEvent.select().where(AuditEvent.event_type == "token.issued").count() == 0


@pytest.mark.parametrize(
    "extra",
    ["&x=1", "&scope=", "&client_secret={secret}", "&client_id={id}&client_secret={secret}"],
)
def test_unusual_valid_requests_are_left_to_the_full_endpoint(app, client, lane_answers, extra):
    """Unknown parameters are ignored, an empty one is omitted (RFC 6749 §3.1), a secret may
    come twice: the full endpoint issues these; the lane leaves them to it."""
    client_id, secret = setup_m2m(app)
    body = f"grant_type=client_credentials&audience={API}" + extra.format(
        id=client_id, secret=secret
    )
    lane, full = both_ways(app, client, body, basic_auth_header(client_id, secret))
    assert set(lane_answers) <= {None}  # not answered (or not even read) by the lane
    assert lane.status_code == full.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Basic !!!notbase64", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "Bearer abc",
     "Basic " + base64.b64encode(b"no-colon").decode()],
)  # fmt: skip
def test_malformed_credentials_get_the_full_endpoints_answer(
    app, client, lane_answers, authorization
):
    setup_m2m(app)
    lane, full = both_ways(
        app, client, f"grant_type=client_credentials&audience={API}",
        {"Authorization": authorization},
    )  # fmt: skip
    assert set(lane_answers) <= {None}
    assert (lane.status_code, lane.get_json()) == (full.status_code, full.get_json())
    assert lane.status_code == 401


def test_other_bodies_and_methods_never_enter_the_lane(app, client, lane_answers):
    client_id, secret = setup_m2m(app)
    auth = basic_auth_header(client_id, secret)
    as_json = json.dumps({"grant_type": "client_credentials", "audience": API})
    lane, full = both_ways(app, client, as_json, auth, content_type="application/json")
    assert (lane.status_code, lane.get_json()) == (full.status_code, full.get_json())
    huge = f"grant_type=client_credentials&audience={API}&scope=" + "a" * 5000
    lane, full = both_ways(app, client, huge, auth)
    assert (lane.status_code, lane.get_json()) == (full.status_code, full.get_json())
    assert client.get("/oauth/token").status_code == 405
    assert lane_answers == []  # none was even read by the lane


def test_failed_client_authentication_is_still_throttled(make_app, lane_answers):
    app = make_app(CLIENT_AUTH_RATE_LIMIT="3/minute")
    http = app.test_client()
    client_id, secret = setup_m2m(app)
    body = f"grant_type=client_credentials&audience={API}"
    statuses = [
        post(http, body, basic_auth_header(client_id, "wrong")).status_code for _ in range(5)
    ]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
    assert post(http, body, basic_auth_header(client_id, secret)).status_code == 200  # the owner


def test_public_clients_and_clients_without_the_grant_are_refused_as_before(
    app, client, lane_answers
):
    public_id, _ = make_client(app, public=True)
    web_id, web_secret = make_client(app)
    setup_m2m(app)
    body = f"grant_type=client_credentials&audience={API}"
    lane, full = both_ways(app, client, body + f"&client_id={public_id}")
    assert (lane.status_code, lane.get_json()) == (full.status_code, full.get_json())
    lane, full = both_ways(app, client, body, basic_auth_header(web_id, web_secret))
    assert (lane.status_code, lane.get_json()) == (full.status_code, full.get_json())
    assert lane.get_json()["error"] == "unauthorized_client"
    assert set(lane_answers) <= {None}


PLUGIN = """
from oauth import hookimpl
from oauth.plugins.hookspecs import TokenDenied

seen = []


@hookimpl
def customize_access_token(claims, context):
    request = context.request
    seen.append((request.form.get("audience"), request.headers.get("X-Tenant"),
                  request.payload.data.get("grant_type"), request.client.client_id,
                  request.method, request.uri))
    tenant = request.headers.get("X-Tenant")
    if tenant == "refused":
        raise TokenDenied("access_denied", "No tokens for this tenant.")
    if tenant == "broken":
        raise RuntimeError("plugin bug")
    return {"https://example.com/tenant": tenant}
"""


def test_hooks_run_once_and_see_the_request(make_app, plugin_dir, lane_answers, caplog):
    (plugin_dir / "tenant.py").write_text(PLUGIN)
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    http = app.test_client()
    client_id, secret = setup_m2m(app)
    module = next(m for m in _plugin_modules(app) if hasattr(m, "seen"))
    body = f"grant_type=client_credentials&audience={API}"
    auth = basic_auth_header(client_id, secret)

    ok = post(http, body, {**auth, "X-Tenant": "acme"})
    assert ok.status_code == 200
    claims = decode_jwt_unverified(ok.get_json()["access_token"])[1]
    assert claims["https://example.com/tenant"] == "acme"
    expected = (
        API,
        "acme",
        "client_credentials",
        client_id,
        "POST",
        "http://localhost/oauth/token",
    )
    assert module.seen == [expected]

    refused, full_refused = both_ways(app, http, body, {**auth, "X-Tenant": "refused"})
    assert refused.status_code == full_refused.status_code == 403
    assert refused.get_json() == full_refused.get_json()
    assert refused.get_json()["error"] == "access_denied"

    with caplog.at_level(logging.ERROR):
        broken, full_broken = both_ways(app, http, body, {**auth, "X-Tenant": "broken"})
    assert broken.status_code == full_broken.status_code == 500
    assert broken.get_json() == full_broken.get_json()
    assert "tenant" not in broken.get_data(as_text=True)  # the plugin is named in the log only
    assert len(module.seen) == 5  # once per request: a refusal is not retried on the full path
    assert lane_answers == [200, 403, 500]
    with app.app_context():
        audit.flush_spool()
        assert AuditEvent.select().where(AuditEvent.event_type == "token.issued").count() == 1


def _plugin_modules(app):
    host = app.extensions["portcullis.plugins"]
    return [plugin for _name, plugin in host.pm.list_name_plugin()]


def test_the_hooks_request_has_what_authlibs_has():
    lean = lean_token.LeanRequest("https://issuer.example/oauth/token", {}, {"a": "b"})
    authlib = OAuth2Request("POST", "https://issuer.example/oauth/token", headers={})
    assert set(vars(authlib)) <= set(vars(lean))
    assert lean.form == {"a": "b"} and lean.payload.data == {"a": "b"} and lean.args == {}


def test_plain_http_to_a_public_host_is_refused_as_before(make_app, lane_answers, monkeypatch):
    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
    app = make_app()
    http = app.test_client()
    client_id, secret = setup_m2m(app)
    response = http.post(
        "/oauth/token", base_url="http://issuer.example",
        data=f"grant_type=client_credentials&audience={API}", content_type=FORM,
        headers=basic_auth_header(client_id, secret),
    )  # fmt: skip
    assert lane_answers == [None]
    assert response.status_code == 400 and response.get_json()["error"] == "insecure_transport"


@pytest.mark.parametrize(
    "body",
    ["grant_type=client_credentials&audience=a&audience=b", "a=1&&b=2", "grant_type",
     "grant_type=client_credentials&scope=", "x=%zz", "grant_type=%C3%28", "client_id=\xe9"],
)  # fmt: skip
def test_parse_form_takes_only_clean_forms(body):
    assert lean_token.parse_form(body.encode("utf-8")) is None


def test_parse_form_decodes_percent_and_plus():
    form = lean_token.parse_form(b"grant_type=client_credentials&scope=read%3Aa+write%3Ab")
    assert form == {"grant_type": "client_credentials", "scope": "read:a write:b"}


def test_basic_credentials_are_url_decoded_strictly():
    encoded = base64.b64encode(b"my%3Aclient:s%25cret").decode()
    assert lean_token.basic_credentials("Basic " + encoded) == ("my:client", "s%cret")
    assert lean_token.basic_credentials("basic " + encoded) == ("my:client", "s%cret")
    assert lean_token.basic_credentials("Basic " + base64.b64encode(b"id:").decode()) is None
    assert lean_token.basic_credentials("Digest " + encoded) is None


# --- the well-known documents' lane (oauth/web/wellknown.py DocumentLane) ---------------------

DOCUMENTS = ["/.well-known/jwks.json", "/.well-known/openid-configuration",
             "/.well-known/oauth-authorization-server"]  # fmt: skip


def _flask_view(app, path: str, headers: dict | None = None):
    """The same GET answered by the Flask view: the lane takes no request with a query."""
    return app.test_client().get(path + "?via=flask", headers=headers or {})


@pytest.mark.parametrize("path", DOCUMENTS)
def test_the_document_lane_answers_like_the_view(app, client, path):
    lane, view = client.get(path), _flask_view(app, path)
    assert lane.status_code == view.status_code == 200
    assert lane.get_data() == view.get_data()
    assert headers_of(lane) == headers_of(view)
    assert lane.headers["ETag"] and lane.headers["Cache-Control"].startswith("public")
    assert lane.headers["X-Frame-Options"] == "DENY" and lane.headers["X-Request-ID"]
    etag = lane.headers["ETag"]
    again, view_again = (
        client.get(path, headers={"If-None-Match": etag}),
        _flask_view(app, path, {"If-None-Match": etag}),
    )
    assert again.status_code == view_again.status_code == 304 and again.get_data() == b""
    assert client.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_the_document_lane_follows_a_key_rotation(app, client, runner):
    before = client.get("/.well-known/jwks.json")
    result = runner.invoke(args=["keys", "rotate", "--yes"])
    assert result.exit_code == 0, result.output
    after = client.get("/.well-known/jwks.json")
    assert after.headers["ETag"] != before.headers["ETag"]
    assert (
        client.get(
            "/.well-known/jwks.json", headers={"If-None-Match": before.headers["ETag"]}
        ).status_code
        == 200
    )


def test_other_methods_on_documents_go_to_flask(client):
    assert client.post("/.well-known/jwks.json").status_code == 405
    assert client.head("/.well-known/jwks.json").status_code == 200


def test_the_lane_saves_the_hook_statistics_as_flask_does(make_app, plugin_dir, monkeypatch):
    from oauth.plugins import stats
    from oauth.storage.models import HookStat

    (plugin_dir / "tenant.py").write_text(PLUGIN)
    app = make_app(PLUGINS_DIR=str(plugin_dir))
    client_id, secret = setup_m2m(app)
    monkeypatch.setattr(stats, "FLUSH_SECONDS", 0)  # as if the interval had passed
    response = post(
        app.test_client(), f"grant_type=client_credentials&audience={API}",
        {**basic_auth_header(client_id, secret), "X-Tenant": "acme"},
    )  # fmt: skip
    assert response.status_code == 200
    with app.app_context():
        saved = {(row.hook, row.calls) for row in HookStat.select()}
    assert ("customize_access_token", 1) in saved  # written by the lane's request itself
