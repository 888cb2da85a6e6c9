"""Refuse every token for blocked clients: a kill switch for one misbehaving application.

A client is blocked when its ``metadata`` has ``"blocked": true`` (admin pages or
``clients.update_client``), or when its client_id is in the ``BLOCKED_CLIENTS`` setting
(``PORTCULLIS_BLOCKED_CLIENTS='["id-1", "id-2"]'``).
"""

from flask import current_app

from oauth import TokenDenied, hookimpl


def _blocked(client) -> bool:
    if (client.metadata or {}).get("blocked") is True:
        return True
    return client.client_id in (current_app.config.get("BLOCKED_CLIENTS") or [])


@hookimpl(tryfirst=True)
def customize_access_token(claims, context):
    if _blocked(context.client):
        raise TokenDenied(
            "access_denied", "This application has been blocked by the administrator."
        )
    return None
