"""``flask`` commands. Errors print one line on stderr and exit with status 1."""

from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from oauth.accounts import users as accounts
from oauth.cli.support import OneLineErrorGroup
from oauth.storage.db import database
from oauth.storage.migrations import migrate, runner
from oauth.storage.models import User

users_cli = OneLineErrorGroup("users", help="Manage user accounts.")


def fail(message: str) -> None:
    raise click.ClickException(message)


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create or upgrade the database schema (idempotent)."""
    applied = migrate(database.obj)
    if applied:
        click.echo("Applied migrations: " + ", ".join(applied))
    current = [m.name for m in runner(database.obj).status() if m.applied]
    click.echo(f"Database schema is up to date ({', '.join(current)}).")


def _user_or_fail(email: str) -> User:
    user = accounts.find_by_email(email)
    if user is None:
        fail(f"no user with email {accounts.normalise_email(email)}")
    return user


@users_cli.command("create")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--name", default="")
@click.option("--phone", default="")
@click.option("--admin", is_flag=True, help="Give the user access to the admin pages.")
@click.option("--verified/--unverified", default=True, help="Mark the email as verified.")
def users_create(email, password, name, phone, admin, verified):
    """Create a user."""
    try:
        user = accounts.create_user(
            email, password, name=name, phone=phone, is_admin=admin, email_verified=verified
        )
    except accounts.AccountError as error:
        fail(str(error))
    click.echo(f"Created user {user.email} ({user.id}){' with admin rights' if admin else ''}.")


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def users_list(as_json):
    """List users."""
    users = list(User.select().order_by(User.created_at))
    if as_json:
        click.echo(json.dumps([_user_dict(u) for u in users], indent=2))
        return
    for user in users:
        flags = " ".join(
            f for f, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on
        )
        click.echo(f"{user.id}  {user.email}  {user.name}  {flags}".rstrip())


def _user_dict(user: User) -> dict:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "phone": user.phone,
        "is_admin": user.is_admin,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat() + "Z",
    }


@users_cli.command("delete")
@click.argument("email")
def users_delete(email):
    """Delete a user and everything that belongs to them."""
    user = _user_or_fail(email)
    accounts.delete_user(user)
    click.echo(f"Deleted user {user.email}.")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_set_password(email, password):
    """Set a user's password (signs them out everywhere)."""
    user = _user_or_fail(email)
    try:
        accounts.set_password(user, password)
    except accounts.AccountError as error:
        fail(str(error))
    click.echo(f"Password set for {user.email}.")


@click.command("demo")
@with_appcontext
def demo_command():
    """Create a demo user and demo client when the database has no users; print them once."""
    if User.select().exists():
        click.echo("Demo data: the database already has users; nothing created.")
        return
    import base64
    import hashlib

    from oauth.registry import clients
    from oauth.security import random_token
    from oauth.storage.db import write_transaction

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
    click.echo("Demo account (shown once, keep it):")
    click.echo(f"  email:    {user.email}")
    click.echo(f"  password: {password}")
    click.echo(f"  sign in at {issuer}/login")
    click.echo("")
    click.echo("Demo client 'Demo App' (confidential; the secret is shown once):")
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


def init_app(app: Flask) -> None:
    from oauth.cli.apis import apis_cli
    from oauth.cli.clients import clients_cli
    from oauth.cli.keys import keys_cli
    from oauth.cli.plugins import plugins_cli

    app.cli.add_command(init_db_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_command)
    app.cli.add_command(clients_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(apis_cli)
    app.cli.add_command(plugins_cli)
