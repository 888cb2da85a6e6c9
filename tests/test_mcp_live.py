"""The MCP Python SDK's own OAuth client (mcp.client.auth.OAuthClientProvider) against the
example MCP server (examples/mcp_server/) and a live gunicorn Portcullis, end to end:
protected resource metadata, discovery, a Client ID Metadata Document (or dynamic
registration), PKCE, ``resource``, our sign-in and consent pages driven with requests from the
SDK's redirect handler, tool calls with per-tool scopes, and a refresh."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
import uvicorn
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from examples.mcp_server.server import build
from oauth.accounts import users
from oauth.storage.models import AuditEvent, Client
from tests.document_server import DocumentServer, document
from tests.live import csrf, free_port, serve
from tests.oauth_helpers import Flow, make_client

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mcp_server"
CALLBACK = "http://127.0.0.1:33418/callback"
EMAIL, PASSWORD = "mcp-user@example.com", "correct horse"
TOKEN_TTL = 3  # seconds: the second round of calls needs a refresh


class Storage:
    def __init__(self):
        self.tokens = self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


class Browser:
    """The user: signs in and approves on Portcullis's own pages, like a person would."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self.session = requests.Session()
        self.result: AuthorizationCodeResult | None = None
        self.consent_pages: list[str] = []

    def _follow(self, response):
        while response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(CALLBACK):
                return location
            response = self.session.get(location, allow_redirects=False, timeout=30)
        return response

    def authorize(self, url: str) -> None:
        page = self._follow(self.session.get(url, allow_redirects=False, timeout=30))
        if not isinstance(page, str) and "/login" in page.url:
            next_path = parse_qs(urlsplit(page.url).query)["next"][0]
            form = {"email": EMAIL, "password": PASSWORD, "csrf_token": csrf(page.text)}
            page = self._follow(
                self.session.post(
                    self.issuer + "/login", data={**form, "next": next_path}, allow_redirects=False
                )
            )
        if not isinstance(page, str):  # the consent page
            assert page.status_code == 200, page.text
            self.consent_pages.append(page.text)
            decision = {"csrf_token": csrf(page.text), "decision": "approve"}
            page = self._follow(self.session.post(page.url, data=decision, allow_redirects=False))
        assert isinstance(page, str) and page.startswith(CALLBACK), page
        query = {k: v[0] for k, v in parse_qs(urlsplit(page).query).items()}
        self.result = AuthorizationCodeResult(
            code=query["code"], state=query.get("state"), iss=query.get("iss")
        )


class McpServer:
    def __init__(self, issuer: str):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/mcp"
        config = uvicorn.Config(
            build(issuer, self.url), port=port, log_level="warning", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the MCP server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def _use_tools(provider, url):
    async with (
        create_mcp_http_client(auth=provider) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        added = await session.call_tool("add_note", {"text": "hello"})
        listed = await session.call_tool("list_notes", {})
        whoami = await session.call_tool("whoami", {})
        return added, listed, whoami


async def _read_only(token, url):
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        create_mcp_http_client(headers=headers) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        added = await session.call_tool("add_note", {"text": "sneaky"})
        listed = await session.call_tool("list_notes", {})
        return added, listed


def _check_scopes_and_audience(app, mcp_server) -> None:
    """A notes:read token may list but not add; a token for another audience is refused."""
    client_id, _ = make_client(app, public=True, redirect_uris=[CALLBACK], name="Reader")
    flow = Flow(app, app.test_client(), client_id=client_id, redirect_uri=CALLBACK)
    flow.auth.login(EMAIL, PASSWORD)
    code, _ = flow.get_code(scope="notes:read", resource=mcp_server.url)
    token = flow.exchange(code, auth="none", resource=mcp_server.url).get_json()["access_token"]
    added, listed = asyncio.run(_read_only(token, mcp_server.url))
    assert added.is_error and "notes:write" in _text(added)
    assert not listed.is_error and "sneaky" not in _text(listed)
    code, _ = flow.get_code(scope="notes:read")  # no resource: aud is DEFAULT_AUDIENCE
    other = flow.exchange(code, auth="none").get_json()["access_token"]
    headers = {"Authorization": f"Bearer {other}", "Accept": "application/json, text/event-stream"}
    assert requests.post(mcp_server.url, json={}, headers=headers, timeout=10).status_code == 401


def _text(result) -> str:
    return " ".join(getattr(item, "text", "") for item in result.content)


@pytest.mark.parametrize("registration", ["metadata_document", "dynamic"])
def test_the_mcp_sdk_client_gets_in(make_app, database_url, tmp_path, monkeypatch, registration):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shutil.copy(EXAMPLE / "notes_scopes.py", plugins)
    docs = DocumentServer(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", docs.ca_path)  # gunicorn inherits it
    app = make_app(PLUGINS_DIR=str(plugins))
    with app.app_context():
        users.create_user(EMAIL, PASSWORD)
    settings = {
        "SECRET_KEY": app.config["SECRET_KEY"],
        "PLUGINS_DIR": str(plugins),
        "ACCESS_TOKEN_TTL": TOKEN_TTL,
        "FETCH_ALLOW_PRIVATE_ADDRESSES": "true",  # the document server is on loopback
    }
    if registration == "dynamic":
        settings["ALLOW_DYNAMIC_REGISTRATION"] = "true"
    with (
        docs,
        serve(database_url, tmp_path / "as", workers=2, **settings) as issuer,
        McpServer(issuer) as mcp_server,
    ):
        # RFC 8707: the MCP server's URL is an API, the audience of its tokens.
        cli = app.test_cli_runner().invoke(
            args=["apis", "create", mcp_server.url, "--name", "Notes"]
        )
        assert cli.exit_code == 0, cli.output
        metadata_url = None
        if registration == "metadata_document":
            metadata_url = docs.route(
                "/mcp-client.json",
                body=document(
                    docs.url("/mcp-client.json"), client_name="SDK test client", logo_uri=None
                ),
            )
        browser = Browser(issuer)

        async def redirect_handler(url: str) -> None:
            await asyncio.to_thread(browser.authorize, url)

        async def callback_handler() -> AuthorizationCodeResult:
            return browser.result

        provider = OAuthClientProvider(
            mcp_server.url,
            OAuthClientMetadata(
                client_name="SDK test client",
                redirect_uris=[CALLBACK],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            Storage(),
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
            client_metadata_url=metadata_url,
        )
        added, listed, whoami = asyncio.run(_use_tools(provider, mcp_server.url))
        assert not added.is_error and _text(added) == "saved"
        assert "hello" in _text(listed)
        assert "mcp-user" not in _text(whoami)  # sub is the user id, not the email
        first = provider.context.current_tokens
        assert set(first.scope.split()) >= {"notes:read", "notes:write"}
        time.sleep(TOKEN_TTL + 1)  # the access token expires: the SDK refreshes it
        _, listed_again, _ = asyncio.run(_use_tools(provider, mcp_server.url))
        assert "hello" in _text(listed_again)
        assert provider.context.current_tokens.access_token != first.access_token
        assert len(browser.consent_pages) == 1  # the refresh needed no user
        _check_scopes_and_audience(make_app(PLUGINS_DIR=str(plugins), ISSUER=issuer), mcp_server)
    page = browser.consent_pages[0]
    client_id = provider.context.client_info.client_id
    with app.app_context():
        client = Client.get_by_id(client_id)
        assert client.registration_type == registration
        grants = [
            e.details.get("grant_type")
            for e in AuditEvent.select().where(
                (AuditEvent.client_id == client_id) & (AuditEvent.event_type == "token.issued")
            )
        ]
        assert grants.count("refresh_token") >= 1, grants
    if registration == "metadata_document":
        assert client_id == metadata_url and docs.hits["/mcp-client.json"] == 1
        assert "Unverified app" in page and "127.0.0.1" in page
    assert "Notes" in page  # the API the access is for


def test_the_example_server_refuses_without_a_valid_token():
    with McpServer("http://127.0.0.1:9") as mcp_server:
        answer = requests.post(mcp_server.url, json={}, timeout=10)
        assert answer.status_code == 401
        challenge = answer.headers["WWW-Authenticate"]
        prm_url = mcp_server.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
        assert challenge.startswith("Bearer ") and f'resource_metadata="{prm_url}"' in challenge
        metadata = requests.get(prm_url, timeout=10).json()
        assert metadata["resource"] == mcp_server.url
        assert metadata["authorization_servers"] == ["http://127.0.0.1:9"]
        assert metadata["scopes_supported"] == ["notes:read", "notes:write"]
        forged = requests.post(
            mcp_server.url, json={}, headers={"Authorization": "Bearer not.a.jwt"}, timeout=10
        )
        assert forged.status_code == 401
