"""Health endpoints: ``/livez`` (process liveness, no I/O) and ``/healthz`` (with a database round trip)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from oauth.accounts import mail
from oauth.storage.db import database

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1")


@bp.route("/livez")
def livez():
    """Liveness probe: ``200 ok`` (text/plain) whenever the worker can answer a request.

    It touches no database, key or plugin, so it is the cheapest route the server has: use it
    as a liveness probe (restart the process when it fails) and as the baseline of the load
    benchmark (``benchmarks/run.py``). ``/healthz`` is the readiness check with the database.
    """
    return Response("ok", status=200, mimetype="text/plain")


@bp.route("/healthz")
def healthz():
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception as error:  # any driver failure means "not healthy"
        log.warning("health check: database unavailable: %s", type(error).__name__)
        return jsonify(status="unavailable", database="error"), 503
    # Mail that fails is reported, not fatal: the server keeps serving (and retrying). The
    # server's own error text (mail host names...) is for callers on this machine only.
    summary = mail.health()
    if request.remote_addr not in LOOPBACK:
        summary.pop("last_error", None)
    return jsonify(status="ok", database="ok", mail=summary)
