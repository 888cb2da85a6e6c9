"""Back-Channel Logout 1.0 (issue 11): logout tokens POSTed to a real local HTTP server,
verified with our JWKS (joserfc); failures retried with back-off; every attempt audited."""

import datetime as dt
import time

from oauth.accounts import backchannel
from oauth.accounts import users as accounts
from oauth.storage.db import write_transaction
from oauth.storage.deliveries import BackchannelLogout
from oauth.storage.models import AuditEvent, BrowserSession, User
from tests.conftest import csrf_token_from
from tests.logout_helpers import Receiver, verify_logout_token
from tests.oauth_helpers import Flow, decode_jwt_unverified, make_client

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _app(make_app, **settings):
    return make_app(FETCH_ALLOW_PRIVATE_ADDRESSES=True, **settings)


def _flow(app, receiver_url, **metadata) -> Flow:
    client_id, secret = make_client(
        app, metadata={"backchannel_logout_uri": receiver_url, **metadata}
    )
    flow = Flow(app, app.test_client(), client_id=client_id, secret=secret)
    flow.auth.create_user()
    flow.auth.login()
    return flow


def _jwks(flow) -> dict:
    return flow.browser.get("/.well-known/jwks.json").get_json()


def _events(app, event_type):
    with app.app_context():
        return list(AuditEvent.select().where(AuditEvent.event_type == event_type))


def test_sign_out_sends_a_signed_logout_token(make_app):
    app = _app(make_app)
    with Receiver() as receiver:
        flow = _flow(app, receiver.url)
        id_claims = decode_jwt_unverified(flow.tokens()["id_token"])[1]
        flow.auth.logout()
        assert len(receiver.received) == 1
        assert receiver.received[0]["content_type"] == "application/x-www-form-urlencoded"
        claims = verify_logout_token(receiver.tokens()[0], _jwks(flow))
    assert claims["iss"] == app.config["ISSUER"] and claims["aud"] == flow.client_id
    assert claims["sub"] == id_claims["sub"] and claims["sid"] == id_claims["sid"]
    assert claims["events"] == {EVENT: {}} and "nonce" not in claims
    assert claims["iat"] <= time.time() < claims["exp"] <= claims["iat"] + 300
    assert claims["jti"]
    delivered = _events(app, "backchannel_logout.delivered")
    assert len(delivered) == 1 and delivered[0].client_id == flow.client_id
    assert delivered[0].details["attempt"] == 1
    with app.app_context():
        assert BackchannelLogout.select().count() == 0


def test_only_clients_of_that_browser_session_are_told(make_app):
    app = _app(make_app)
    with Receiver() as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        other_browser = Flow(app, app.test_client(), client_id=flow.client_id)
        other_browser.auth.login()
        other_browser.auth.logout()  # this browser never signed in to the app
        assert receiver.received == []
        make_client(app, name="No back-channel")  # clients without a URI get nothing
        flow.auth.logout()
        assert len(receiver.received) == 1


def test_delivery_holds_no_database_lock(make_app):
    app = _app(make_app)
    wrote = []

    def write_meanwhile():
        with app.app_context(), write_transaction():
            User.update(name="written during delivery").execute()
            wrote.append(True)

    with Receiver() as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        receiver.on_request = write_meanwhile
        started = time.monotonic()
        flow.auth.logout()
        assert wrote == [True] and time.monotonic() - started < 4
    assert len(_events(app, "backchannel_logout.delivered")) == 1


def test_failing_receiver_is_retried_with_back_off(make_app):
    app = _app(make_app, BACKCHANNEL_LOGOUT_MAX_ATTEMPTS=3)
    runner = app.test_cli_runner()
    with Receiver(status=500) as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        flow.auth.logout()
        assert len(receiver.received) == 1
        with app.app_context():
            row = BackchannelLogout.get()
            assert row.attempts == 1 and "500" in row.last_error
            assert row.next_attempt_at > dt.datetime.now(dt.UTC).replace(tzinfo=None)
        failed = _events(app, "backchannel_logout.failed")
        assert len(failed) == 1 and failed[0].details["retry_in"] == 30

        result = runner.invoke(args=["backchannel", "deliver"])
        assert (
            result.exit_code == 0
            and "Delivered 0" in result.output
            and "1 waiting" in result.output
        )
        assert len(receiver.received) == 1  # not due yet

        receiver.status = 204
        with app.app_context():
            BackchannelLogout.update(next_attempt_at=dt.datetime(2000, 1, 1)).execute()
        result = runner.invoke(args=["backchannel", "deliver"])
        assert "Delivered 1" in result.output and "0 waiting" in result.output
        assert len(receiver.received) == 2
        first, second = (verify_logout_token(t, _jwks(flow)) for t in receiver.tokens())
        assert first["jti"] != second["jti"] and first["sid"] == second["sid"]
    delivered = _events(app, "backchannel_logout.delivered")
    assert len(delivered) == 1 and delivered[0].details["attempt"] == 2


def test_a_token_is_dropped_after_the_last_attempt(make_app):
    app = _app(make_app, BACKCHANNEL_LOGOUT_MAX_ATTEMPTS=2)
    with Receiver(status=503) as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        flow.auth.logout()
        with app.app_context():
            BackchannelLogout.update(next_attempt_at=dt.datetime(2000, 1, 1)).execute()
            assert backchannel.deliver_due() == {"delivered": 0, "failed": 0, "abandoned": 1}
            assert BackchannelLogout.select().count() == 0
        assert len(receiver.received) == 2
    assert len(_events(app, "backchannel_logout.abandoned")) == 1


def test_redirects_are_not_followed_and_slow_receivers_time_out(make_app):
    app = _app(make_app, BACKCHANNEL_LOGOUT_TIMEOUT=1)
    with Receiver(status=302) as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        flow.auth.logout()
        receiver.status, receiver.delay = 200, 5
        with app.app_context():
            BackchannelLogout.update(next_attempt_at=dt.datetime(2000, 1, 1)).execute()
            started = time.monotonic()
            assert backchannel.deliver_due()["failed"] == 1
            assert time.monotonic() - started < 3
    errors = [event.details["error"] for event in _events(app, "backchannel_logout.failed")]
    assert errors[0] == "answered status 302" and "timed out" in errors[1]


def test_private_addresses_are_refused_by_default(make_app):
    app = make_app()  # FETCH_ALLOW_PRIVATE_ADDRESSES off
    with Receiver() as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        flow.auth.logout()
        assert receiver.received == []
    failed = _events(app, "backchannel_logout.failed")
    assert "private or loopback" in failed[0].details["error"]


def test_revoking_the_app_and_signing_out_others_notify(make_app):
    app = _app(make_app)
    with Receiver() as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        laptop = Flow(app, app.test_client(), client_id=flow.client_id, secret=flow.secret)
        laptop.auth.login()
        laptop.tokens()
        with app.app_context():
            laptop_sid = BrowserSession.select().order_by(BrowserSession.created_at.desc()).get()
        page = flow.browser.get("/settings/security")
        flow.browser.post(
            "/settings/security/sign-out-others",
            data={"csrf_token": csrf_token_from(page.get_data(as_text=True))},
        )
        assert len(receiver.received) == 1
        claims = verify_logout_token(receiver.tokens()[0], _jwks(flow))
        with app.app_context():
            assert BrowserSession.get_or_none(BrowserSession.sid == laptop_sid.sid) is None
            remaining = BrowserSession.get()
        assert claims["sid"] != remaining.sid

        page = flow.browser.get("/settings/apps")
        revoked = flow.browser.post(
            f"/settings/apps/{flow.client_id}/revoke",
            data={"csrf_token": csrf_token_from(page.get_data(as_text=True))},
        )
        assert revoked.status_code == 302
        sids = {verify_logout_token(t, _jwks(flow))["sid"] for t in receiver.tokens()[1:]}
        assert remaining.sid in sids and laptop_sid.sid in sids


def test_password_change_ends_sessions_and_notifies(make_app):
    app = _app(make_app)
    with Receiver() as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        with app.app_context():
            user = User.get()
            accounts.set_password(user, "another good password")
        assert len(receiver.received) == 1
    with app.app_context():
        assert (
            AuditEvent.get(AuditEvent.event_type == "backchannel_logout.delivered").details[
                "reason"
            ]
            == "password_changed"
        )


def test_due_retries_go_out_after_a_later_response(make_app, monkeypatch):
    app = _app(make_app)
    with Receiver(status=500) as receiver:
        flow = _flow(app, receiver.url)
        flow.tokens()
        flow.auth.logout()
        receiver.status = 200
        monkeypatch.setattr(backchannel, "RETRY_CHECK_SECONDS", 0)
        flow.browser.get("/healthz").close()  # not due yet: nothing sent
        assert len(receiver.received) == 1
        with app.app_context():
            BackchannelLogout.update(next_attempt_at=dt.datetime(2000, 1, 1)).execute()
        response = flow.browser.get("/healthz")
        assert len(receiver.received) == 1  # only once the response is closed (sent)
        response.close()
        assert len(receiver.received) == 2
    with app.app_context():
        assert BackchannelLogout.select().count() == 0
