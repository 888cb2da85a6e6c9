"""What every admin view shares."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from oauth.registry import clients
from oauth.storage.models import Client
from oauth.web.forms import ConfirmForm


def actor() -> str:
    """The signed-in admin: the ``actor_id`` of the services' audit events."""
    return current_user.id


def confirmed() -> None:
    """Abort with 400 unless the POST carries a valid CSRF token."""
    if not ConfirmForm().validate_on_submit():
        abort(400)


def client_or_404(client_id: str) -> Client:
    client = clients.get_client(client_id)
    if client is None:
        abort(404)
    return client
