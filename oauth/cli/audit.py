"""``flask audit flush``: spooled audit events into the database now (docs/operations.md)."""

from __future__ import annotations

import click

from oauth import audit
from oauth.cli.support import OneLineErrorGroup

audit_cli = OneLineErrorGroup("audit", help="The audit log's spool of events.")


@audit_cli.command("flush")
def audit_flush():
    """Move the events that stopped processes left in the spool (instance/audit-spool/) into
    the audit log. Running workers' files stay with them: they flush them within
    PORTCULLIS_AUDIT_SPOOL_FLUSH_SECONDS."""
    moved = audit.flush_spool()
    held = audit.spool_files()
    click.echo(
        f"Moved {moved} spooled audit event{'' if moved == 1 else 's'} into the database; "
        f"{len(held)} spool file{'' if len(held) == 1 else 's'} held by running processes."
    )
