"""``flask init-db`` and ``flask demo``: set up the database and the demo account of ``make run``."""

from __future__ import annotations

import base64
import hashlib

import click
from flask import current_app
from flask.cli import with_appcontext

from oauth.accounts import users as accounts
from oauth.registry import clients
from oauth.security import random_token
from oauth.storage.db import (
    CREATED,
    STARTUP_MIGRATIONS,
    database,
    describe,
    is_sqlite,
    write_transaction,
)
from oauth.storage.migrations import migrate, runner
from oauth.storage.models import User


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create or upgrade the database schema (idempotent)."""
    db = database.obj
    # With AUTO_MIGRATE the app already migrated while it started: report that too.
    created = current_app.extensions.pop(CREATED, False)
    applied = current_app.extensions.pop(STARTUP_MIGRATIONS, None) or []
    applied += migrate(db)
    names = [m.name for m in runner(db).status() if m.path]
    where = db.database if is_sqlite() else describe(str(current_app.config["DATABASE_URL"]))
    if not applied:
        click.echo(f"Database {where} is up to date ({len(names)} migrations, last {names[-1]}).")
        return
    if created or len(applied) == len(names):
        what = "SQLite database" if is_sqlite() else "schema in"
        click.echo(f"Created the {what} {where}.")
    else:
        click.echo(f"Upgraded the database {where}.")
    click.echo(f"Applied {len(applied)} migrations: " + ", ".join(applied))


@click.command("demo")
@with_appcontext
def demo_command():
    """Create a demo user and demo client when the database has no users; print them once."""
    if User.select().exists():
        click.echo("Demo data: the database already has users; nothing created.")
        return
    password = random_token(12)
    redirect_uri = "http://127.0.0.1:8000/callback"
    with write_transaction():
        user = accounts.create_user(
            "demo@example.com", password, name="Demo User", is_admin=True, email_verified=True
        )
        client, secret = clients.create_client(
            "Demo App",
            [redirect_uri, "http://localhost:8000/callback"],
            grant_types=["authorization_code", "refresh_token"],
        )
    verifier = random_token(32)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest())
        .rstrip(b"=")
        .decode("ascii")
    )
    issuer = current_app.config["ISSUER"].rstrip("/")
    authorize_url = (
        f"{issuer}/oauth/authorize?response_type=code&client_id={client.client_id}"
        f"&redirect_uri={redirect_uri}&scope=openid%20email%20profile&state=demo"
        f"&code_challenge={challenge}&code_challenge_method=S256"
    )
    click.echo("=" * 64)
    _print_account(user.email, password, issuer)
    click.echo("")
    click.echo("Demo client 'Demo App' (confidential). The client secret is shown this once and")
    click.echo("stored only as a hash; a lost one is replaced with flask clients rotate-secret:")
    click.echo(f"  client_id:     {client.client_id}")
    click.echo(f"  client_secret: {secret}")
    click.echo(f"  redirect URIs: {' '.join(client.redirect_uris)}")
    click.echo("")
    click.echo("Try the authorization code flow (PKCE S256):")
    click.echo(f"  code_verifier: {verifier}")
    click.echo("  1. open in a browser (sign in, approve):")
    click.echo(f"     {authorize_url}")
    click.echo("  2. copy the code from the redirect to 127.0.0.1:8000/callback?code=... and run:")
    click.echo(
        f"     curl -u {client.client_id}:{secret} -d grant_type=authorization_code"
        f" -d code=PASTE_CODE_HERE -d redirect_uri={redirect_uri}"
        f" -d code_verifier={verifier} {issuer}/oauth/token"
    )
    click.echo("=" * 64)


def _print_account(email: str, password: str, issuer: str) -> None:
    """The demo user is an administrator: say so, and how to change its password."""
    click.echo("Demo account: an ADMINISTRATOR (it can open the admin pages at /admin).")
    click.echo("The password is shown this once and stored only as a hash; keep it:")
    click.echo(f"  email:    {email}")
    click.echo(f"  password: {password}")
    click.echo(f"  sign in at {issuer}/login, admin pages at {issuer}/admin")
    click.echo(f"  change it: flask users set-password {email}")
    click.echo(f"             or, signed in, at {issuer}/settings/security")
