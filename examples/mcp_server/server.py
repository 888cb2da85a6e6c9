"""A small MCP server whose tools are protected by Portcullis (see docs/mcp.md).

    PORTCULLIS_ISSUER=http://127.0.0.1:5000 MCP_SERVER_URL=http://127.0.0.1:8000/mcp \
        python examples/mcp_server/server.py

What it does, per the MCP authorization specification (2025-11-25):

- publishes RFC 9728 protected resource metadata at
  ``/.well-known/oauth-protected-resource/mcp``: this server's URL as ``resource``, the
  Portcullis issuer as its authorization server, and the scopes its tools use;
- answers a request without a valid token with 401 and
  ``WWW-Authenticate: Bearer ..., resource_metadata="<that URL>"``, which is where MCP clients
  start the OAuth flow;
- verifies each access token itself: an RFC 9068 JWT signed by a key of the issuer's JWKS,
  with ``iss`` the issuer and ``aud`` this server's own URL (RFC 8707: register the URL as an
  API with ``flask apis create <MCP_SERVER_URL> --name ...`` so Portcullis issues tokens for
  it; a token for any other audience is refused);
- checks scopes per tool: ``notes:read`` to connect at all and list notes, ``notes:write`` to
  add one (Portcullis learns these scopes from the drop-in plugin ``notes_scopes.py``).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

import anyio
import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

READ, WRITE = "notes:read", "notes:write"
ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]


class PortcullisTokenVerifier:
    """Access tokens checked against the issuer's JWKS, with this server as the audience."""

    def __init__(self, issuer: str, audience: str) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks = jwt.PyJWKClient(f"{self.issuer}/.well-known/jwks.json", cache_keys=True)

    def _verify(self, token: str) -> AccessToken | None:
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=self.audience,
            subject=str(claims["sub"]),
            claims=claims,
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        return await anyio.to_thread.run_sync(self._verify, token)


def require_scope(scope: str) -> AccessToken:
    """The caller's token, when it carries ``scope``; else the tool call fails."""
    token = get_access_token()
    if token is None or scope not in token.scopes:
        raise ToolError(f"insufficient_scope: this tool needs the {scope!r} scope")
    return token


def build(issuer: str, server_url: str) -> Starlette:
    """The ASGI app: the MCP endpoint (streamable HTTP) at ``server_url``'s path."""
    notes: dict[str, list[str]] = defaultdict(list)  # per user (the token's sub)
    lock = threading.Lock()
    mcp = MCPServer(
        "Portcullis notes",
        token_verifier=PortcullisTokenVerifier(issuer, server_url),
        auth=AuthSettings(
            issuer_url=issuer,
            resource_server_url=server_url,
            required_scopes=[READ],  # to connect at all
            validate_token_resource=False,  # the verifier checks aud itself
        ),
    )

    @mcp.tool()
    def whoami() -> dict:
        """Who the access token was issued to."""
        token = require_scope(READ)
        return {"sub": token.subject, "client_id": token.client_id, "scopes": token.scopes}

    @mcp.tool()
    def list_notes() -> list[str]:
        """The caller's notes (needs notes:read)."""
        token = require_scope(READ)
        with lock:
            return list(notes[token.subject or ""])

    @mcp.tool()
    def add_note(text: str) -> str:
        """Add a note (needs notes:write)."""
        token = require_scope(WRITE)
        with lock:
            notes[token.subject or ""].append(text)
        return "saved"

    app = mcp.streamable_http_app(streamable_http_path=_path(server_url))
    _advertise_every_scope(app, issuer, server_url)
    return app


def _path(server_url: str) -> str:
    path = "/" + server_url.split("://", 1)[1].partition("/")[2]
    return path if path != "/" else "/mcp"


def _advertise_every_scope(app: Starlette, issuer: str, server_url: str) -> None:
    """Serve RFC 9728 metadata listing every tool's scope (the SDK lists only the ones needed
    to connect), so MCP clients ask for notes:write too."""
    url = str(build_resource_metadata_url(server_url))
    path = "/" + url.split("://", 1)[1].partition("/")[2]

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "resource": server_url,
                "authorization_servers": [issuer],
                "scopes_supported": [READ, WRITE],
                "bearer_methods_supported": ["header"],
                "resource_name": "Portcullis notes (example MCP server)",
            },
            headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"},
        )

    routes = [r for r in app.router.routes if getattr(r, "path", None) != path]
    app.router.routes[:] = [Route(path, metadata, methods=["GET"]), *routes]


def main() -> None:
    issuer = os.environ.get("PORTCULLIS_ISSUER", "http://127.0.0.1:5000")
    server_url = os.environ.get("MCP_SERVER_URL", "http://127.0.0.1:8000/mcp")
    host, _, port = server_url.split("://", 1)[1].partition("/")[0].rpartition(":")
    uvicorn.run(build(issuer, server_url), host=host or "127.0.0.1", port=int(port or 8000))


if __name__ == "__main__":
    main()
