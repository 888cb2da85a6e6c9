"""The web layer: one module per blueprint (auth, consent, settings, admin, protocol,
wellknown, health, metrics, errors) and the forms they share."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_login import current_user
from jinja2 import ChoiceLoader, FileSystemLoader

from oauth.web import (
    account,
    admin,
    auth,
    consent,
    errors,
    health,
    issuer_host,
    logout,
    metrics,
    mfa,
    passkeys,
    protocol,
    settings,
    wellknown,
)


def use_template_overrides(app: Flask) -> None:
    """A template in ``instance/templates/`` (``login.html``, ``mail/password_reset.txt``...)
    replaces the shipped one of the same name."""
    app.jinja_loader = ChoiceLoader(
        [FileSystemLoader(str(Path(app.instance_path) / "templates")), app.jinja_loader]
    )


def register_blueprints(app: Flask) -> None:
    use_template_overrides(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(wellknown.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(mfa.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(consent.bp)
    app.register_blueprint(protocol.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(passkeys.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(logout.bp)
    # Protocol endpoints authenticate clients, not browsers: no CSRF tokens there.
    app.extensions["portcullis.csrf"].exempt(protocol.bp)
    # Relying parties POST logout requests; our confirmation form checks its own CSRF token.
    app.extensions["portcullis.csrf"].exempt(logout.bp)
    # A form POST to /oauth/authorize (OIDC Core §3.1.2.1) comes from the client's page, as
    # a GET does: it changes nothing by itself; the consent decision keeps its CSRF check.
    app.extensions["portcullis.csrf"].exempt(consent.authorize)
    errors.register(app)
    issuer_host.init_app(app)

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
