"""``flask keys ...``: list, add, rotate and revoke the JWT signing keys, and re-encrypt them
under the current key-encryption key (``rewrap``). Never prints a private key."""

from __future__ import annotations

import json

import click
import peewee

from oauth.accounts import mfa
from oauth.cli.support import OneLineErrorGroup, confirm, yes_option
from oauth.security import lookup_key
from oauth.storage.models import SigningKey
from oauth.tokens import jose as jwt
from oauth.tokens import key_encryption, keys

keys_cli = OneLineErrorGroup("keys", help="Manage JWT signing keys.")

ALG_HELP = " or ".join(jwt.SUPPORTED_ALGS)


def _run(operation, *args):
    """Run a key operation; its errors become one-line CLI errors (exit status 1)."""
    try:
        return operation(*args)
    except keys.KeyServiceError as error:
        raise click.ClickException(str(error)) from None
    except peewee.DatabaseError as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise click.ClickException(
            f"database error: {reason} (has `flask init-db` been run?)"
        ) from None


def _time(value) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def _key_dict(key: SigningKey) -> dict:
    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": key.state,
        "created_at": _time(key.created_at),
        "activated_at": _time(key.activated_at),
        "retired_at": _time(key.retired_at),
        "revoked_at": _time(key.revoked_at),
        # The id of the key-encryption key of its private part; "plaintext"; null: erased.
        "encryption": key_encryption.protection(key),
    }


def _alg(value: str | None) -> str | None:
    return value.strip().upper() if value else None


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def keys_list(as_json):
    """List signing keys (revoked ones included)."""
    rows = _run(keys.list_keys)
    if as_json:
        click.echo(json.dumps([_key_dict(k) for k in rows], indent=2))
        return
    if not rows:
        click.echo("No signing keys.")
        return
    for key in rows:
        activated = _time(key.activated_at) or "-"
        encryption = key_encryption.protection(key) or "-"
        click.echo(
            f"{key.kid}  {key.alg}  {key.state:<8}  created {_time(key.created_at)}  "
            f"activated {activated}  kek {encryption}"
        )


@keys_cli.command("add")
@click.option("--alg", help=f"{ALG_HELP} (default: SIGNING_ALG).")
def keys_add(alg):
    """Create a standby key: published in the JWKS, not signing yet."""
    key = _run(keys.add_key, _alg(alg))
    click.echo(f"Added standby key {key.kid} ({key.alg}); `flask keys rotate` makes it current.")


@keys_cli.command("rotate")
@click.option("--alg", help=f"{ALG_HELP}: rotate only this alg (default: every alg together).")
@yes_option
def keys_rotate(alg, yes):
    """Make the standby key (or a new key) of each alg current; the old ones stay published
    (asks first unless --yes)."""
    risk = keys.rotation_risk(_run(keys.unannounced_algs, _alg(alg)))
    if risk:
        click.echo(
            f"Warning: {risk}. Safer: `flask keys add` first, then rotate after "
            f"{keys.JWKS_MAX_AGE} seconds.",
            err=True,
        )
    confirm(yes, f"Rotate the {_alg(alg) or ' and '.join(jwt.SUPPORTED_ALGS)} signing key(s) now?")
    key = _run(keys.rotate, _alg(alg))
    for current in keys.current_keys():
        click.echo(f"Key {current.kid} ({current.alg}) is now the current {current.alg} key.")
    click.echo(
        f"Access tokens are signed with {key.kid} ({key.alg}); "
        "running servers switch within 10 seconds."
    )


@keys_cli.command("revoke")
@click.argument("kid")
@yes_option
def keys_revoke(kid, yes):
    """Unpublish a standby or previous key; tokens it signed stop verifying (asks first
    unless --yes)."""
    found = _run(SigningKey.get_or_none, SigningKey.kid == kid) if lookup_key(kid) else None
    if found is not None and found.state in (keys.STANDBY, keys.PREVIOUS):
        # Other cases change nothing (already revoked) or are refused by the service.
        confirm(yes, f"Revoke key {found.kid} ({found.alg})? Tokens it signed stop verifying.")
    key = _run(keys.revoke, kid)
    click.echo(f"Revoked key {key.kid}.")


@keys_cli.command("rewrap")
def keys_rewrap():
    """Re-encrypt every private key, and every TOTP secret, under the current key-encryption
    key (KEK rotation)."""
    total, moved = _run(keys.rewrap)
    try:
        totp_secrets = mfa.rewrap_secrets()
    except mfa.MfaError as error:
        raise click.ClickException(str(error)) from None
    kek = key_encryption.keyring().current_id
    click.echo(
        f"Re-encrypted {total} signing keys under key-encryption key {kek} "
        f"({moved} were under another key or unencrypted), and {totp_secrets} TOTP secrets; "
        "older keys may now be removed from PORTCULLIS_KEY_ENCRYPTION_KEY."
    )
