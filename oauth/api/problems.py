"""RFC 9457 problem details, the one error shape of the management API, and ETags."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, current_app, request

PROBLEM_TYPE = "urn:portcullis:problem:"  # + a slug; docs/management-api.md lists them
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
SLUGS = {
    400: "bad-request",
    401: "invalid-token",
    403: "insufficient-scope",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    412: "precondition-failed",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
    500: "server-error",
}


class Problem(Exception):
    """An error answer; ``detail`` is safe to show (it never holds a secret)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + SLUGS.get(problem.status, "error"),
        "title": TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    response = current_app.response_class(
        json.dumps(body), status=problem.status, mimetype="application/problem+json"
    )
    response.headers["Cache-Control"] = "no-store"
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def not_found(what: str) -> Problem:
    return Problem(404, f"No {what} with this id.")


# --- ETags (RFC 9110 §8.8.3, §13.1.1) ----------------------------------------------------


def etag_of(representation: dict[str, Any]) -> str:
    """A strong ETag of a resource's JSON representation: it changes with any field."""
    text = json.dumps(representation, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def check_if_match(current: str) -> None:
    """412 when the request's ``If-Match`` names neither ``*`` nor the current ETag."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    tags = [tag.strip() for tag in header.split(",")]
    if "*" in tags:
        return
    if current not in tags:  # strong comparison: a weak tag never matches
        raise Problem(
            412, "The resource changed since you read it (If-Match): read it again and retry."
        )


def refused(error: Exception, status: int = 422) -> Problem:
    """A service's refusal (its message is safe to show); "already exists" is a conflict."""
    message = str(error)
    if "already exists" in message:
        status = 409
    return Problem(status, message)
