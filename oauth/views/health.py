"""Liveness with a database round trip."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify

from ..db import database

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.route("/healthz")
def healthz():
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception as error:  # any driver failure means "not healthy"
        log.warning("health check: database unavailable: %s", type(error).__name__)
        return jsonify(status="unavailable", database="error"), 503
    return jsonify(status="ok", database="ok")
