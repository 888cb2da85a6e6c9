"""``flask clients ...``: register, list, delete OAuth clients, rotate secrets, purge unused ones."""

from __future__ import annotations

import json
from typing import Any

import click

from oauth.cli.support import OneLineErrorGroup, client_or_fail, confirm, yes_option
from oauth.protocol import registration
from oauth.registry import client_secrets, clients, logout_settings

clients_cli = OneLineErrorGroup("clients", help="Manage OAuth clients.")


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def logout_options(command):
    """The logout settings (OIDC RP-Initiated and Back-Channel Logout) of create and update."""
    options = [
        click.option(
            "--post-logout-redirect-uri",
            "post_logout_redirect_uris",
            multiple=True,
            help="Where /oauth/logout may return (exact match). Repeat for several.",
        ),
        click.option(
            "--backchannel-logout-uri", default=None, help="Receives logout tokens ('' removes)."
        ),
        click.option(
            "--backchannel-logout-session-required/--no-backchannel-logout-session-required",
            default=None,
            help="Logout tokens must carry sid.",
        ),
        click.option(
            "--logout-revokes-tokens/--no-logout-revokes-tokens",
            default=None,
            help="An RP-initiated logout also revokes the client's refresh tokens (default: no).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _logout_metadata(base: dict, options: dict) -> dict:
    metadata = dict(base)
    given = {
        logout_settings.POST_LOGOUT_REDIRECT_URIS: list(options["post_logout_redirect_uris"])
        or None,
        logout_settings.BACKCHANNEL_LOGOUT_URI: options["backchannel_logout_uri"],
        logout_settings.SESSION_REQUIRED: options["backchannel_logout_session_required"],
        logout_settings.REVOKES_TOKENS: options["logout_revokes_tokens"],
    }
    for field, value in given.items():
        if value is not None:
            metadata[field] = value
    return metadata


def _echo_secret(secret: str) -> None:
    click.echo(f"client_secret:  {secret}")
    click.echo("The secret is shown only once: store it now (only its hash is kept).")


@clients_cli.command("create")
@click.option("--name", required=True, help="Display name shown on the consent page.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeat for several.")
@click.option("--public", is_flag=True, help="A public client (SPA, native app): no secret.")
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(clients.GRANT_TYPES),
    help="Repeat for several. Default: authorization_code refresh_token.",
)
@click.option("--client-uri", default="", help="Home page of the application (https).")
@click.option("--logo-uri", default="", help="Logo shown on the consent page (https).")
@logout_options
@click.option("--require-mfa", is_flag=True, help="Every sign-in needs a second factor.")
@click.option(
    "--id-token-alg",
    type=click.Choice(clients.ID_TOKEN_ALGS),
    help="id_token_signed_response_alg (default: RS256, the OpenID Connect default).",
)
@click.option(
    "--no-require-pkce",
    "pkce_optional",
    is_flag=True,
    help="Confidential clients only: accept requests without PKCE (OpenID ones need a nonce).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def clients_create(name, redirect_uris, public, grant_types, client_uri, logo_uri, **options):
    """Register a client and print its credentials (the secret is shown once)."""
    metadata = {}
    if options["id_token_alg"]:
        metadata["id_token_signed_response_alg"] = options["id_token_alg"]
    if options["pkce_optional"]:
        metadata["require_pkce"] = False
    try:
        client, secret = clients.create_client(
            name,
            redirect_uris,
            public=public,
            grant_types=list(grant_types) or None,
            client_uri=client_uri,
            logo_uri=logo_uri,
            metadata=_logout_metadata(metadata, options),
            require_mfa=options["require_mfa"],
        )
    except clients.ClientError as error:
        raise click.ClickException(error.message) from None
    if options["as_json"]:
        _echo_json(clients.client_info(client, secret))
        return
    click.echo(f"Created {'public' if client.is_public else 'confidential'} client {client.name}.")
    click.echo(f"client_id:      {client.client_id}")
    click.echo(f"type:           {'public' if client.is_public else 'confidential'}")
    click.echo(f"auth method:    {client.token_endpoint_auth_method}")
    click.echo(f"redirect URIs:  {' '.join(client.redirect_uris) or '(none)'}")
    click.echo(f"grant types:    {' '.join(client.grant_types)}")
    if client.require_mfa:
        click.echo("second factor:  required")
    if secret is not None:
        _echo_secret(secret)


@clients_cli.command("update")
@click.argument("client_id")
@click.option("--name", default=None, help="A new display name.")
@click.option(
    "--require-mfa/--no-require-mfa",
    default=None,
    help="Whether every sign-in for this client needs a second factor.",
)
@logout_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def clients_update(client_id, name, require_mfa, as_json, **logout):
    """Change a client: only the options given change."""
    client = client_or_fail(client_id)
    fields = {"name": name, "require_mfa": require_mfa}
    changes = {k: v for k, v in fields.items() if v is not None}
    try:
        clients.update_client(
            client, metadata=_logout_metadata(client.metadata or {}, logout), **changes
        )
    except clients.ClientError as error:
        raise click.ClickException(error.message) from None
    if as_json:
        _echo_json(clients.client_info(client))
        return
    mfa = "required" if client.require_mfa else "not required"
    click.echo(f"Updated client {client.name} ({client.client_id}); second factor {mfa}.")
    for field, value in logout_settings.describe(client).items():
        click.echo(f"{field}: {json.dumps(value)}")


@clients_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def clients_list(as_json):
    """List clients, oldest first."""
    registered = clients.list_clients()
    if as_json:
        _echo_json([clients.client_info(client) for client in registered])
        return
    if not registered:
        click.echo("No clients.")
        return
    for client in registered:
        kind = "public" if client.is_public else "confidential"
        click.echo(
            f"{client.client_id}  {kind:<12}  {client.name}  [{' '.join(client.grant_types)}]"
        )


@clients_cli.command("delete")
@click.argument("client_id")
@yes_option
def clients_delete(client_id, yes):
    """Delete a client with its consents, codes and tokens (asks first unless --yes)."""
    client = client_or_fail(client_id)
    confirm(yes, f"Delete client {client.name} ({client.client_id}) with its consents and tokens?")
    clients.delete_client(client)
    click.echo(f"Deleted client {client.name} ({client.client_id}).")


def _grace_text(grace: int) -> str:
    if not grace:
        return "the old secret stops working at once"
    return f"the old secret keeps working for {grace} seconds"


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--grace",
    "grace",
    type=int,
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="How long the old secret keeps working (at most 2592000, 30 days).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@yes_option
def clients_rotate_secret(client_id, grace, as_json, yes):
    """Give a confidential client a new secret (asks first unless --yes); with --grace the old
    one keeps working that long, else it stops at once."""
    client = client_or_fail(client_id)
    try:
        client_secrets.clean_grace_seconds(grace)  # a bad --grace fails before the question
        if client.is_public:
            raise click.ClickException("public clients have no secret")
        confirm(
            yes, f"Rotate the secret of client {client.name}? {_grace_text(grace).capitalize()}."
        )
        secret = clients.rotate_secret(client, grace_seconds=grace)
    except clients.ClientError as error:
        raise click.ClickException(error.message) from None
    if as_json:
        _echo_json(clients.client_info(client, secret))
        return
    click.echo(f"New secret for client {client.name}.")
    click.echo(f"client_id:      {client.client_id}")
    expires = clients.client_info(client)["previous_secret_expires_at"]
    if expires:
        click.echo(f"old secret:     valid until {expires}")
    else:
        click.echo("old secret:     no longer valid")
    _echo_secret(secret)


@clients_cli.command("purge")
@click.option(
    "--unused-days",
    required=True,
    type=click.IntRange(min=1),
    help="Delete dynamically registered clients unused for this many days.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@yes_option
def clients_purge(unused_days, dry_run, yes):
    """Delete self-registered clients that went unused (asks first unless --yes or --dry-run);
    manual clients are never purged."""
    stale = registration.unused_clients(unused_days)
    if dry_run:
        click.echo(f"Would purge {len(stale)} unused dynamically registered client(s).")
        for client in stale:
            last = client.last_used_at or client.created_at
            click.echo(f"{client.client_id}  {client.name}  (last seen {last:%Y-%m-%d})")
        return
    if stale:
        confirm(
            yes,
            f"Delete {len(stale)} dynamically registered client(s) unused for "
            f"{unused_days} days, with their tokens?",
        )
        stale = registration.purge_unused(unused_days)
    click.echo(f"Purged {len(stale)} unused dynamically registered client(s).")
