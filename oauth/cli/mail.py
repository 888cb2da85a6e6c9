"""``flask mail``: the outbox (status), sending what is due (retry, worker), a test mail."""

from __future__ import annotations

import json
import time

import click
from flask import current_app

from oauth.accounts import mail, mail_transport
from oauth.accounts.users import email_problem, normalise_email
from oauth.cli.support import OneLineErrorGroup
from oauth.storage.db import write_transaction
from oauth.storage.models import MailOutbox

mail_cli = OneLineErrorGroup("mail", help="The mail outbox: status, retries, a test mail.")


@mail_cli.command("status")
@click.option("--json", "as_json", is_flag=True)
def mail_status(as_json):
    """Show queued, failing and given-up mail (what /healthz reports)."""
    summary = mail.health() | {
        "mail_url": mail_transport.describe(str(current_app.config["MAIL_URL"]))
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        click.echo(f"{key}: {value}")


@mail_cli.command("retry")
@click.option("--failed", "include_failed", is_flag=True, help="Also retry mail given up on.")
def mail_retry(include_failed):
    """Send every waiting mail now, without waiting for its back-off."""
    made_due = mail.retry_now(include_failed=include_failed)
    counts = _deliver_all()
    click.echo(
        f"{made_due} waiting; sent {counts['sent']}, failed {counts['failed']}, "
        f"dropped {counts['dropped']}."
    )
    if counts["failed"]:
        raise SystemExit(1)


@mail_cli.command("worker")
@click.option("--interval", default=10.0, show_default=True, help="Seconds between looks.")
@click.option("--once", is_flag=True, help="Send what is due, then stop.")
def mail_worker(interval, once):
    """Keep sending due mail (with back-off for failures) until interrupted."""
    while True:
        counts = _deliver_all()
        if any(counts.values()):
            click.echo(
                f"sent {counts['sent']}, failed {counts['failed']}, dropped {counts['dropped']}"
            )
        if once:
            return
        time.sleep(max(interval, 0.5))


def _deliver_all() -> dict[str, int]:
    total = {"sent": 0, "failed": 0, "dropped": 0}
    while True:
        counts = mail.deliver_due()
        for key, value in counts.items():
            total[key] += value
        if not any(counts.values()):
            return total


@mail_cli.command("send-test")
@click.argument("email")
def mail_send_test(email):
    """Send a test mail to EMAIL now, through MAIL_URL."""
    address = normalise_email(email)
    problem = email_problem(address)
    if problem:
        raise click.ClickException(problem)
    with write_transaction():
        row = MailOutbox.create(kind="test", to_address=address)
    outcome = mail.deliver_one(row.id)
    row = MailOutbox.get_by_id(row.id)
    where = mail_transport.describe(str(current_app.config["MAIL_URL"]))
    if outcome != "sent":
        raise click.ClickException(f"mail to {address} failed: {row.last_error} (retried later)")
    click.echo(f"Test mail sent to {address} through {where}.")
