"""The web layer: one module per blueprint (auth, consent, settings, admin, protocol,
wellknown, health, errors) and the forms they share."""

from __future__ import annotations

from flask import Flask
from flask_login import current_user

from oauth.web import admin, auth, consent, errors, health, protocol, settings, wellknown


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health.bp)
    app.register_blueprint(wellknown.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(consent.bp)
    app.register_blueprint(protocol.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(admin.bp)
    # Protocol endpoints authenticate clients, not browsers: no CSRF tokens there.
    app.extensions["portcullis.csrf"].exempt(protocol.bp)
    # A form POST to /oauth/authorize (OIDC Core §3.1.2.1) comes from the client's page, as
    # a GET does: it changes nothing by itself; the consent decision keeps its CSRF check.
    app.extensions["portcullis.csrf"].exempt(consent.authorize)
    errors.register(app)

    @app.context_processor
    def navigation():
        return {"nav_links": lambda: nav_links(app)}


# (endpoint, label, admin only): shown when the endpoint exists, so later areas just appear.
NAV = [
    ("settings.apps", "Apps", False),
    ("settings.profile", "Profile", False),
    ("settings.security", "Security", False),
    ("admin.index", "Admin", True),
]


def nav_links(app: Flask) -> list[tuple[str, str]]:
    return [
        (endpoint, label)
        for endpoint, label, admin_only in NAV
        if endpoint in app.view_functions and (not admin_only or current_user.is_admin)
    ]
