"""What every ``flask`` command group shares."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import AppGroup

from oauth.registry.clients import get_client


class OneLineErrorGroup(AppGroup):
    """Bad arguments are one line on stderr and exit status 1, like every other CLI error.

    Click's own usage errors (a bad ``--grant-type`` choice, a missing ``--name``) print the
    usage and exit 2; DESIGN.md promises one line and 1.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            raise click.ClickException(error.format_message()) from None


def client_or_fail(client_id: str):
    """The client with this id, or a one-line error."""
    client = get_client(client_id)
    if client is None:
        raise click.ClickException(f"no client with id {client_id}")
    return client
