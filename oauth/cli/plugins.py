"""``flask plugins list`` and ``flask plugins try``: see what is loaded, dry-run a hook."""

from __future__ import annotations

import json
import time

import click
from flask import current_app

from oauth.accounts import users as accounts
from oauth.cli.support import OneLineErrorGroup, client_or_fail
from oauth.plugins.hookspecs import TokenContext, TokenDenied
from oauth.plugins.host import PluginError
from oauth.plugins.host import host as plugin_host
from oauth.registry import apis, client_grants
from oauth.storage.db import database
from oauth.storage.models import OAuthSession
from oauth.tokens import issue
from oauth.tokens.claims import userinfo_claims as base_userinfo_claims

plugins_cli = OneLineErrorGroup("plugins", help="Inspect and try plugins.")

TRY_HOOKS = (
    "customize_access_token",
    "customize_client_credentials_token",
    "customize_id_token",
    "userinfo_claims",
)


@plugins_cli.command("list")
@click.option("--json", "as_json", is_flag=True)
def plugins_list(as_json):
    """The plugins THIS command loaded (PLUGINS_DIR, entry points, built-ins), their hooks and
    the call statistics of every worker. A running server loaded its own at start-up."""
    plugins = plugin_host().describe()
    if as_json:
        click.echo(json.dumps(plugins, indent=2))
        return
    folder = current_app.config["PLUGINS_DIR"]
    if plugins:
        click.echo(
            f"Plugins this CLI process loaded from {folder} and installed 'portcullis' "
            "entry points:"
        )
    else:
        click.echo(f"No plugins loaded by this CLI process (plugin folder: {folder}).")
    click.echo(
        "A running server loads its plugins when it starts: restart it after adding or "
        "changing a plugin file. /admin/plugins shows what the running server loaded."
    )
    for p in plugins:
        click.echo("")
        click.echo(f"{p['name']}  [{p['source']}]")
        click.echo(f"  hooks: {', '.join(p['hooks']) or '-'}")
        click.echo(
            f"  calls: {p['calls']}  failures: {p['failures']}  denials: {p['denials']}  mean: {p['mean_ms']} ms"
        )
        for hook, h in p["per_hook"].items():
            click.echo(
                f"    {hook}: {h['calls']} calls, {h['failures']} failures, "
                f"{h['denials']} denials, {h['mean_ms']} ms mean"
            )


@plugins_cli.command("try")
@click.argument("hook", type=click.Choice(TRY_HOOKS))
@click.option("--client", "client_id", required=True, help="The client the token would be for.")
@click.option(
    "--user", "email", help="A user (for user tokens); without it, a client-credentials token."
)
@click.option("--scope", "scopes", multiple=True, help="A scope (repeatable).")
@click.option(
    "--audience", help="The API identifier (client credentials) or resource (user tokens)."
)
def plugins_try(hook, client_id, email, scopes, audience):
    """Run HOOK's plugin chain on a sample context and print the claims; nothing is issued or saved."""
    client = client_or_fail(client_id)
    user = None
    if email:
        user = accounts.find_by_email(email)
        if user is None:
            raise click.ClickException(f"no user with email {email}")
    scopes = list(scopes) or (["openid", "email"] if user else [])
    try:
        with database.atomic() as transaction, plugin_host().dry_run():
            result = _dry_run(hook, client, user, scopes, audience)
            transaction.rollback()
    except TokenDenied as denial:
        raise click.ClickException(f"denied: {denial.error}: {denial.description}") from None
    except PluginError as failure:
        raise click.ClickException(failure.description) from None
    click.echo(json.dumps(result, indent=2, sort_keys=True))


def _dry_run(hook, client, user, scopes, audience) -> dict:
    """The claims the real pipeline would produce (``tokens/issue.py``), signed by nobody."""
    if user is None:
        if hook in ("customize_id_token", "userinfo_claims"):
            raise click.ClickException(f"{hook} needs --user")
        audience = audience or current_app.config.get("DEFAULT_API") or "urn:portcullis:dry-run"
        api = apis.get_api(audience)
        grant = client_grants.get_grant(client, api) if api is not None else None
        if not scopes and grant is not None:  # as the token endpoint: the granted scopes
            scopes = list(grant.scopes or [])
        context = TokenContext(
            client, None, "client_credentials", "client_secret_basic", scopes, audience
        )
        return issue.dry_run(hook, context, ttl=api.token_ttl if api else 3600)
    if hook == "userinfo_claims":
        return plugin_host().userinfo_claims(base_userinfo_claims(user, scopes), user, scopes)
    if hook == "customize_client_credentials_token":
        raise click.ClickException(
            "customize_client_credentials_token is for client credentials: omit --user"
        )
    audience = audience or current_app.config["DEFAULT_AUDIENCE"]
    session = OAuthSession(
        id="dry-run",
        user=user,
        client=client,
        scope=" ".join(scopes),
        audience=audience,
        auth_time=int(time.time()),
        amr=["pwd"],
    )
    context = TokenContext(
        client, user, "authorization_code", "client_secret_basic", scopes, audience, session=session
    )
    return issue.dry_run(hook, context, ttl=0)
