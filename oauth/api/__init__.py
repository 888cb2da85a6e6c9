"""The management REST API under ``/api/v1`` (issue 12): JSON in and out, RFC 9457 problem
details, ETags, cursor pages, and its OpenAPI 3.1 document. Callers are machine clients with
client-credentials tokens for the built-in API ``{ISSUER}/api/v1``; every call is audited
with the client as actor. One module per resource; ``framework.py`` is the route registry."""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from oauth.api import apis, audit_log, clients, consents, keys, users
from oauth.api.base import PREFIX, bp, registry
from oauth.api.problems import Problem, problem_response
from oauth.registry import management_api
from oauth.storage.db import connection
from oauth.storage.models import Api

log = logging.getLogger(__name__)
RESOURCES = (apis, audit_log, clients, consents, keys, users)  # each routes itself on import


def init_app(app: Flask) -> None:
    """Serve ``/api/v1`` (``MANAGEMENT_API``), CSRF-exempt (bearer tokens, never cookies),
    and make sure its built-in API exists."""
    if not app.config["MANAGEMENT_API"]:
        return
    app.register_blueprint(bp)
    app.extensions["portcullis.csrf"].exempt(bp)
    _problem_errors(app)
    with app.app_context(), connection():
        ensure_builtin_api()


def ensure_builtin_api() -> None:
    """Create the API ``{ISSUER}/api/v1`` with its scopes, or add the missing ones (in an
    app context). Before ``flask init-db`` (no schema yet) it does nothing."""
    if not Api.table_exists():
        log.warning("api table missing: run `flask init-db`")
        return
    management_api.ensure()


def _problem_errors(app: Flask) -> None:
    """Errors under /api/v1 (unknown paths, wrong methods) as problem details; the handler
    the web layer registered keeps answering everything else."""
    previous = app.error_handler_spec[None][None].get(HTTPException)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
            headers = {k: v for k, v in error.get_headers() if k == "Allow"}
            detail = error.description or error.name
            return problem_response(Problem(error.code or 500, detail, headers=headers))
        return previous(error) if previous else error


__all__ = ["RESOURCES", "ensure_builtin_api", "init_app", "registry"]
