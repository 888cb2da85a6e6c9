"""Machine-to-machine set-up: an API, a client allowed to call it, and token requests."""

from __future__ import annotations

from oauth.registry import apis, client_grants, clients
from tests.oauth_helpers import basic_auth_header

API = "https://api.example.com"


def setup_m2m(
    app, *, scopes=("read:things", "write:things"), granted=None, identifier=API, name="M2M"
):
    with app.app_context():
        client, secret = clients.create_client(name, [], grant_types=["client_credentials"])
        api = apis.get_api(identifier) or apis.create_api(identifier, "Things API", list(scopes))
        client_grants.grant(client, api, list(granted) if granted is not None else None)
    return client.client_id, secret


def cc_token(http, client_id, secret, **data):
    """A client_credentials request through Flask's test client."""
    data = {"grant_type": "client_credentials", **{k: v for k, v in data.items() if v is not None}}
    return http.post("/oauth/token", data=data, headers=basic_auth_header(client_id, secret))
