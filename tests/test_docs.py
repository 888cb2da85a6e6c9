"""The documentation is checked against the code (Datasette style), so it cannot rot quietly.

- docs/plugins.md documents every hook of ``PortcullisHookspecs`` with its exact signature,
  and no hook that does not exist; its examples implement real hooks with real arguments.
- The README's configuration table lists every setting the code reads, only real ones, and
  the defaults config.py really has.
- Every ``flask ...`` command shown in README.md or docs/plugins.md exists with the options
  shown, and every command the app has is shown in the README.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex

import click
import pytest
from flask import Flask
from flask.cli import routes_command, run_command, shell_command

from oauth.config import PROJECT_ROOT, defaults
from oauth.plugins.hookspecs import (
    ID_TOKEN_PROTECTED_CLAIMS,
    PROTECTED_CLAIMS,
    PortcullisHookspecs,
)

README = PROJECT_ROOT / "README.md"
PLUGINS_DOC = PROJECT_ROOT / "docs" / "plugins.md"
OPERATIONS_DOC = PROJECT_ROOT / "docs" / "operations.md"
# Flask and Flask-WTF settings that config.py pins to safe values. They are the frameworks'
# own settings (documented by Flask and Flask-WTF), not Portcullis features, so the README
# does not offer them as knobs.
FRAMEWORK_SETTINGS = {"SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "WTF_CSRF_TIME_LIMIT"}

# The commands Flask itself adds to `flask` (not part of app.cli).
FLASK_BUILTIN_COMMANDS = {c.name: c for c in (run_command, shell_command, routes_command)}


def section(text: str, heading: str) -> str:
    """The body of the Markdown section ``heading`` (up to the next heading of its level)."""
    level = heading.split(" ", 1)[0]
    match = re.search(
        rf"^{re.escape(heading)}[ \t]*\n(.*?)(?=^{level} |\Z)", text, flags=re.M | re.S
    )
    assert match, f"no {heading!r} section"
    return match.group(1)


# --- plugin hooks ---------------------------------------------------------------------------


def hook_specs() -> dict[str, list[str]]:
    """Hook name -> argument names in order, without ``self``."""
    return {
        name: [p for p in inspect.signature(function).parameters if p != "self"]
        for name, function in inspect.getmembers(PortcullisHookspecs, inspect.isfunction)
        if not name.startswith("_")
    }


def documented_hooks() -> dict[str, str]:
    """Hook name (from its ``### `name``` heading under ``## Hooks``) -> its section text."""
    hooks = section(PLUGINS_DOC.read_text(), "## Hooks")
    parts = re.split(r"^### (.+)$", hooks, flags=re.M)
    documented = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        name = heading.strip().strip("`")
        assert name not in documented, f"hook {name} is documented twice"
        documented[name] = body
    return documented


def test_every_hook_is_documented():
    missing = sorted(set(hook_specs()) - set(documented_hooks()))
    assert not missing, f"hooks without a '### `name`' section in docs/plugins.md: {missing}"


def test_no_documented_hook_is_missing_from_the_specs():
    unknown = sorted(set(documented_hooks()) - set(hook_specs()))
    assert not unknown, f"docs/plugins.md documents hooks that do not exist: {unknown}"


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_hook_is_documented_with_its_signature(hook):
    body = documented_hooks().get(hook)
    if body is None:
        pytest.skip("undocumented (reported by test_every_hook_is_documented)")
    expected = f"{hook}({', '.join(hook_specs()[hook])})"
    shown = re.findall(rf"`({re.escape(hook)}\([^)]*\))", body)
    assert shown, f"the {hook} section shows no `{expected}` signature"
    assert shown[0] == expected, f"the {hook} section shows `{shown[0]}`, the spec is {expected}"


def test_the_protected_claims_are_the_ones_the_guard_enforces():
    text = " ".join(PLUGINS_DOC.read_text().split())
    access = " ".join(PROTECTED_CLAIMS)
    id_only = " ".join(c for c in ID_TOKEN_PROTECTED_CLAIMS if c not in PROTECTED_CLAIMS)
    assert f"`{access}` are protected, and in ID tokens also `{id_only}`" in text


def test_plugin_examples_implement_real_hooks():
    """Every ``@hookimpl`` in the docs names a hook and only arguments its spec has."""
    specs = hook_specs()
    problems = []
    for path in (PLUGINS_DOC, README):
        pattern = r"@hookimpl(?:\([^)]*\))?\s*\n\s*def (\w+)\(([^)]*)\)"
        for name, arguments in re.findall(pattern, path.read_text()):
            args = [a.split(":")[0].split("=")[0].strip() for a in arguments.split(",")]
            args = [a for a in args if a]
            if name not in specs:
                problems.append(f"{path.name}: example implements unknown hook {name}")
            elif not set(args) <= set(specs[name]):
                problems.append(f"{path.name}: {name}({', '.join(args)}) vs spec {specs[name]}")
    assert not problems, "\n".join(problems)


# --- settings -------------------------------------------------------------------------------


def documented_settings() -> dict[str, str]:
    """Setting name (without the prefix) -> the default cell of its README table row."""
    rows = [
        line
        for line in section(README.read_text(), "## Configuration").splitlines()
        if line.startswith("|")
    ]
    documented = {}
    for row in rows[2:]:  # after the header and the |---| line
        cells = [cell.strip() for cell in row.strip().strip("|").split(" | ")]
        names = re.findall(r"`PORTCULLIS_([A-Z0-9_]+)`", cells[0])
        assert len(names) == 1, f"one `PORTCULLIS_NAME` per row, so its default is checked: {row}"
        assert names[0] not in documented, f"PORTCULLIS_{names[0]} is documented twice"
        documented[names[0]] = cells[1]
    return documented


def settings_read_outside_config() -> set[str]:
    """Settings the code reads with a fallback of its own (``config.get("NAME", ...)``), or
    straight from the environment (``os.environ.get("PORTCULLIS_NAME")``)."""
    names = set()
    for path in [PROJECT_ROOT / "app.py", *sorted((PROJECT_ROOT / "oauth").rglob("*.py"))]:
        source = path.read_text()
        names.update(re.findall(r"config\.get\(\s*\"([A-Z][A-Z0-9_]*)\"", source))
        names.update(re.findall(r"environ(?:\.get\(|\[)\s*\"PORTCULLIS_([A-Z0-9_]+)\"", source))
    return names


@pytest.fixture
def config_defaults(tmp_path):
    return defaults(Flask(__name__, instance_path=str(tmp_path / "instance")))


def test_every_setting_is_in_the_readme_table(config_defaults):
    assert set(config_defaults) >= FRAMEWORK_SETTINGS, "a stale FRAMEWORK_SETTINGS entry"
    settings = (set(config_defaults) | settings_read_outside_config()) - FRAMEWORK_SETTINGS
    missing = sorted(settings - set(documented_settings()))
    assert not missing, f"settings missing from the README configuration table: {missing}"


def test_every_readme_setting_exists(config_defaults):
    settings = set(config_defaults) | settings_read_outside_config()
    unknown = sorted(set(documented_settings()) - settings)
    assert not unknown, f"the README table documents settings the code does not have: {unknown}"


def test_readme_defaults_match_config(config_defaults, tmp_path):
    """A default cell that is one literal (`3600`, `true`...) must be config.py's default;
    prose (generated keys...) is not checked, ``none`` means None."""
    placeholders = {"<instance>": str(tmp_path / "instance"), "<project>": str(PROJECT_ROOT)}
    problems = []
    for name, cell in documented_settings().items():
        if name not in config_defaults:
            continue
        value = config_defaults[name]
        literal = re.fullmatch(r"`([^`]*)`", cell)
        if literal:
            shown = literal.group(1)
            for placeholder, real in placeholders.items():
                shown = shown.replace(placeholder, real)
            if isinstance(value, bool):
                expected = "true" if value else "false"
            elif isinstance(value, list | dict):
                expected = json.dumps(value)
            else:
                expected = str(value)
            if shown != expected:
                problems.append(f"PORTCULLIS_{name}: README says {cell}, config.py {value!r}")
        elif cell == "none" and value is not None:
            problems.append(f"PORTCULLIS_{name}: README says none, config.py {value!r}")
    assert not problems, "\n".join(problems)


# --- CLI ------------------------------------------------------------------------------------

FLASK_COMMAND = re.compile(r"^(?:\$\s+)?(?:\S*/)?flask\s+(\S.*)$")
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```[ \t]*$", flags=re.M | re.S)


def shown_commands(text: str) -> list[str]:
    """Every ``flask ...`` command in the code blocks and inline code of a Markdown text,
    without the ``flask`` (a line may hold several, separated by `` | ``)."""
    lines = [line for block in FENCE.findall(text) for line in block.splitlines()]
    lines += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", FENCE.sub("", text))]
    commands = []
    for line in lines:
        line = re.sub(r"\s+#.*", "", line)  # a trailing comment
        for part in line.split(" | "):
            match = FLASK_COMMAND.match(part.strip())
            if match:
                commands.append(match.group(1))
    return commands


def words_of(command: str) -> list[str]:
    """The words of a usage line, without its brackets and ``...``: ``[--scope S]...``."""
    words = []
    for word in shlex.split(command):
        word = word.strip("[]").removesuffix("...").strip("[]")
        if word:
            words.append(word)
    return words


def is_placeholder(word: str) -> bool:
    return word.isupper()


def resolve(app: Flask, words: list[str]) -> tuple[list[str], click.Command | None]:
    """Walk ``words`` down ``app.cli`` (consuming them): the command path and its command,
    or ``None`` when the last name of the path does not exist."""
    ctx = click.Context(app.cli, info_name="flask")
    current: click.Command = app.cli
    path: list[str] = []
    while isinstance(current, click.Group) and words and not words[0].startswith("-"):
        name = words.pop(0)
        path.append(name)
        found = current.get_command(ctx, name)
        if found is None and current is app.cli:
            found = FLASK_BUILTIN_COMMANDS.get(name)
        if found is None:
            return path, None
        current = found
    return path, current


def check_choice(where: str, param: click.Parameter, value: str) -> list[str]:
    """A literal value (not a ``PLACEHOLDER``) shown for a choice must be one of its choices."""
    if not isinstance(param.type, click.Choice) or not value or is_placeholder(value):
        return []
    if value in param.type.choices:
        return []
    return [f"{where}: {value!r} is not one of {list(param.type.choices)}"]


def check_words(where: str, command: click.Command, words: list[str]) -> list[str]:
    """The options shown exist (with valid choices), and no more arguments than it takes."""
    params = command.get_params(click.Context(command))
    options = {
        opt: p
        for p in params
        if isinstance(p, click.Option)
        for opt in (*p.opts, *p.secondary_opts)
    }
    arguments = [p for p in params if isinstance(p, click.Argument)]
    problems, positional = [], []
    while words:
        word = words.pop(0)
        if not (word.startswith("-") and len(word) > 1):
            positional.append(word)
            continue
        name, _, value = word.partition("=")
        option = options.get(name)
        if option is None:
            problems.append(f"{where} has no option {name}")
        elif not (option.is_flag or option.count):
            if not value and words and not words[0].startswith("-"):
                value = words.pop(0)
            problems += check_choice(f"{where} {name}", option, value)
    room = sum(a.nargs for a in arguments)
    if len(positional) > room and all(a.nargs != -1 for a in arguments):
        problems.append(f"{where} takes {room} argument(s), the docs show {positional}")
    for argument, value in zip(arguments, positional, strict=False):
        problems += check_choice(where, argument, value)
    return problems


def check_command(app: Flask, command: str) -> tuple[tuple[str, ...], list[str]]:
    """Resolve ``flask COMMAND`` through ``app.cli``: its command path, and what is wrong."""
    words = words_of(command)
    path, found = resolve(app, words)
    where = f"`flask {' '.join(path)}`"
    if found is None:
        return tuple(path), [f"{where} does not exist"]
    if isinstance(found, click.Group):
        return tuple(path), [f"{where} needs a subcommand, not {words}"] if words else []
    return tuple(path), check_words(where, found, words)


def leaf_commands(group: click.Group, ctx: click.Context, prefix=()) -> set[tuple[str, ...]]:
    paths = set()
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            paths |= leaf_commands(command, ctx, (*prefix, name))
        else:
            paths.add((*prefix, name))
    return paths


@pytest.fixture
def database_url(tmp_path):
    """SQLite only: the CLI's shape does not depend on the database."""
    return f"sqlite:///{tmp_path / 'portcullis-docs.db'}"


def test_readme_shows_cli_commands():
    """The parser still finds the README's commands (a guard against it finding none)."""
    assert len(shown_commands(README.read_text())) > 20


@pytest.mark.parametrize("doc", [README, PLUGINS_DOC, OPERATIONS_DOC], ids=lambda p: p.name)
def test_every_command_shown_exists(make_app, doc):
    app = make_app()
    problems = []
    for command in shown_commands(doc.read_text()):
        path, wrong = check_command(app, command)
        problems += [f"{doc.name}: flask {command}: {problem}" for problem in wrong]
    assert not problems, "\n".join(problems)


def test_the_operations_guide_shows_its_commands():
    shown = shown_commands(OPERATIONS_DOC.read_text())
    for command in ("backup", "init-db", "keys add", "keys rotate", "keys rewrap"):
        assert any(c.startswith(command) for c in shown), command
    assert any(c.startswith("clients rotate-secret") for c in shown)


def test_every_command_is_in_the_readme(make_app):
    app = make_app()
    shown = {check_command(app, command)[0] for command in shown_commands(README.read_text())}
    ctx = click.Context(app.cli, info_name="flask")
    missing = sorted(" ".join(path) for path in leaf_commands(app.cli, ctx) - shown)
    assert not missing, f"commands the README never shows: {missing}"
