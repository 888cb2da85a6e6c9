"""``flask keys ...`` (being written)."""

from flask.cli import AppGroup

keys_cli = AppGroup("keys", help="Manage JWT signing keys.")
