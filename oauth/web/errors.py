"""HTML error pages for the browser-facing parts (protocol endpoints answer JSON themselves)."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from oauth.protocol.responses import JSON_PATHS, oauth_error
from oauth.ratelimit.requests import TooManyRequests

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "There is nothing here.",
    405: "That method is not allowed here.",
    429: "Too many attempts. Please wait a moment and try again.",
    500: "Something went wrong on our side.",
}


def register(app: Flask) -> None:
    @app.errorhandler(TooManyRequests)
    def too_many_requests(error: TooManyRequests):
        page = render_template(
            "error.html", code=429, title="Too Many Requests", message=MESSAGES[429]
        )
        return page, 429, {"Retry-After": str(error.retry_after)}

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_template(
            "error.html",
            code=400,
            title="Form expired",
            message="The form was missing its security token or it expired. Go back, reload the page and try again.",
        ), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        # RFC 9110 §15.5.6: a 405 names the methods the resource does allow.
        headers = {k: v for k, v in error.get_headers() if k == "Allow"}
        if request.path.startswith(JSON_PATHS):
            error_code = {405: "invalid_request", 429: "slow_down"}.get(code, "invalid_request")
            if code >= 500:
                error_code = "server_error"
            return oauth_error(code, error_code, MESSAGES.get(code, error.name), headers)
        message = MESSAGES.get(code, error.description)
        page = render_template("error.html", code=code, title=error.name, message=message)
        return page, code, headers
