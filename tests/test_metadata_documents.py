"""Client ID Metadata Documents (MCP): an https client_id is fetched, checked, cached, shown
as unverified; and every SSRF and bad-document refusal, against a real local HTTPS server."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

import pytest

from oauth import outbound
from oauth.registry import metadata_documents
from oauth.storage.db import database, write_transaction
from oauth.storage.models import AuditEvent, Client, Consent
from tests.conftest import csrf_token_from
from tests.document_server import DocumentServer, document
from tests.oauth_helpers import Flow, decode_jwt_unverified, query

REDIRECT = "http://127.0.0.1:33418/callback"


@pytest.fixture
def docs(tmp_path, monkeypatch):
    server = DocumentServer(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", server.ca_path)  # Portcullis trusts the test CA
    with server:
        yield server


@pytest.fixture
def open_app(make_app):
    """Loopback fetches allowed: the only way to reach the local document server."""
    return make_app(FETCH_ALLOW_PRIVATE_ADDRESSES=True)


def _authorize(browser, client_id, **extra):
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid email",
        "state": "s1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSwW-cM",
        "code_challenge_method": "S256",
        **extra,
    }
    return browser.get("/oauth/authorize?" + urlencode(params))


def test_a_metadata_document_client_signs_a_user_in_end_to_end(open_app, docs):
    # A long client_id: every column that holds one takes 255 characters (migration 0019).
    path = "/clients/" + "x" * 200 + "/client.json"
    url = docs.route(path, headers={"Cache-Control": "max-age=600"})
    assert len(url) > 230
    browser = open_app.test_client()
    flow = Flow(open_app, browser, client_id=url, redirect_uri=REDIRECT)
    flow.auth.create_user()
    flow.auth.login()
    response = flow.authorize()
    location, page = flow.consent_page(response)
    html = page.get_data(as_text=True)
    assert "Unverified app" in html and "127.0.0.1" in html and "Docs MCP Client" in html
    decided = flow.decide(location, page)
    result = query(decided.headers["Location"])
    tokens = flow.exchange(result["code"], auth="none").get_json()
    assert "access_token" in tokens, tokens
    _, claims = decode_jwt_unverified(tokens["access_token"])
    assert claims["client_id"] == url
    assert flow.refresh(tokens["refresh_token"]).status_code == 200
    assert docs.hits[path] == 1  # cached: max-age=600
    with open_app.app_context():
        client = Client.get_by_id(url)
        assert client.registration_type == "metadata_document" and client.is_public
        assert client.redirect_uris == [REDIRECT]
        left = (client.metadata_expires_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)).seconds
        assert 500 < left <= 600
        assert AuditEvent.get(AuditEvent.client_id == url).event_type == "client.created"
    # A public client with a loopback redirect is asked again (RFC 8252, issue 9 item 6).
    assert flow.authorize().headers["Location"].startswith("/oauth/consent")


def test_discovery_advertises_metadata_documents(client, make_app):
    assert client.get("/.well-known/oauth-authorization-server").get_json()[
        "client_id_metadata_document_supported"
    ]
    off = make_app(CLIENT_ID_METADATA_DOCUMENTS=False).test_client()
    meta = off.get("/.well-known/openid-configuration").get_json()
    assert meta["client_id_metadata_document_supported"] is False


def test_a_stale_document_is_fetched_again_and_changes_are_audited(open_app, docs):
    url = docs.route("/c.json")
    browser = open_app.test_client()
    assert _authorize(browser, url).status_code == 302
    docs.route("/c.json", body=document(url, client_name="Renamed"))
    assert _authorize(browser, url).status_code == 302
    assert docs.hits["/c.json"] == 1  # fresh for DEFAULT_CACHE_SECONDS
    with open_app.app_context():
        Client.update(metadata_expires_at=dt.datetime(2000, 1, 1)).execute()
    assert _authorize(browser, url).status_code == 302
    assert docs.hits["/c.json"] == 2
    with open_app.app_context():
        assert Client.get_by_id(url).name == "Renamed"
        events = [e.event_type for e in AuditEvent.select().order_by(AuditEvent.id)]
        assert events.count("client.updated") == 1


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]", "[::ffff:127.0.0.1]"],
)
def test_private_and_loopback_addresses_are_refused_by_default(client, docs, host):
    response = _authorize(client, f"https://{host}:{docs.httpd.server_address[1]}/client.json")
    assert response.status_code == 400
    assert "not fetched" in response.get_data(as_text=True)
    assert docs.hits["/client.json"] == 0


def test_address_rules():
    problem = outbound.address_problem
    assert problem("8.8.8.8") is None and problem("2606:4700:4700::1111") is None
    for address in ("127.0.0.1", "10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254"):
        assert problem(address), address
    for address in ("::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "100.64.0.1", "240.0.0.1"):
        assert problem(address), address
    assert problem("224.0.0.1", allow_private=True) and problem("0.0.0.0", allow_private=True)
    assert problem("127.0.0.1", allow_private=True) is None


@pytest.mark.parametrize(
    ("client_id", "message"),
    [
        ("https://example.com", "must have a path"),
        ("https://example.com/", "must have a path"),
        ("https://user:pw@example.com/c.json", "user name"),
        ("https://example.com/a/../c.json", "path segments"),
        ("https://example.com/c.json#x", "fragment"),
        ("https://example.com/" + "a" * 300, "at most 255"),
    ],
)
def test_malformed_client_id_urls_are_refused_without_a_fetch(client, client_id, message):
    response = _authorize(client, client_id)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_http_client_ids_are_not_documents(client, docs):
    response = _authorize(client, docs.url("/client.json").replace("https:", "http:"))
    assert response.status_code == 400 and "Unknown application" in response.get_data(True)
    assert docs.hits["/client.json"] == 0


def test_the_setting_turns_metadata_documents_off(make_app, docs):
    app = make_app(CLIENT_ID_METADATA_DOCUMENTS=False, FETCH_ALLOW_PRIVATE_ADDRESSES=True)
    response = _authorize(app.test_client(), docs.route("/client.json"))
    assert response.status_code == 400 and "does not accept URLs" in response.get_data(True)
    assert docs.hits["/client.json"] == 0


def _refusal(app, url) -> str:
    response = _authorize(app.test_client(), url)
    assert response.status_code == 400, response.headers.get("Location")
    with app.app_context():
        assert Client.get_or_none(Client.client_id == url) is None
    return response.get_data(as_text=True)


def test_redirects_are_not_followed(open_app, docs):
    target = docs.route("/real.json")
    url = docs.route("/moved.json", status=302, headers={"Location": target})
    assert "redirects are not followed" in _refusal(open_app, url)
    assert docs.hits["/real.json"] == 0


def test_oversize_slow_and_untrusted_answers_are_refused(open_app, docs, monkeypatch):
    big = document(docs.url("/big.json"), client_name="x" * 100, padding="p" * 20000)
    assert "larger than" in _refusal(open_app, docs.route("/big.json", body=big))
    assert "answered status 404" in _refusal(open_app, docs.url("/missing.json"))
    monkeypatch.setattr(metadata_documents, "FETCH_TIMEOUT", 1.0)
    assert "timed out" in _refusal(open_app, docs.route("/slow.json", delay=2))
    assert "timed out" in _refusal(open_app, docs.route("/drip.json", dribble=True))
    monkeypatch.delenv("SSL_CERT_FILE")
    assert "TLS" in _refusal(open_app, docs.route("/untrusted.json"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        ({"client_id": "https://elsewhere.example/c.json"}, "client_id is not the URL"),
        ("secret", "no client secret"),
        ("basic", "token_endpoint_auth_method must be"),
        ("no-redirects", "redirect_uris is required"),
        ("machine", "not for a public client"),
        ("bad-redirect", "redirect"),
    ],
)
def test_bad_documents_are_refused(open_app, docs, body, message):
    url = docs.url("/doc.json")
    variants = {
        "secret": document(url, client_secret="s3cret"),
        "basic": document(url, token_endpoint_auth_method="client_secret_basic"),
        "no-redirects": document(url, redirect_uris=None),
        "machine": document(url, grant_types=["client_credentials"]),
        "bad-redirect": document(url, redirect_uris=["https://*.example/cb"]),
    }
    docs.route("/doc.json", body=variants[body] if isinstance(body, str) else body)
    assert message in _refusal(open_app, url)


def test_fetches_are_rate_limited_per_host(make_app, docs):
    app = make_app(FETCH_ALLOW_PRIVATE_ADDRESSES=True, METADATA_FETCH_HOST_RATE_LIMIT="2 per hour")
    browser = app.test_client()
    for name in ("a", "b"):
        assert _authorize(browser, docs.route(f"/{name}.json")).status_code == 302
    assert _authorize(browser, docs.route("/a.json")).status_code == 302  # cached: no fetch
    response = _authorize(browser, docs.route("/c.json"))
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert docs.hits["/c.json"] == 0


def test_never_fetched_inside_a_transaction(open_app, docs):
    url = docs.route("/client.json")
    with open_app.test_request_context():
        database.connect(reuse_if_open=True)
        with pytest.raises(RuntimeError, match="inside a transaction"), write_transaction():
            metadata_documents.resolve(url)
        database.close()
    assert docs.hits["/client.json"] == 0


def test_cache_lifetime_from_headers():
    seconds = metadata_documents.cache_seconds
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert seconds({}) == metadata_documents.DEFAULT_CACHE_SECONDS
    assert seconds({"Cache-Control": "public, max-age=7200"}) == 7200
    assert seconds({"Cache-Control": "no-store"}) == metadata_documents.MIN_CACHE_SECONDS
    assert seconds({"Cache-Control": "max-age=99999999"}) == metadata_documents.MAX_CACHE_SECONDS
    assert seconds({"Expires": "Thu, 01 Jan 2026 02:00:00 GMT"}, now) == 7200
    assert seconds({"Expires": "garbage"}, now) == metadata_documents.MIN_CACHE_SECONDS


def test_a_metadata_document_app_is_revoked_and_administered_like_any(open_app, docs):
    url = docs.route("/client.json")
    browser = open_app.test_client()
    flow = Flow(open_app, browser, client_id=url, redirect_uri=REDIRECT)
    flow.auth.create_user(is_admin=True)
    flow.auth.login()
    flow.get_code()
    apps = browser.get("/settings/apps").get_data(as_text=True)
    action = re.search(r'action="([^"]*/revoke)"', apps).group(1)
    response = browser.post(action, data={"csrf_token": csrf_token_from(apps)})
    assert response.status_code == 302, response.status_code
    with open_app.app_context():
        assert Consent.select().count() == 0
    edit = browser.get(f"/admin/clients/{url}")
    assert edit.status_code == 200 and "Docs MCP Client" in edit.get_data(as_text=True)
    page = browser.get(f"/admin/clients/{url}/delete").get_data(as_text=True)
    assert browser.post(
        f"/admin/clients/{url}/delete", data={"csrf_token": csrf_token_from(page)}
    ).status_code in (302, 303)
    with open_app.app_context():
        assert Client.get_or_none(Client.client_id == url) is None
