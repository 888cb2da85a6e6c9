"""Portcullis application factory: ``flask`` finds it here, gunicorn runs ``app:create_app()``."""

from __future__ import annotations

import os

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from oauth import api, audit, cli, config, ratelimit, web
from oauth.accounts import backchannel, login, mail, passwords
from oauth.cli import startup as cli_startup
from oauth.plugins import host as plugin_host
from oauth.protocol import server
from oauth.ratelimit import passwords as password_limits
from oauth.registry import cache as registry_cache
from oauth.storage import db
from oauth.storage.migrations import migrate
from oauth.tokens import keys
from oauth.web import headers, instruments, token_lane


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application in named steps; a configuration error stops with one line.

    ``flask --help`` (``flask`` alone, ``flask CMD --help``) only needs the commands: the
    instance is left untouched (no database file, no secret key) and a command that really
    runs finishes the set-up first (``oauth/cli/startup.py``).
    """
    app = Flask(
        __name__,
        instance_path=os.environ.get("PORTCULLIS_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    help_only = cli_startup.only_help_requested()
    try:
        setup_config(app, test_config)
    except config.ConfigError as error:
        config.exit_with(error)
    if help_only:
        setup_cli(app)
        cli_startup.before_commands(app, lambda: finish_setup(app))
    else:
        finish_setup(app)
        setup_cli(app)
    return app


def finish_setup(app: Flask) -> None:
    """Everything after the configuration: the instance folder and secret key, storage,
    plugins, security, the protocol, the web."""
    try:
        config.prepare_instance(app)
        setup_storage(app)
        setup_plugins(app)
        setup_security(app)
        setup_protocol(app)
    except config.ConfigError as error:
        _close_database(app)
        config.exit_with(error)
    setup_web(app)


def setup_config(app: Flask, test_config: dict | None) -> None:
    """Defaults, instance/config.py, PORTCULLIS_* variables, test_config; checked; logging,
    request ids, the request log line and metrics (``web/instruments.py``). The instance
    folder and the secret key come with ``finish_setup``."""
    config.load_config(app, test_config, prepare=False)
    instruments.init_app(app)


def setup_storage(app: Flask) -> None:
    """This app's database (pooled, checked once) and its schema (AUTO_MIGRATE)."""
    db.init_app(app)
    if app.config["AUTO_MIGRATE"]:
        # In the app's context: a data migration may need its settings (0007: the KEK).
        with app.app_context():
            app.extensions[db.STARTUP_MIGRATIONS] = migrate(app.extensions[db.EXTENSION])


def setup_plugins(app: Flask) -> None:
    """Load and check every plugin; its registered scopes."""
    plugin_host.init_app(app)


def setup_security(app: Flask) -> None:
    """Browser sessions, CSRF on every form, password hashing, rate limits, security headers."""
    login.init_app(app)
    backchannel.init_app(app)  # retries of back-channel logout deliveries on later requests
    app.extensions["portcullis.csrf"] = CSRFProtect(app)
    passwords.init_app(app)
    ratelimit.init_app(app)
    password_limits.init_app(app)
    app.after_request(headers.add_security_headers)
    hops = int(app.config["PROXY_HOPS"])
    if hops > 0:  # only then are X-Forwarded-* believed (rate limits, audit IPs, https)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def setup_protocol(app: Flask) -> None:
    """Signing keys (a current one always exists), the registry cache, the Authlib server;
    the audit spool (after the plugins: their ``on_event`` hears of what it recovers)."""
    audit.init_app(app)
    keys.init_app(app)
    registry_cache.init_app(app)
    server.init_app(app)


def setup_web(app: Flask) -> None:
    """Every blueprint, the error pages, the navigation (templates: instance/templates/ first),
    the management REST API, and this worker's mail sender."""
    web.register_blueprints(app)
    token_lane.init_app(app, app.extensions[instruments.EXTENSION])
    api.init_app(app)
    mail.init_app(app)


def setup_cli(app: Flask) -> None:
    """The ``flask`` command groups."""
    cli.init_app(app)


def _close_database(app: Flask) -> None:
    database = app.extensions.get(db.EXTENSION)
    if database is not None:
        getattr(database, "close_all", database.close)()
