"""``flask backup PATH``: a consistent copy of a SQLite database, safe while the server runs."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import click
from flask.cli import with_appcontext

from oauth.storage.db import database, is_sqlite


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path):
    """Copy the SQLite database to PATH with SQLite's online backup (a consistent snapshot,
    taken while workers keep serving). PostgreSQL: use pg_dump (docs/operations.md)."""
    if not is_sqlite():
        raise click.ClickException(
            "flask backup copies SQLite databases; use pg_dump for PostgreSQL"
        )
    if path.exists():
        raise click.ClickException(f"{path} exists; choose a new file (nothing was overwritten)")
    if not path.parent.is_dir():
        raise click.ClickException(f"{path.parent} is not a folder")
    # The copy holds everything the database does (hashed secrets, sealed keys): owner only.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    source = sqlite3.connect(database.obj.database)
    target = sqlite3.connect(path)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()
    click.echo(f"Backed up {database.obj.database} to {path} ({path.stat().st_size} bytes).")
