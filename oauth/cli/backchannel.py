"""``flask backchannel ...``: the outbox of Back-Channel Logout tokens."""

from __future__ import annotations

import click

from oauth.accounts import backchannel
from oauth.cli.support import OneLineErrorGroup

backchannel_cli = OneLineErrorGroup("backchannel", help="Back-channel logout deliveries.")


@backchannel_cli.command("deliver")
@click.option("--limit", default=100, type=click.IntRange(min=1), help="At most this many.")
def backchannel_deliver(limit):
    """Send the logout tokens that are due (new ones and retries whose back-off is over)."""
    counts = backchannel.deliver_due(limit)
    click.echo(
        f"Delivered {counts['delivered']}, failed {counts['failed']} (retried later), "
        f"abandoned {counts['abandoned']}; {backchannel.pending_count()} waiting."
    )
