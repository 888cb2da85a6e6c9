"""The security headers of every response, for the Flask app and for the token endpoint's
lean lane (``web/token_lane.py``), which answers without Flask."""

from __future__ import annotations

from flask import current_app

# Our pages load only our own CSS (no script at all); app logos are https images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' https: data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# No framing (clickjacking of the consent page), nothing but our own resources, no MIME
# sniffing, no referrer to other sites. same-origin, not no-referrer: nothing leaves for other
# sites (RFC 9700 4.2), and an https form post carries the Referer that Flask-WTF's https
# check requires (docs/decisions.md).
SECURITY_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000")


def security_headers(config) -> list[tuple[str, str]]:
    """Every response's headers; HSTS when the issuer is https (browsers stay on https)."""
    headers = list(SECURITY_HEADERS)
    if config["SESSION_COOKIE_SECURE"]:
        headers.append(HSTS)
    return headers


def add_security_headers(response):
    """after_request: the security headers (unless the view set its own); pages, which show
    personal data, are never cached."""
    for name, value in security_headers(current_app.config):
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
