"""``flask clients ...`` (being written)."""

from flask.cli import AppGroup

clients_cli = AppGroup("clients", help="Manage OAuth clients.")
