"""Authlib endpoints for RFC 7009 revocation and RFC 7662 introspection (being written)."""

from __future__ import annotations


def register_endpoints(server) -> None:
    """Register the revocation and introspection endpoints on the AuthorizationServer."""
