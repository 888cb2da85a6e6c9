"""What every ``flask`` command group shares."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import AppGroup

from oauth.registry.clients import get_client


def _argument_slots(params: list[click.Parameter]) -> float:
    """How many positional tokens the command takes (``inf`` with a ``nargs=-1`` argument)."""
    arguments = [p for p in params if isinstance(p, click.Argument)]
    if any(p.nargs < 0 for p in arguments):
        return float("inf")
    return sum(p.nargs for p in arguments)


def _option_values(params: list[click.Parameter]) -> dict[str, int]:
    """Every option name (``--help`` included) -> how many values follow it."""
    values = {}
    for param in params:
        if isinstance(param, click.Option):
            count = 0 if param.is_flag or param.count else max(param.nargs, 1)
            values.update(dict.fromkeys([*param.opts, *param.secondary_opts], count))
    return values


def _option_arity(token: str, values: dict[str, int], prefixes: set[str]) -> int | None:
    """How many of the next tokens are ``token``'s values when it is a real option, else None."""
    if token in values:
        return values[token]
    name, equals, _ = token.partition("=")
    if equals and values.get(name, 0) > 0:
        return 0  # --alg=ES256
    short = token[:2]
    if len(short) == 2 and short in values and short[1] not in prefixes:
        if values[short] > 0:
            return 0  # -oVALUE
        if all(token[0] + letter in values for letter in token[1:]):
            return 0  # -ab: two flags
    return None


def _positional_dashes(command: click.Command, ctx: click.Context, args: list[str]) -> list[str]:
    """``args`` with each unknown ``-token`` that fills a free argument slot made positional.

    DESIGN.md: "An argument that starts with ``-`` (a key id may) is still an argument:
    ``flask keys revoke -AbC`` works." Click alone reads ``-AbC`` as an unknown option. Here a
    token is an option only when it names one of the command's options (``--alg``, ``--alg=x``,
    ``--help``; an option's values are taken as they come, ``--alg -X`` included). The other
    tokens that start with ``-`` are arguments as long as the command has arguments left to
    fill (after the plain ones); beyond that they stay where they are, so click still says
    "No such option: --bogus". The positional tokens keep their order, behind ``--``.
    """
    params = command.get_params(ctx)
    slots = _argument_slots(params)
    if not slots:
        return args
    values = _option_values(params)
    prefixes = {name[:1] for name in values} | {"-"}
    options: list[str] = []
    positional: list[tuple[str, bool]] = []  # (token, starts like an option)
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token == "--":
            positional += [(rest, False) for rest in args[index:]]
            break
        arity = _option_arity(token, values, prefixes)
        if arity is None:
            positional.append((token, len(token) > 1 and token[:1] in prefixes))
        else:
            options += [token, *args[index : index + arity]]
            index += arity
    free = slots - sum(1 for _, dash in positional if not dash)
    if free <= 0 or not any(dash for _, dash in positional):
        return args  # nothing to reinterpret: click parses (and reports) as usual
    arguments: list[str] = []
    for token, dash in positional:
        if dash and free <= 0:
            options.append(token)  # one too many: click reports it as an unknown option
        else:
            free -= dash
            arguments.append(token)
    return [*options, "--", *arguments]


class DashArgumentCommand(click.Command):
    """A command whose arguments may start with ``-`` (see ``_positional_dashes``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _positional_dashes(self, ctx, args))


class OneLineErrorGroup(AppGroup):
    """Bad arguments are one line on stderr and exit status 1, like every other CLI error.

    Click's own usage errors (a bad ``--grant-type`` choice, a missing ``--name``) print the
    usage and exit 2; DESIGN.md promises one line and 1. Every command of the group is a
    ``DashArgumentCommand``: a key or client id that starts with ``-`` is still an argument.
    """

    command_class = DashArgumentCommand

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            raise click.ClickException(error.format_message()) from None


def yes_option(command):
    """``--yes``/``-y``: a destructive command does its work without asking."""
    return click.option(
        "--yes", "-y", "yes", is_flag=True, help="Do it without asking for confirmation."
    )(command)


def confirm(yes: bool, question: str) -> None:
    """Ask ``question`` (on stderr) before a destructive change, unless ``--yes`` was given.

    No answer but yes changes nothing: one line and exit status 1. Nothing is asked when stdin
    is not a terminal (a script, a pipe, cron): the command refuses at once instead of hanging
    or reading an answer meant for something else, and says to pass ``--yes``.
    """
    if yes:
        return
    stdin = sys.stdin  # click's test runner swaps it too
    if stdin is None or not stdin.isatty():
        raise click.ClickException(
            f"not confirmed (stdin is not a terminal): {question} Pass --yes to do it; "
            "nothing was changed."
        )
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:  # end of input or Ctrl-C
        agreed = False
    if not agreed:
        raise click.ClickException("aborted; nothing was changed.")


def client_or_fail(client_id: str):
    """The client with this id, or a one-line error."""
    client = get_client(client_id)
    if client is None:
        raise click.ClickException(f"no client with id {client_id}")
    return client
