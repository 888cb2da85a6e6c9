"""``flask plugins ...`` (being written)."""

from flask.cli import AppGroup

plugins_cli = AppGroup("plugins", help="Inspect and try plugins.")
