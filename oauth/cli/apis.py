"""``flask apis ...``: register APIs (resource servers) and grant clients their scopes."""

from __future__ import annotations

import json
from typing import Any

import click

from oauth.cli.support import OneLineErrorGroup, client_or_fail, confirm, yes_option
from oauth.registry import apis, client_grants, resource_servers
from oauth.storage.models import Api

apis_cli = OneLineErrorGroup("apis", help="Manage APIs (resource servers) and client grants.")


def _api_or_fail(identifier: str) -> Api:
    api = apis.get_api(identifier)
    if api is None:
        raise click.ClickException(f"no API with identifier {identifier!r}")
    return api


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _scope_line(api: Api) -> str:
    return " ".join(api.scope_values) or "(none)"


@apis_cli.command("create")
@click.argument("identifier")
@click.option("--name", required=True, help="Display name.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help='A scope, optionally with a description: "read:things=Read your things". Repeat.',
)
@click.option(
    "--token-ttl",
    type=int,
    default=None,
    help="Lifetime of its access tokens in seconds. Default: ACCESS_TOKEN_TTL.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def apis_create(identifier, name, scopes, token_ttl, as_json):
    """Register an API; IDENTIFIER (a URI) is the audience of its tokens."""
    try:
        api = apis.create_api(identifier, name, list(scopes), token_ttl=token_ttl)
    except apis.ApiError as error:
        raise click.ClickException(error.message) from None
    if as_json:
        _echo_json(apis.api_info(api))
        return
    click.echo(f"Created API {api.name}.")
    click.echo(f"identifier:  {api.identifier}")
    click.echo(f"token TTL:   {api.token_ttl}s")
    click.echo(f"scopes:      {_scope_line(api)}")


@apis_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def apis_list(as_json):
    """List APIs, oldest first, with their scopes and client grants."""
    registered = apis.list_apis()
    grants_by_api: dict[int, list] = {api.id: [] for api in registered}
    for grant in client_grants.list_grants():
        grants_by_api.setdefault(grant.api_id, []).append(grant)
    if as_json:
        _echo_json([apis.api_info(api, grants_by_api[api.id]) for api in registered])
        return
    if not registered:
        click.echo("No APIs.")
        return
    for api in registered:
        click.echo(f"{api.identifier}  {api.name}  (token TTL {api.token_ttl}s)")
        click.echo(f"  scopes: {_scope_line(api)}")
        if api.resource_server_id:
            click.echo(f"  resource server: {api.resource_server_id}")
        for grant in grants_by_api[api.id]:
            granted = " ".join(grant.scopes) or "(no scopes)"
            click.echo(f"  grant:  {grant.client_id} ({grant.client.name}): {granted}")


@apis_cli.command("delete")
@click.argument("identifier")
@yes_option
def apis_delete(identifier, yes):
    """Delete an API and its client grants (asks first unless --yes)."""
    api = _api_or_fail(identifier)
    grants = len(client_grants.list_grants(api=api))
    confirm(yes, f"Delete API {api.name} ({api.identifier}) and its {grants} client grant(s)?")
    apis.delete_api(api)
    click.echo(f"Deleted API {api.name} ({api.identifier}) and {grants} client grant(s).")


@apis_cli.command("grant")
@click.argument("client_id")
@click.argument("identifier")
@click.option(
    "--scope", "scopes", multiple=True, help="Repeat for several. Default: every scope of the API."
)
def apis_grant(client_id, identifier, scopes):
    """Let a client get scopes of an API with client_credentials (replaces an earlier grant)."""
    client = client_or_fail(client_id)
    api = _api_or_fail(identifier)
    try:
        grant = client_grants.grant(client, api, list(scopes) if scopes else None)
    except apis.ApiError as error:
        raise click.ClickException(error.message) from None
    granted = " ".join(grant.scopes) or "(no scopes)"
    click.echo(
        f"Granted client {client.name} ({client.client_id}) on API {api.identifier}: {granted}"
    )


@apis_cli.command("revoke")
@click.argument("client_id")
@click.argument("identifier")
@yes_option
def apis_revoke(client_id, identifier, yes):
    """Remove a client's grant for an API (asks first unless --yes)."""
    client = client_or_fail(client_id)
    api = _api_or_fail(identifier)
    missing = f"client {client.client_id} has no grant for API {api.identifier}"
    if client_grants.get_grant(client, api) is None:
        raise click.ClickException(missing)
    confirm(yes, f"Revoke the grant of client {client.name} for API {api.identifier}?")
    if not client_grants.revoke_grant(client, api):
        raise click.ClickException(missing)
    click.echo(
        f"Revoked the grant of client {client.name} ({client.client_id}) for API {api.identifier}."
    )


@apis_cli.command("resource-server")
@click.argument("identifier")
@click.argument("client_id", required=False)
@click.option("--unlink", is_flag=True, help="The API has no resource server any more.")
def apis_resource_server(identifier, client_id, unlink):
    """Name the client the API's own server authenticates as (or show it).

    That client may introspect the tokens whose audience is the API (RFC 7662); without one,
    only the client a token was issued to may.
    """
    api = _api_or_fail(identifier)
    if client_id and unlink:
        raise click.ClickException("give a CLIENT_ID or --unlink, not both")
    if not client_id and not unlink:
        click.echo(api.resource_server_id or "(none)")
        return
    client = client_or_fail(client_id) if client_id else None
    try:
        resource_servers.set_resource_server(api, client)
    except apis.ApiError as error:
        raise click.ClickException(error.message) from None
    if client is None:
        click.echo(f"API {api.identifier} has no resource server now.")
    else:
        click.echo(
            f"Client {client.name} ({client.client_id}) is the resource server of {api.identifier}."
        )
