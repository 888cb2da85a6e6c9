"""The ``flask`` command line: one module per command group. Errors print one line on
stderr and exit with status 1."""

from __future__ import annotations

from flask import Flask

from oauth.cli.apis import apis_cli
from oauth.cli.audit import audit_cli
from oauth.cli.backchannel import backchannel_cli
from oauth.cli.backup import backup_command
from oauth.cli.clients import clients_cli
from oauth.cli.keys import keys_cli
from oauth.cli.mail import mail_cli
from oauth.cli.plugins import plugins_cli
from oauth.cli.setup import demo_command, init_db_command
from oauth.cli.users import users_cli


def init_app(app: Flask) -> None:
    app.cli.add_command(init_db_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_command)
    app.cli.add_command(clients_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(apis_cli)
    app.cli.add_command(plugins_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(backchannel_cli)
    app.cli.add_command(backup_command)
    app.cli.add_command(audit_cli)
