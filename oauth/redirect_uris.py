"""Redirect URI rules: what may be registered, and how a request's URI matches a registered one."""

from __future__ import annotations

from urllib.parse import urlsplit

# Schemes that run code, read local data or are no redirect target at all.
FORBIDDEN_SCHEMES = {
    "javascript", "data", "file", "vbscript", "about", "blob", "view-source", "jar", "ws",
    "wss", "ftp", "mailto", "tel", "filesystem", "chrome", "resource",
}  # fmt: skip
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def redirect_uri_problem(uri: str) -> str | None:
    """Why ``uri`` may not be registered as a redirect URI, or None when it may.

    Absolute, no fragment, no dangerous scheme, ``http`` only for loopback (RFC 8252),
    private-use schemes (``com.example.app:/cb``) allowed for native apps.
    """
    problem = _text_problem(uri)
    if problem:
        return problem
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"redirect URI {uri!r} is not a valid URI"
    scheme = parts.scheme.lower()
    if not scheme:
        return f"redirect URI {uri!r} must be absolute"
    if scheme in FORBIDDEN_SCHEMES:
        return f"redirect URI scheme {scheme!r} is not allowed"
    if "#" in uri:
        return f"redirect URI {uri!r} must not contain a fragment"
    if scheme in ("http", "https"):
        return _web_problem(uri, parts)
    if "." not in scheme and not parts.netloc and not parts.path:
        return f"redirect URI {uri!r} is not a valid URI"
    return None


def _text_problem(uri) -> str | None:
    if not isinstance(uri, str) or not uri or uri != uri.strip():
        return "redirect URI must be a non-empty string without surrounding spaces"
    if len(uri) > 2048:
        return "redirect URI is longer than 2048 characters"
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in uri):
        return f"redirect URI {uri!r} contains spaces or control characters"
    return None


def _web_problem(uri: str, parts) -> str | None:
    if not parts.hostname:
        return f"redirect URI {uri!r} has no host"
    if "*" in parts.netloc:
        return f"redirect URI {uri!r} must not contain wildcards"
    if parts.scheme.lower() == "http" and parts.hostname not in LOOPBACK_HOSTS:
        return (
            f"redirect URI {uri!r}: http is allowed only for loopback (127.0.0.1, [::1], localhost)"
        )
    return None


def is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """Exact string match, except that a loopback URI matches on any port (RFC 8252 §7.3)."""
    if registered == requested:
        return True
    if not (is_loopback(registered) and is_loopback(requested)):
        return False
    try:
        a, b = urlsplit(registered), urlsplit(requested)
        a.port, b.port  # noqa: B018  # raises ValueError for a malformed port
    except ValueError:
        return False
    return (a.hostname, a.path, a.query) == (b.hostname, b.path, b.query) and (
        a.username,
        a.password,
    ) == (b.username, b.password)
