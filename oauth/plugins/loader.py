"""Finding plugins: ``*.py`` files in ``PLUGINS_DIR``, installed ``portcullis`` entry points,
and the built-ins; each checked against the hookspecs before it is registered."""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from oauth.config import ConfigError
from oauth.plugins import hookspecs
from oauth.plugins.builtin import BUILTINS

IMPL_MARKER = f"{hookspecs.PROJECT}_impl"  # the attribute pluggy's HookimplMarker sets


@dataclass
class Found:
    name: str
    module: ModuleType
    source: str
    builtin: bool = False


def spec_arguments() -> dict[str, tuple[str, ...]]:
    """Every hook name and the argument names of its spec, in order."""
    return {
        name: tuple(inspect.signature(function).parameters)[1:]  # without self
        for name, function in vars(hookspecs.PortcullisHookspecs).items()
        if not name.startswith("_") and callable(function)
    }


def find(app) -> list[Found]:
    """Every plugin to load, in load order, the disabled ones left out."""
    disabled = set(app.config["DISABLED_PLUGINS"])
    found = []
    folder = Path(app.config["PLUGINS_DIR"])
    if folder.is_dir():
        for path in sorted(folder.glob("*.py")):
            if not path.stem.startswith("_") and path.stem not in disabled:
                found.append(Found(path.stem, _import_file(path), f"file {path}"))
    entries = importlib.metadata.entry_points(group=hookspecs.PROJECT)
    for entry in sorted(entries, key=lambda e: e.name):
        if entry.name not in disabled:
            found.append(_load_entry_point(entry))
    for name, module in BUILTINS.items():
        if name not in disabled and getattr(module, "enabled", lambda app: True)(app):
            found.append(Found(name, module, "built-in", builtin=True))
    for plugin in found:
        check_hook_names(plugin)
    return found


def _import_file(path: Path) -> ModuleType:
    module_name = f"portcullis_plugins.{path.stem}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"plugin file {path}: {type(error).__name__}: {error}") from None
    return module


def _load_entry_point(entry) -> Found:
    try:
        module = entry.load()
    except Exception as error:
        raise ConfigError(
            f"plugin {entry.name} (entry point {entry.value}): {type(error).__name__}: {error}"
        ) from None
    dist = getattr(entry, "dist", None)
    source = f"entry point {entry.value}" + (f" ({dist.name})" if dist else "")
    return Found(entry.name, module, source)


def _closest(word: str, candidates) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_hook_names(plugin: Found) -> None:
    """A misspelled hook or argument name stops start-up, naming the closest valid one."""
    specs = spec_arguments()
    for attribute in dir(plugin.module):
        # As pluggy looks: module globals may be proxies (flask's request) that raise on use.
        function = getattr(plugin.module, attribute, None)
        marker = getattr(function, IMPL_MARKER, None) if inspect.isroutine(function) else None
        if marker is None:
            continue
        hook = marker.get("specname") or attribute
        where = f"plugin {plugin.name} ({plugin.source})"
        if hook not in specs:
            raise ConfigError(f"{where}: unknown hook {hook!r}{_closest(hook, specs)}")
        for argument in inspect.signature(function).parameters:
            if argument not in specs[hook]:
                raise ConfigError(
                    f"{where}: hook {hook} has no argument {argument!r}"
                    f"{_closest(argument, specs[hook])}; its arguments are "
                    f"{', '.join(specs[hook])}"
                )
