"""Mail: the outbox, SMTP (plain, STARTTLS, TLS, auth) against a real server, the .eml
default, failures (retry with back-off, audit, /healthz, nothing lost), templates."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import time
from email import policy
from email.parser import BytesParser

import pytest

from oauth.accounts import mail
from oauth.storage.models import AuditEvent, MailOutbox, User, utcnow
from tests.conftest import csrf_token_from
from tests.mail_helpers import html_of, link_in, text_of, wait_for_sender

# aiosmtpd leaves its server-side socket of a STARTTLS session to the garbage collector.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def sign_up(client, email="new@example.com", password="correct horse", **extra):
    token = csrf_token_from(client.get("/signup").get_data(as_text=True))
    return client.post(
        "/signup", data={"email": email, "password": password, "csrf_token": token, **extra}
    )


def outbox_rows(app) -> list[MailOutbox]:
    with app.app_context():
        return list(MailOutbox.select().order_by(MailOutbox.id))


def events(app, event_type) -> list[AuditEvent]:
    with app.app_context():
        return list(AuditEvent.select().where(AuditEvent.event_type == event_type))


def test_default_writes_one_eml_per_message_and_logs_its_path(make_app, caplog):
    app = make_app()
    caplog.set_level(logging.INFO, logger="oauth.accounts.mail_transport")
    assert sign_up(app.test_client()).status_code == 302
    wait_for_sender(app)
    outbox = os.path.join(app.instance_path, "outbox")
    files = os.listdir(outbox)
    assert len(files) == 1 and files[0].endswith(".eml")
    path = os.path.join(outbox, files[0])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it carries a link
    assert path in caplog.text
    with open(path, "rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle)
    assert message["To"] == "new@example.com"
    assert message["From"] == "Portcullis <no-reply@127.0.0.1>"
    assert link_in(message, "/verify-email").startswith("http://127.0.0.1:5000/verify-email?token=")
    assert "Confirm my email address" in html_of(message)
    assert [row.status for row in outbox_rows(app)] == ["sent"]


def test_plain_smtp_delivers_text_and_html_with_links_from_the_issuer(make_app, smtp):
    server = smtp()
    app = make_app(
        MAIL_URL=server.url, ISSUER="https://auth.example.com", MAIL_FROM="Auth <a@x.example>"
    )
    sign_up(app.test_client())
    (message,) = server.inbox.wait_for(1)
    assert server.inbox.envelopes == [("a@x.example", ["new@example.com"])]
    assert message["Subject"] == "Confirm your email address"
    assert message["From"] == "Auth <a@x.example>"
    assert message.get_content_type() == "multipart/alternative"
    assert link_in(message, "/verify-email").startswith("https://auth.example.com/verify-email?")
    assert "https://auth.example.com/verify-email?token=" in html_of(message)


def test_smtp_authentication(make_app, smtp):
    server = smtp(login=("mailer", "s3cret pw"))
    url = server.url.replace("s3cret pw", "s3cret%20pw")
    app = make_app(MAIL_URL=url)
    sign_up(app.test_client())
    server.inbox.wait_for(1)
    assert server.logins == ["mailer"]


def test_wrong_smtp_password_is_a_failure_without_the_password(make_app, smtp):
    server = smtp(login=("mailer", "right"))
    app = make_app(MAIL_URL=server.url.replace(":right@", ":wrong@"))
    sign_up(app.test_client())
    wait_for_sender(app)
    (row,) = outbox_rows(app)
    assert row.status == "pending" and row.attempts == 1
    assert "authentication failed" in row.last_error and "wrong" not in row.last_error
    assert server.inbox.messages == []


def test_starttls_with_authentication(make_app, smtp):
    server = smtp(mode="starttls", login=("mailer", "pw"))
    app = make_app(MAIL_URL=server.url)
    sign_up(app.test_client())
    (message,) = server.inbox.wait_for(1)
    assert server.logins == ["mailer"] and message["To"] == "new@example.com"


def test_implicit_tls(make_app, smtp):
    server = smtp(mode="tls")
    app = make_app(MAIL_URL=server.url)
    sign_up(app.test_client())
    assert server.inbox.wait_for(1)[0]["To"] == "new@example.com"


def test_an_untrusted_certificate_is_refused(make_app, smtp, monkeypatch):
    server = smtp(mode="tls")
    monkeypatch.delenv("SSL_CERT_FILE")  # the self-signed certificate is no longer trusted
    app = make_app(MAIL_URL=server.url)
    sign_up(app.test_client())
    wait_for_sender(app)
    (row,) = outbox_rows(app)
    assert row.status == "pending" and "CERTIFICATE_VERIFY_FAILED" in row.last_error
    assert server.inbox.messages == []


def test_a_failing_server_loses_nothing_and_is_retried(make_app, smtp, runner_for):
    server = smtp()
    server.inbox.refuse = "451 4.3.0 Try again later"
    app = make_app(MAIL_URL=server.url)
    client = app.test_client()
    assert sign_up(client).status_code == 302  # the account is made; the page did not fail
    wait_for_sender(app)
    with app.app_context():
        assert User.get_or_none(User.email == "new@example.com") is not None
    (row,) = outbox_rows(app)
    assert row.status == "pending" and row.attempts == 1 and "451" in row.last_error
    assert row.next_attempt_at > utcnow() + dt.timedelta(seconds=20)  # back-off
    (failed,) = events(app, "mail.failed")
    assert failed.details["kind"] == "verify_email" and failed.details["attempt"] == 1
    assert "451" in failed.details["error"] and failed.details["to"] == "new@example.com"
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["mail"]["status"] == "failing"
    assert health["mail"]["failing"] == 1 and "451" in health["mail"]["last_error"]

    with app.app_context():  # not due yet: nothing is tried
        assert mail.deliver_due() == {"sent": 0, "failed": 0, "dropped": 0}
    server.inbox.refuse = None
    result = runner_for(app).invoke(args=["mail", "retry"])
    assert result.exit_code == 0, result.output
    assert "sent 1" in result.output
    (message,) = server.inbox.wait_for(1)
    assert link_in(message, "/verify-email")
    assert outbox_rows(app)[0].status == "sent"
    assert client.get("/healthz").get_json()["mail"]["status"] == "ok"


def test_a_later_request_retries_mail_that_came_due(make_app, smtp):
    server = smtp()
    server.inbox.refuse = "451 4.3.0 Try again later"
    app = make_app(MAIL_URL=server.url)
    client = app.test_client()
    sign_up(client)
    wait_for_sender(app)
    server.inbox.refuse = None
    with app.app_context():
        MailOutbox.update(next_attempt_at=utcnow()).execute()  # the back-off has passed
    app.extensions["portcullis.mail"]._next_poll = 0  # and so has the poll interval
    client.get("/login")
    assert server.inbox.wait_for(1)
    wait_for_sender(app)
    assert outbox_rows(app)[0].attempts == 2


def test_an_unreachable_server_gives_up_after_the_last_attempt(make_app):
    app = make_app(MAIL_URL="smtp://127.0.0.1:9", MAIL_TIMEOUT=2)  # discard port: refused
    sign_up(app.test_client())
    wait_for_sender(app)
    with app.app_context():
        for _ in range(mail.MAX_ATTEMPTS - 1):
            MailOutbox.update(next_attempt_at=utcnow()).execute()
            mail.deliver_due()
        row = MailOutbox.get()
    assert row.status == "failed" and row.attempts == mail.MAX_ATTEMPTS
    assert len(events(app, "mail.failed")) == mail.MAX_ATTEMPTS - 1
    (gave_up,) = events(app, "mail.gave_up")
    assert "127.0.0.1:9" in gave_up.details["error"]
    health = app.test_client().get("/healthz").get_json()["mail"]
    assert health["status"] == "failing" and health["failed"] == 1


def test_backoff_doubles_up_to_six_hours():
    assert [mail.retry_delay(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert mail.retry_delay(20) == 6 * 3600


def test_a_slow_server_does_not_hold_the_page(make_app, smtp):
    server = smtp()
    server.inbox.delay = 3
    app = make_app(MAIL_URL=server.url)
    started = time.monotonic()
    assert sign_up(app.test_client()).status_code == 302
    assert time.monotonic() - started < 2.5
    assert server.inbox.wait_for(1)


def test_operators_override_mail_templates_from_the_instance_folder(make_app, smtp):
    server = smtp()
    app = make_app(MAIL_URL=server.url)
    folder = os.path.join(app.instance_path, "templates", "mail")
    os.makedirs(folder)
    with open(os.path.join(folder, "verify_email.txt"), "w") as handle:
        handle.write('{% set subject = "Welcome to Example" %}Hi! Confirm here: {{ link }}\n')
    sign_up(app.test_client())
    (message,) = server.inbox.wait_for(1)
    assert message["Subject"] == "Welcome to Example"
    assert text_of(message).startswith("Hi! Confirm here: http://127.0.0.1:5000/verify-email?")
    assert "Confirm my email address" in html_of(message)  # the shipped HTML stays


def test_a_broken_template_is_a_reported_failure(make_app):
    app = make_app()
    folder = os.path.join(app.instance_path, "templates", "mail")
    os.makedirs(folder)
    with open(os.path.join(folder, "verify_email.txt"), "w") as handle:
        handle.write("{{ link.nope() }}")
    assert sign_up(app.test_client()).status_code == 302
    wait_for_sender(app)
    (row,) = outbox_rows(app)
    assert row.status == "pending" and "UndefinedError" in row.last_error


def test_a_rolled_back_change_sends_nothing(make_app, plugin_dir):
    (plugin_dir / "deny.py").write_text(
        "from oauth import hookimpl, SignupDenied\n"
        "@hookimpl\n"
        "def before_user_created(user):\n"
        "    raise SignupDenied('no')\n"
    )
    app = make_app()
    sign_up(app.test_client())
    wait_for_sender(app)
    assert outbox_rows(app) == []


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("MAIL_URL", "http://mail.example", "PORTCULLIS_MAIL_URL"),
        ("MAIL_URL", "smtp://", "names no host"),
        ("MAIL_URL", "smtp://mail.example:x", "port"),
        ("EMAIL_VERIFICATION", "sometimes", "optional, required or off"),
        ("MAIL_TIMEOUT", 0, "PORTCULLIS_MAIL_TIMEOUT"),
        ("MAIL_FROM", "a\nBcc: x@example.com", "PORTCULLIS_MAIL_FROM"),
    ],
)
def test_bad_mail_settings_stop_start_up_naming_the_setting(
    make_app, capsys, setting, value, message
):
    with pytest.raises(SystemExit):
        make_app(**{setting: value})
    assert message in capsys.readouterr().err


def test_cli_status_send_test_and_worker(make_app, smtp, runner_for):
    server = smtp()
    app = make_app(MAIL_URL=server.url.replace("127.0.0.1", "user:pw@127.0.0.1"))
    runner = runner_for(app)
    status = runner.invoke(args=["mail", "status", "--json"])
    assert status.exit_code == 0, status.output
    summary = json.loads(status.output)
    assert summary["pending"] == 0 and ":***@" in summary["mail_url"] and "pw" not in status.output
    app.config["MAIL_URL"] = server.url
    result = runner.invoke(args=["mail", "send-test", "ops@example.com"])
    assert result.exit_code == 0, result.output
    assert server.inbox.wait_for(1)[0]["Subject"] == "Test mail from Portcullis"
    with app.app_context():
        mail.queue("test", "second@example.com")  # outside any transaction: committed at once
    result = runner.invoke(args=["mail", "worker", "--once"])
    assert result.exit_code == 0, result.output
    server.inbox.wait_for(2)


def test_cli_send_test_reports_a_failure(make_app, runner_for):
    app = make_app(MAIL_URL="smtp://127.0.0.1:9", MAIL_TIMEOUT=2)
    result = runner_for(app).invoke(args=["mail", "send-test", "ops@example.com"])
    assert result.exit_code == 1 and "failed" in result.output


@pytest.fixture
def runner_for():
    return lambda app: app.test_cli_runner()


def test_an_unwritable_outbox_folder_is_a_reported_failure(make_app, tmp_path):
    (tmp_path / "blocker").write_text("a file where the folder should be")
    app = make_app(MAIL_URL=f"file://{tmp_path}/blocker/outbox")
    assert sign_up(app.test_client()).status_code == 302
    wait_for_sender(app)
    (row,) = outbox_rows(app)
    assert row.status == "pending" and row.last_error.startswith("cannot write to ")


def test_healthz_shows_the_mail_error_text_to_this_machine_only(make_app):
    app = make_app(MAIL_URL="smtp://127.0.0.1:9", MAIL_TIMEOUT=2)
    client = app.test_client()
    sign_up(client)
    wait_for_sender(app)
    local = client.get("/healthz").get_json()["mail"]
    remote = client.get("/healthz", environ_base={"REMOTE_ADDR": "203.0.113.7"}).get_json()
    assert "127.0.0.1:9" in local["last_error"]
    assert remote["mail"]["status"] == "failing" and "last_error" not in remote["mail"]
