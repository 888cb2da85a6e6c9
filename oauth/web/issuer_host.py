"""A warning when browsers or clients reach the server under another host than the issuer's.

Discovery, tokens, redirects and cookies all name the issuer (``PORTCULLIS_ISSUER``); a server
reached as ``localhost:5800`` while its issuer says ``127.0.0.1:5000`` (or behind a proxy whose
``X-Forwarded-Host`` is not believed) half works, and the reason is hard to see. Each worker
warns once per such host; a request for a host already seen costs one set lookup.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, request

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": "80", "https": "443"}
# Hosts remembered per worker: enough for every real name, bounded against forged Host headers.
MAX_HOSTS = 64


def normal_host(scheme: str, host: str) -> str:
    """``host[:port]`` in lower case, without the scheme's default port."""
    host = host.lower()
    default = DEFAULT_PORTS.get(scheme)
    if default and host.endswith(f":{default}"):
        host = host[: -len(default) - 1]
    return host


EXTENSION = "portcullis.issuer_host"


def init_app(app: Flask) -> None:
    checker = app.extensions[EXTENSION] = HostChecker()
    app.before_request(
        lambda: checker.check(
            app.config["ISSUER"], request.host, request.scheme, probe=request.blueprint == "health"
        )
    )


def check_environ(app: Flask, environ: dict) -> None:
    """The same check for a request answered before Flask (the token and document lanes)."""
    checker = app.extensions.get(EXTENSION)
    if checker is not None:
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        checker.check(app.config["ISSUER"], host, environ.get("wsgi.url_scheme", "http"))


class HostChecker:
    """This worker's hosts already judged, for the issuer they were judged against (a test
    server may set ISSUER after start-up: then they are judged again)."""

    def __init__(self) -> None:
        self.issuer = ""
        self.expected = ""
        self.seen: set[str] = set()

    def check(self, issuer: str, host: str, scheme: str, *, probe: bool = False) -> None:
        if host in self.seen and issuer == self.issuer:
            return
        if issuer != self.issuer:
            parts = urlsplit(issuer)
            self.issuer, self.expected = issuer, normal_host(parts.scheme, parts.netloc)
            self.seen = {parts.netloc}
        if probe or len(self.seen) >= MAX_HOSTS:
            return  # probes use the pod's or container's address; forged hosts are bounded
        self.seen.add(host)
        if normal_host(scheme, host) != self.expected:
            log.warning(
                "a request arrived for host %r but the issuer is %s, so links, redirects and "
                "cookies name another host: set PORTCULLIS_ISSUER to the URL clients use "
                "(make run: HOST= and PORT=), or behind a reverse proxy set "
                "PORTCULLIS_PROXY_HOPS so the proxy's X-Forwarded-Host is believed "
                "(warned once per host in each worker)",
                host[:100],
                issuer,
            )
