"""Portcullis: a self-hosted OAuth 2.1 and OpenID Connect authorization server.

Plugins import what they need from here::

    from oauth import hookimpl, TokenDenied
"""

from oauth.plugins.hookspecs import (
    DeletionDenied,
    SignupDenied,
    TokenContext,
    TokenDenied,
    hookimpl,
)

__version__ = "0.1.0"
__all__ = ["DeletionDenied", "SignupDenied", "TokenContext", "TokenDenied", "hookimpl"]
