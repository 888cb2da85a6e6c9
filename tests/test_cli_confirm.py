"""Destructive CLI commands ask first: ``--yes``/``-y`` skips the question; without it a
non-interactive stdin is refused at once (one line, exit 1, nothing changed), and at a
terminal anything but "y" changes nothing. The terminal is a real pty around a real
``flask`` process."""

from __future__ import annotations

import datetime as dt
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oauth.accounts import users as accounts
from oauth.registry import apis, client_grants, clients
from oauth.storage.models import AuditEvent, Client, ClientGrant, SigningKey, User, utcnow
from oauth.tokens import keys
from tests.m2m_helpers import API, setup_m2m

ROOT = Path(__file__).resolve().parent.parent
EMAIL = "victim@example.com"


def refused(result) -> str:
    """The one-line refusal of a command run without --yes on a non-interactive stdin."""
    assert result.exit_code == 1, result.output
    *warnings, line = result.output.strip().splitlines()
    assert "Traceback" not in result.output, result.output
    assert all(w.startswith("Warning: ") for w in warnings), result.output  # keys rotate's
    assert "--yes" in line and "nothing was changed" in line
    return line


def audit_count(app) -> int:
    with app.app_context():
        return AuditEvent.select().count()


def test_every_destructive_command_refuses_without_yes(app, runner):
    client_id, _ = setup_m2m(app)
    with app.app_context():
        accounts.create_user(EMAIL, "password123")
        standby = keys.add_key("RS256").kid
    before = audit_count(app)
    commands = [
        ["clients", "delete", client_id],
        ["clients", "rotate-secret", client_id],
        ["clients", "rotate-secret", client_id, "--grace", "60", "--json"],
        ["users", "delete", EMAIL],
        ["keys", "revoke", standby],
        ["keys", "rotate"],
        ["keys", "rotate", "--alg", "ES256"],
        ["apis", "delete", API],
        ["apis", "revoke", client_id, API],
    ]
    with app.app_context():
        secret_hash = Client.get_by_id(client_id).client_secret_hash
        states = {k.kid: k.state for k in SigningKey.select()}
    for args in commands:
        line = refused(runner.invoke(args=args))
        assert "stdin is not a terminal" in line, args
    with app.app_context():
        assert Client.get_by_id(client_id).client_secret_hash == secret_hash
        assert {k.kid: k.state for k in SigningKey.select()} == states
        assert User.select().count() == 1 and ClientGrant.select().count() == 1
        assert apis.get_api(API) is not None
    assert audit_count(app) == before


def test_yes_and_y_do_it_without_asking(app, runner):
    client_id, _ = setup_m2m(app)
    with app.app_context():
        accounts.create_user(EMAIL, "password123")
    revoked = runner.invoke(args=["apis", "revoke", client_id, API, "-y"])
    assert revoked.exit_code == 0, revoked.output
    assert "[y/N]" not in revoked.output
    deleted = runner.invoke(args=["users", "delete", EMAIL, "--yes"])
    assert deleted.exit_code == 0 and "[y/N]" not in deleted.output, deleted.output
    with app.app_context():
        assert ClientGrant.select().count() == 0 and User.select().count() == 0


def test_nothing_to_destroy_asks_nothing(app, runner):
    """A purge with nothing to purge, a reset of no factor, an already revoked key: no
    question, the usual answer (and errors stay errors, before any question)."""
    with app.app_context():
        kid = keys.add_key("ES256").kid
        keys.revoke(kid)
        accounts.create_user(EMAIL, "password123")
    purged = runner.invoke(args=["clients", "purge", "--unused-days", "1"])
    assert purged.exit_code == 0 and "Purged 0" in purged.output, purged.output
    reset = runner.invoke(args=["users", "reset-mfa", EMAIL])
    assert reset.exit_code == 0 and "nothing to reset" in reset.output, reset.output
    again = runner.invoke(args=["keys", "revoke", kid])
    assert again.exit_code == 0 and f"Revoked key {kid}." in again.output
    with app.app_context():
        current = keys.signing_key().kid
    for args, message in [
        (["keys", "revoke", current], "rotate first"),
        (["clients", "delete", "nope"], "no client"),
        (["apis", "delete", API], "no API"),
        (["clients", "rotate-secret", "nope", "--grace", "5"], "no client"),
    ]:
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "[y/N]" not in result.output and "--yes" not in result.output


def test_a_bad_grace_fails_before_the_question(app, runner):
    client_id, _ = setup_m2m(app)
    for grace in ("-1", "2592001", "soon"):
        result = runner.invoke(args=["clients", "rotate-secret", client_id, "--grace", grace])
        assert result.exit_code == 1 and "--yes" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


# --- at a real terminal ---------------------------------------------------------------------


def in_terminal(env: dict, args: list[str], answer: bytes | None) -> tuple[int, str]:
    """Run ``flask ARGS`` with a pty as its terminal; type ``answer`` at the [y/N] question."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", *args],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    output, answered = b"", False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if answer is not None and not answered and b"[y/N]" in output:
                os.write(master, answer)
                answered = True
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return code, output.decode(errors="replace")


@pytest.fixture
def flask_env(app, database_url, tmp_path):
    app.extensions["portcullis.database"].close_all()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")},
        "PORTCULLIS_DATABASE_URL": database_url,
        "PORTCULLIS_INSTANCE_PATH": str(tmp_path / "cli-instance"),
        "PORTCULLIS_SECRET_KEY": app.config["SECRET_KEY"],  # the sealed signing keys open
        "FLASK_APP": "app:create_app",
    }


def test_the_question_at_a_terminal_and_a_closed_stdin(app, flask_env):
    with app.app_context():
        client, _ = clients.create_client("Doomed App", ["https://app.example/cb"])
    client_id = client.client_id
    app.extensions["portcullis.database"].close_all()

    code, output = in_terminal(flask_env, ["clients", "delete", client_id], b"n\n")
    assert "Delete client Doomed App" in output and "[y/N]" in output
    assert code == 1 and "aborted; nothing was changed." in output, output
    with app.app_context():
        assert clients.get_client(client_id) is not None
    app.extensions["portcullis.database"].close_all()

    # No terminal at all (cron, a pipe that is closed): refused at once, not waiting.
    done = subprocess.run(
        [sys.executable, "-m", "flask", "clients", "delete", client_id],
        cwd=ROOT,
        env=flask_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "Pass --yes" in done.stderr, done.stderr
    with app.app_context():
        assert clients.get_client(client_id) is not None
    app.extensions["portcullis.database"].close_all()

    code, output = in_terminal(flask_env, ["clients", "delete", client_id], b"y\n")
    assert code == 0 and f"Deleted client Doomed App ({client_id})." in output, output
    with app.app_context():
        assert clients.get_client(client_id) is None
        assert client_grants.list_grants() == []


def test_keys_rotate_warns_without_a_standby_key_published_long_enough(app, client, runner):
    cache_control = client.get("/.well-known/jwks.json").headers["Cache-Control"]
    assert cache_control == f"public, max-age={keys.JWKS_MAX_AGE}"  # what the warning cites
    rotated = runner.invoke(args=["keys", "rotate", "--alg", "RS256", "--yes"])
    assert rotated.exit_code == 0, rotated.output
    [warning] = rotated.stderr.strip().splitlines()
    assert warning.startswith("Warning: no standby RS256 key has been published for 300 seconds")
    assert f"Cache-Control max-age={keys.JWKS_MAX_AGE}" in warning
    assert "`flask keys add` first" in warning and "Warning" not in rotated.stdout

    # A standby key of each alg, in the JWKS longer than it may be cached: no warning.
    with app.app_context():
        for alg in ("ES256", "RS256"):
            keys.add_key(alg)
        long_ago = utcnow() - dt.timedelta(seconds=keys.JWKS_MAX_AGE + 1)
        SigningKey.update(created_at=long_ago).where(SigningKey.state == "standby").execute()
        young = keys.add_key("ES256").kid  # a younger one waits: the oldest is promoted
    quiet = runner.invoke(args=["keys", "rotate", "-y"])
    assert quiet.exit_code == 0 and quiet.stderr == "", quiet.output
    with app.app_context():
        assert SigningKey.get_by_id(young).state == "standby"
        # Only young standby keys left: the warning is back.
        assert keys.unannounced_algs() == ["ES256", "RS256"]
