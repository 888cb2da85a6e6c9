"""Portcullis application factory: ``flask`` finds it here, gunicorn runs ``app:create_app()``."""

from __future__ import annotations

import logging
import os

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application: config -> db -> login/csrf -> plugins -> oauth server -> blueprints -> CLI."""
    from oauth import cli, config, ratelimit
    from oauth import web as views
    from oauth.accounts import login, passwords
    from oauth.plugins import host as plugins
    from oauth.protocol import server
    from oauth.registry import cache as registry
    from oauth.storage import db
    from oauth.storage.migrations import migrate
    from oauth.tokens import keys

    app = Flask(
        __name__,
        instance_path=os.environ.get("PORTCULLIS_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    try:
        config.load_config(app, test_config)
        db.init_app(app)
        if app.config["AUTO_MIGRATE"]:
            migrate(app.extensions["portcullis.database"])
        keys.init_app(app)
        plugins.init_app(app)
    except config.ConfigError as error:
        _close_database(app)
        config.exit_with(error)

    _setup_logging(app)
    login.init_app(app)
    _setup_csrf(app)
    ratelimit.init_app(app)
    passwords.init_app(app)
    registry.init_app(app)
    server.init_app(app)
    views.register_blueprints(app)
    cli.init_app(app)
    app.after_request(_security_headers)
    return app


def _security_headers(response):
    """No framing (clickjacking of the consent page), no MIME sniffing, no referrer leaks."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _close_database(app: Flask) -> None:
    database = app.extensions.get("portcullis.database")
    if database is not None:
        getattr(database, "close_all", database.close)()


def _setup_csrf(app: Flask) -> None:
    from flask_wtf.csrf import CSRFProtect

    csrf = CSRFProtect(app)
    app.extensions["portcullis.csrf"] = csrf


def _setup_logging(app: Flask) -> None:
    if not app.debug and not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
