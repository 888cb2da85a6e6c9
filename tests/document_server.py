"""A local HTTPS server for client metadata documents, under a throwaway CA (trustme).

``DocumentServer.route(path, body=..., status=..., headers=..., delay=...)`` sets what a path
answers; ``hits[path]`` counts the requests. The CA's PEM file is what a test points
``SSL_CERT_FILE`` at so that Portcullis trusts the server.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import trustme


class DocumentServer:
    def __init__(self, ca_path: str) -> None:
        self.ca = trustme.CA()
        self.ca.cert_pem.write_to_path(ca_path)
        self.ca_path = ca_path
        self.routes: dict[str, dict] = {}
        self.hits: Counter = Counter()
        server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_cert.configure_cert(context)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a dribbling handler must not hold the test up
        self.httpd.handle_error = lambda request, address: None  # refused TLS handshakes
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path, *, body=None, status=200, headers=None, delay=0.0, dribble=False):
        """Serve ``body`` (a dict is JSON; None: the client document for this URL) at ``path``."""
        if body is None:
            body = document(self.url(path))
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        self.routes[path] = {
            "body": body, "status": status, "headers": headers or {}, "delay": delay,
            "dribble": dribble,
        }  # fmt: skip
        return self.url(path)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # http.server's name
                server.hits[self.path] += 1
                spec = server.routes.get(self.path)
                if spec is None:
                    self.send_error(404)
                    return
                time.sleep(spec["delay"])
                self.send_response(spec["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(spec["body"])))
                for name, value in spec["headers"].items():
                    self.send_header(name, value)
                self.end_headers()
                if spec["dribble"]:
                    try:
                        for byte in spec["body"]:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.2)
                    except OSError:
                        pass  # the fetcher gave up: that is the point
                else:
                    self.wfile.write(spec["body"])

            def log_message(self, *args):
                pass

        return Handler

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def document(url: str, **overrides) -> dict:
    doc = {
        "client_id": url,
        "client_name": "Docs MCP Client",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "logo_uri": "https://127.0.0.1/logo.png",
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}
