"""``flask users``: create, list, delete accounts and set passwords (audited by the service)."""

from __future__ import annotations

import json

import click

from oauth.accounts import deletion, mfa
from oauth.accounts import users as accounts
from oauth.cli.support import OneLineErrorGroup, confirm, yes_option
from oauth.storage.models import User

users_cli = OneLineErrorGroup("users", help="Manage user accounts.")


def fail(message: str) -> None:
    raise click.ClickException(message)


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
    factors = mfa.factors_by_user([u.id for u in users])
    if as_json:
        click.echo(
            json.dumps([_user_dict(u) | {"factors": factors[u.id]} for u in users], indent=2)
        )
        return
    for user in users:
        flags = " ".join(
            f for f, on in (("admin", user.is_admin), ("disabled", user.disabled)) if on
        )
        flags = " ".join([flags, *factors[user.id]]).strip()
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
@yes_option
def users_delete(email, yes):
    """Delete a user and everything that belongs to them (asks first unless --yes)."""
    user = _user_or_fail(email)
    confirm(yes, f"Delete the account {user.email} with its sessions, tokens and factors?")
    try:
        deletion.delete_account(user, via="cli")
    except accounts.AccountError as error:
        fail(str(error))
    click.echo(f"Deleted user {user.email}.")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def users_set_password(email, password):
    """Set a user's password (signs them out everywhere)."""
    user = _user_or_fail(email)
    try:
        accounts.set_password(user, password, via="cli")
    except accounts.AccountError as error:
        fail(str(error))
    click.echo(f"Password set for {user.email}.")


@users_cli.command("reset-mfa")
@click.argument("email")
@yes_option
def users_reset_mfa(email, yes):
    """Remove every second factor of a user (a lost phone): password-only sign-in again
    (asks first unless --yes)."""
    user = _user_or_fail(email)
    if mfa.factors(user):
        confirm(yes, f"Remove every second factor of {user.email} (password-only sign-in)?")
    removed = mfa.reset(user, actor_id=None, via="cli")
    if not removed:
        click.echo(f"{user.email} had no second factor; nothing to reset.")
        return
    click.echo(f"Second factors of {user.email} removed: {', '.join(removed)}.")
