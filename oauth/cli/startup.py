"""How the ``flask`` command line starts the app: ``flask --help`` touches nothing.

Flask builds the whole app to list its commands, so ``flask --help`` (or ``flask`` alone, or
``flask init-db --help``) used to create the database file, migrate it and write the instance
secret key. ``only_help_requested`` tells ``create_app`` that this process will only print
help; the app then skips everything that touches the instance, and ``before_commands`` makes
any command that really runs finish the set-up first (so a false guess costs nothing).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask, current_app, has_app_context
from flask.cli import ScriptInfo

# The options of ``flask`` itself that take a value (``flask --app app --help``).
ROOT_OPTIONS_WITH_VALUE = ("-A", "--app", "-e", "--env-file")
HELP = "--help"
PENDING_SETUP = "portcullis.pending_setup"
WRAPPED = "_portcullis_after_setup"


def only_help_requested(argv: list[str] | None = None) -> bool:
    """True when this is the ``flask`` command line and it will only print help: ``--help``
    anywhere before ``--``, or no command at all."""
    context = click.get_current_context(silent=True)
    if context is None or not isinstance(context.find_root().obj, ScriptInfo):
        return False  # gunicorn, tests, a script: always the whole app
    argv = sys.argv if argv is None else argv
    if not argv or not _is_flask_program(argv[0]):
        return False  # a FlaskGroup inside some other program: we cannot read its arguments
    return _help_only(argv[1:])


def _is_flask_program(program: str) -> bool:
    path = Path(program)
    return path.name == "flask" or (path.name == "__main__.py" and path.parent.name == "flask")


def _help_only(args: list[str]) -> bool:
    command = None
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            break
        if token == HELP:
            return True
        if command is None and token in ROOT_OPTIONS_WITH_VALUE:
            index += 1  # its value
        elif command is None and not token.startswith("-"):
            command = token
    return command is None


def before_commands(app: Flask, setup: Callable[[], None]) -> None:
    """Run ``setup`` (once) before any of the app's commands does its work. Click answers
    ``--help`` before a command's callback runs, so help alone never calls it. The commands
    are shared objects: their callbacks look the set-up up in the current app."""
    app.extensions[PENDING_SETUP] = setup
    _wrap_group(app.cli)


def finish_pending_setup() -> None:
    """The current app's deferred set-up, if any is still pending."""
    if has_app_context():
        setup = current_app.extensions.pop(PENDING_SETUP, None)
        if setup is not None:
            setup()


def _wrap_group(group: click.Group) -> None:
    for command in group.commands.values():
        if isinstance(command, click.Group):
            _wrap_group(command)
        elif command.callback is not None and not getattr(command.callback, WRAPPED, False):
            command.callback = _after_setup(command.callback)


def _after_setup(callback: Callable) -> Callable:
    @functools.wraps(callback)
    def run(*args, **kwargs):
        finish_pending_setup()
        return callback(*args, **kwargs)

    setattr(run, WRAPPED, True)
    return run
