"""``flask plugins list`` and ``flask plugins try``: see what is loaded, dry-run a hook."""

from __future__ import annotations

import json
import time

import click
from flask import current_app

from oauth.accounts import users as accounts
from oauth.cli.support import OneLineErrorGroup, client_or_fail
from oauth.plugins.hookspecs import TokenDenied
from oauth.plugins.host import PluginError
from oauth.plugins.host import host as plugin_host
from oauth.registry import apis
from oauth.storage.db import database
from oauth.storage.models import OAuthSession
from oauth.tokens.claims import (
    id_token_claims,
    machine_access_token_claims,
    user_access_token_claims,
)
from oauth.tokens.claims import userinfo_claims as base_userinfo_claims
from oauth.tokens.issue import TokenContext

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
    """Loaded plugins, where they come from, their hooks and call statistics (all workers)."""
    plugins = plugin_host().describe()
    if as_json:
        click.echo(json.dumps(plugins, indent=2))
        return
    if not plugins:
        click.echo(f"No plugins loaded (plugin folder: {current_app.config['PLUGINS_DIR']}).")
        return
    for p in plugins:
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
        with database.atomic() as transaction:
            result = _dry_run(hook, client, user, scopes, audience)
            transaction.rollback()
    except TokenDenied as denial:
        raise click.ClickException(f"denied: {denial.error}: {denial.description}") from None
    except PluginError as failure:
        raise click.ClickException(failure.description) from None
    plugin_host().flush()
    click.echo(json.dumps(result, indent=2, sort_keys=True))


def _dry_run(hook, client, user, scopes, audience) -> dict:
    now = int(time.time())
    host = plugin_host()
    if user is None:
        if hook in ("customize_id_token", "userinfo_claims"):
            raise click.ClickException(f"{hook} needs --user")
        audience = audience or current_app.config.get("DEFAULT_API") or "urn:portcullis:dry-run"
        api = apis.get_api(audience)
        context = TokenContext(
            client, None, "client_credentials", "client_secret_basic", scopes, audience
        )
        scopes, extra = host.customize_client_credentials(client, scopes, audience, context)
        context.scopes = scopes
        claims = machine_access_token_claims(
            client=client,
            audience=audience,
            scopes=scopes,
            ttl=api.token_ttl if api else 3600,
            now=now,
        )
        claims.update(extra)
        if hook == "customize_client_credentials_token":
            return claims
        return host.customize_access_token(claims, context)
    audience = audience or current_app.config["DEFAULT_AUDIENCE"]
    session = OAuthSession(
        id="dry-run",
        user=user,
        client=client,
        scope=" ".join(scopes),
        audience=audience,
        auth_time=now,
        amr=["pwd"],
    )
    context = TokenContext(
        client, user, "authorization_code", "client_secret_basic", scopes, audience, session=session
    )
    if hook == "customize_id_token":
        claims = id_token_claims(
            user=user,
            client=client,
            scopes=scopes,
            auth_time=now,
            nonce=None,
            at_hash=None,
            now=now,
        )
        return host.customize_id_token(claims, context)
    if hook == "userinfo_claims":
        return host.userinfo_claims(base_userinfo_claims(user, scopes), user, scopes)
    if hook == "customize_client_credentials_token":
        raise click.ClickException(
            "customize_client_credentials_token is for client credentials: omit --user"
        )
    claims = user_access_token_claims(
        user=user, client=client, session=session, scopes=scopes, now=now
    )
    return host.customize_access_token(claims, context)
