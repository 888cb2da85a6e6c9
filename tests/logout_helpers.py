"""A real local HTTP server that receives back-channel logout tokens, for the logout tests."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from joserfc import jwt as rfc_jwt
from joserfc.jwk import KeySet


class Receiver:
    """Records every POST (its form fields); answers ``status`` (changeable), or waits
    ``delay`` seconds first, or runs ``on_request`` (in the server's thread) before answering."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.delay = 0.0
        self.on_request = None
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                receiver.received.append(
                    {
                        "content_type": self.headers.get("Content-Type"),
                        "form": {k: v[0] for k, v in parse_qs(body).items()},
                    }
                )
                if receiver.on_request is not None:
                    receiver.on_request()
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/backchannel"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def tokens(self) -> list[str]:
        return [item["form"]["logout_token"] for item in self.received]


def verify_logout_token(token: str, jwks: dict):
    """Decode and check a logout token with the published JWKS, as a relying party does."""
    decoded = rfc_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256", "RS256"])
    assert decoded.header["typ"] == "logout+jwt"
    return decoded.claims
