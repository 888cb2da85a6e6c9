"""``flask apis ...`` (being written)."""

from flask.cli import AppGroup

apis_cli = AppGroup("apis", help="Manage APIs (resource servers) and client grants.")
