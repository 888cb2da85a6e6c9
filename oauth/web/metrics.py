"""``GET /metrics``: Prometheus text (``oauth/metrics.py`` defines and adds up the metrics).

Loopback callers (``web/local.py``: not a proxied request) are served; others present
``Authorization: Bearer <PORTCULLIS_METRICS_TOKEN>`` (compared in constant time). Anyone
else gets 401 (no credentials) or 403, with no data.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

from oauth import metrics
from oauth.web.local import is_local_caller

bp = Blueprint("metrics", __name__)


def _refusal() -> Response | None:
    if is_local_caller():
        return None
    expected = current_app.config["METRICS_TOKEN"]
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if not header or scheme.lower() != "bearer":
        response = Response("Metrics need a bearer token.\n", 401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not expected or not hmac.compare_digest(
        presented.strip().encode("utf-8", "replace"), expected.encode()
    ):
        return Response("Not allowed.\n", 403, mimetype="text/plain")
    return None


@bp.route("/metrics")
def scrape():
    refusal = _refusal()
    if refusal is not None:
        return refusal
    response = Response(metrics.render(), mimetype=None)
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response
