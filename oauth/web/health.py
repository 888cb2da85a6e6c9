"""Health endpoints: ``/livez`` (process liveness, no I/O) and ``/healthz`` (each part).

``/healthz`` checks the database (a round trip that reads a table), the signing keys (a
current key that signs, this worker's key cache fresh: its age, never key material) and
mail (``accounts/mail.health``). 200 ``ok`` when the database and keys are fine, else 503
with ``failed`` naming the parts; failing mail is reported (``degraded``), not fatal: the
server keeps serving and retrying. Error text (driver messages, mail hosts) is shown to
callers on this machine only (``web/local.py``), never a secret or connection string.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from oauth.accounts import mail
from oauth.storage.db import database
from oauth.tokens import keys
from oauth.web.local import is_local_caller

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)
# Read from a table (not just ``SELECT 1``, which SQLite answers without its file).
ROUND_TRIP = 'SELECT COUNT(*) FROM "schema_migration"'


@bp.route("/livez")
def livez():
    """Liveness probe: ``200 ok`` (text/plain) whenever the worker can answer a request.

    It touches no database, key or plugin, so it is the cheapest route the server has: use it
    as a liveness probe (restart the process when it fails) and as the baseline of the load
    benchmark (``benchmarks/run.py``). ``/healthz`` is the readiness check with the database.
    """
    return Response("ok", status=200, mimetype="text/plain")


def _error(part: str, error: Exception) -> dict:
    log.warning("health check: %s unavailable: %s", part, type(error).__name__)
    return {"status": "error", "problem": f"{type(error).__name__}: {error}"[:300]}


def _database() -> dict:
    try:
        database.execute_sql(ROUND_TRIP).fetchone()
    except Exception as error:  # any driver failure means "not healthy"
        return _error("database", error)
    return {"status": "ok"}


def _keys() -> dict:
    try:
        return keys.health()
    except Exception as error:  # a key reload that fails (database, decryption)
        return _error("keys", error)


def _mail() -> dict:
    try:
        summary = mail.health()
    except Exception as error:
        return _error("mail", error)
    summary["problem"] = summary.pop("last_error", None)
    return summary


@bp.route("/healthz")
def healthz():
    database_part = _database()
    parts = {"database": database_part}
    if database_part["status"] == "ok":  # keys and mail are read from the database
        parts |= {"keys": _keys(), "mail": _mail()}
    failed = [n for n in ("database", "keys") if n in parts and parts[n]["status"] != "ok"]
    local = is_local_caller()
    body: dict = {"status": "unavailable" if failed else "ok"}
    for name, part in parts.items():
        problem = part.pop("problem", None)
        if problem and local:
            part["last_error" if name == "mail" else "error"] = problem
        body[name] = part
    # The shape earlier versions had: "database": "ok" or "error".
    body["database"] = database_part["status"]
    if local and "error" in database_part:
        body["database_error"] = database_part["error"]
    if failed:
        body["failed"] = failed
    if parts.get("mail", {}).get("status") not in (None, "ok"):
        body["degraded"] = ["mail"]
    return jsonify(body), 503 if failed else 200
