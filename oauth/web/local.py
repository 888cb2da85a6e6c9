"""Who counts as "this machine" for ``/metrics`` and the details of ``/healthz``.

A loopback peer address alone is not enough: with ``PROXY_HOPS=0`` behind a reverse proxy on
the same host, every caller arrives from 127.0.0.1. So a request that carries a forwarding
header while no proxy is configured is never local (a proxy adds one; a local script does
not). With ``PROXY_HOPS`` set, ProxyFix has already put the real client's address in
``remote_addr``.
"""

from __future__ import annotations

import ipaddress

from flask import current_app, request

FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def is_local_caller() -> bool:
    if not current_app.config["PROXY_HOPS"] and any(
        name in request.headers for name in FORWARDING_HEADERS
    ):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
