"""Issue 9 item 6 (RFC 8252 §8.6): a remembered consent answers silently for a public client
only when its redirect URI proves who it is (a claimed https URI); loopback and custom-scheme
redirect URIs get the consent page every time, and prompt=none answers consent_required."""

import pytest

from tests.oauth_helpers import Flow, make_client, query

LOOPBACK = "http://127.0.0.1:8765/callback"
LOCALHOST = "http://localhost/callback"
CUSTOM = "com.example.app:/oauth2redirect"
CLAIMED = "https://app.example/callback"


def make_flow(app, client, redirect_uri, *, public=True):
    client_id, secret = make_client(app, public=public, redirect_uris=[redirect_uri])
    flow = Flow(app, client, client_id=client_id, secret=secret, redirect_uri=redirect_uri)
    flow.auth.create_user()
    flow.auth.login()
    return flow


def remembered(flow) -> bool:
    """Whether a second, identical request is answered without the consent page."""
    location = flow.authorize().headers["Location"]
    if location.startswith("/oauth/consent"):
        return False
    assert location.startswith(flow.redirect_uri) and "code=" in location, location
    return True


@pytest.mark.parametrize("redirect_uri", [LOOPBACK, LOCALHOST, CUSTOM])
def test_public_clients_without_a_claimed_https_redirect_ask_every_time(app, client, redirect_uri):
    flow = make_flow(app, client, redirect_uri)
    tokens = flow.exchange(flow.get_code()[0], auth="none")
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    assert not remembered(flow)
    silent = query(flow.authorize(prompt="none").headers["Location"])
    assert silent["error"] == "consent_required"
    code, _ = flow.get_code()  # the page again, and the code after approving it
    assert flow.exchange(code, auth="none").status_code == 200


def test_public_client_with_a_claimed_https_redirect_uses_remembered_consent(app, client):
    flow = make_flow(app, client, CLAIMED)
    flow.get_code()
    assert remembered(flow)
    assert "code" in query(flow.authorize(prompt="none").headers["Location"])


@pytest.mark.parametrize("redirect_uri", [LOOPBACK, CUSTOM, CLAIMED])
def test_confidential_clients_keep_remembered_consent(app, client, redirect_uri):
    flow = make_flow(app, client, redirect_uri, public=False)
    flow.get_code()
    assert remembered(flow)
