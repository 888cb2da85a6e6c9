"""The management API's blueprint and route registry, and what every resource module
shares: lookups that answer 404, and which service errors are refusals (problem details)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from oauth.accounts.admin import UserAdminError
from oauth.accounts.users import AccountError
from oauth.api.framework import Registry
from oauth.api.openapi import document
from oauth.api.problems import Problem, not_found, problem_response
from oauth.api.schemas import PageQuery
from oauth.pagination import KeysetPage, keyset
from oauth.registry.apis import ApiError
from oauth.registry.client_rules import ClientError
from oauth.tokens.keys import KeyServiceError

log = logging.getLogger(__name__)
PREFIX = "/api/v1"
bp = Blueprint("management_api", __name__, url_prefix=PREFIX)
# A service refusing what it was asked (its message names why) is a 422 problem, from any
# operation; an operation that means another status raises ``refused(error, status)`` itself.
SERVICE_REFUSALS = (AccountError, ApiError, ClientError, KeyServiceError, UserAdminError)
registry = Registry(bp, PREFIX, refusals=SERVICE_REFUSALS)
T = TypeVar("T")


def found(value: T | None, what: str) -> T:
    if value is None:
        raise not_found(what)
    return value


def page(query, key, params: PageQuery, *, descending: bool = False) -> KeysetPage:
    try:
        return keyset(query, key, limit=params.limit, cursor=params.cursor, descending=descending)
    except ValueError:
        raise Problem(400, "The cursor is not one this API gave out.") from None


def listing(model: type[T], result: KeysetPage, represent: Callable[[Any], Any]) -> T:
    return model(data=[represent(row) for row in result.items], next_cursor=result.next_cursor)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document (no token needed: it holds no data)."""
    return jsonify(document(registry))


@bp.errorhandler(Exception)
def _failure(error: Exception):
    """Never an HTML page or a stack trace: a problem (the trace goes to the log)."""
    if isinstance(error, HTTPException):
        return problem_response(Problem(error.code or 500, error.description or error.name))
    log.exception("management API failure on %s %s", request.method, request.path)
    return problem_response(Problem(500, "The server failed; see its log."))
