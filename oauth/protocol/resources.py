"""RFC 8707 resource indicators for user tokens: which audiences a user token may have.

Only a registered API (``registry/apis``) or ``DEFAULT_AUDIENCE`` is a user-token audience:
anything else, the issuer URL included unless it is registered, is ``invalid_target``, at
the authorization endpoint and at the token endpoint alike.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app

from oauth.registry import apis

MAX_RESOURCE_LENGTH = 2048


def default_audience() -> str:
    return current_app.config["DEFAULT_AUDIENCE"]


def audience_of(resource: str | None) -> str:
    """The ``aud`` a request for ``resource`` (None: none asked for) gets."""
    return resource or default_audience()


def is_user_audience(audience: str) -> bool:
    """Whether a user token may be issued for ``audience``, today."""
    return audience == default_audience() or apis.cached_api(audience) is not None


def resource_problem(resource: str) -> str | None:
    """Why ``resource`` cannot be asked for at the authorization endpoint, or None."""
    if resource == default_audience():
        return None
    if len(resource) > MAX_RESOURCE_LENGTH:
        return f"resource is longer than {MAX_RESOURCE_LENGTH} characters."
    try:
        parts = urlsplit(resource)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if parts is None or not parts.scheme or parts.fragment or "#" in resource:
        return "resource must be an absolute URI without a fragment."
    if not is_user_audience(resource):
        return "resource is not an API registered with this server."
    return None


def api_name(audience: str) -> str | None:
    """The registered name of the API ``audience``, for the consent page."""
    api = apis.cached_api(audience)
    return api.name if api is not None else None
