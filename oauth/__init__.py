"""Portcullis: a self-hosted OAuth 2.1 and OpenID Connect authorization server."""

__version__ = "0.1.0"
