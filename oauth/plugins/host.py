"""The plugin manager: loading, ordered hook chains, the protected-claim guard, statistics.

One manager per app (``app.extensions["portcullis.plugins"]``), so plugin state never leaks
between apps or tests. The rest of the code calls this façade, never pluggy directly.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
from flask import Flask, current_app

from oauth.config import ConfigError
from oauth.plugins import hookspecs as hooks
from oauth.plugins.hookspecs import SignupDenied, TokenDenied
from oauth.scopes import is_scope_token
from oauth.tokens.claims import PROTECTED_CLAIMS

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0


class PluginError(Exception):
    """A plugin broke the request (an exception or a protected-claim change): ``server_error``."""

    def __init__(self, plugin: str, hook: str, description: str):
        super().__init__(description)
        self.plugin = plugin
        self.hook = hook
        self.description = description


@dataclass
class PluginInfo:
    name: str
    source: str
    order: int
    builtin: bool = False


class PluginHost:
    def __init__(self, app: Flask):
        self.app = app
        self.pm = pluggy.PluginManager(hooks.PROJECT)
        self.pm.add_hookspecs(hooks.PortcullisHookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._chains: dict[str, list[tuple[str, Any]]] = {}
        self._pending: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        disabled = set(self.app.config["DISABLED_PLUGINS"])
        folder = Path(self.app.config["PLUGINS_DIR"])
        if folder.is_dir():
            for path in sorted(folder.glob("*.py")):
                if path.stem.startswith("_") or path.stem in disabled:
                    continue
                self._register(path.stem, self._import_file(path), f"file {path}")
        for entry in sorted(
            importlib.metadata.entry_points(group=hooks.PROJECT), key=lambda e: e.name
        ):
            if entry.name in disabled:
                continue
            try:
                module = entry.load()
            except Exception as error:
                raise ConfigError(
                    f"plugin {entry.name} (entry point {entry.value}): {type(error).__name__}: {error}"
                ) from None
            dist = getattr(entry, "dist", None)
            self._register(
                entry.name,
                module,
                f"entry point {entry.value}" + (f" ({dist.name})" if dist else ""),
            )
        from oauth.plugins.builtin import BUILTINS

        for name, module in BUILTINS.items():
            if name not in disabled and getattr(module, "enabled", lambda app: True)(self.app):
                self._register(name, module, "built-in", builtin=True)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as error:
            raise ConfigError(f"plugin {getattr(error, 'plugin_name', '?')}: {error}") from None
        self._build_chains()

    def _import_file(self, path: Path):
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

    def _register(self, name: str, module, source: str, builtin: bool = False) -> None:
        if name in self.infos:
            raise ConfigError(
                f"plugin {name} ({source}): a plugin with that name is already loaded ({self.infos[name].source})"
            )
        try:
            self.pm.register(module, name=name)
        except (ValueError, pluggy.PluginValidationError) as error:
            raise ConfigError(f"plugin {name} ({source}): {error}") from None
        self.infos[name] = PluginInfo(
            name=name, source=source, order=len(self.infos), builtin=builtin
        )

    def _build_chains(self) -> None:
        for hook_name in vars(hooks.PortcullisHookspecs):
            if hook_name.startswith("_"):
                continue
            impls = getattr(self.pm.hook, hook_name).get_hookimpls()

            def rank(impl):
                info = self.infos[impl.plugin_name]
                tier = 0 if impl.tryfirst else 2 if (impl.trylast or info.builtin) else 1
                return (tier, info.order)

            self._chains[hook_name] = [
                (impl.plugin_name, impl.function) for impl in sorted(impls, key=rank)
            ]

    def chain(self, hook_name: str) -> list[tuple[str, Any]]:
        return self._chains.get(hook_name, [])

    # --- calling ------------------------------------------------------------------------

    def _call(self, plugin: str, hook_name: str, function, *args):
        started = time.perf_counter()
        outcome = "ok"
        try:
            return function(*args)
        except (TokenDenied, SignupDenied):
            outcome = "denied"
            raise
        except Exception as error:
            outcome = "failed"
            log.exception("plugin %s failed in hook %s", plugin, hook_name)
            raise PluginError(
                plugin, hook_name, f"Plugin '{plugin}' failed in {hook_name}; see the server log."
            ) from error
        finally:
            self._record(plugin, hook_name, (time.perf_counter() - started) * 1000, outcome)

    def run_claims_chain(
        self, hook_name: str, claims: dict, *args, protected=PROTECTED_CLAIMS
    ) -> dict:
        """Run a claims hook through every plugin, each seeing the previous one's result."""
        for plugin, function in self.chain(hook_name):
            changes = self._call(plugin, hook_name, function, dict(claims), *args)
            if changes is None:
                continue
            if not isinstance(changes, dict):
                self._fail(
                    plugin,
                    hook_name,
                    f"Plugin '{plugin}' returned {type(changes).__name__} from {hook_name}, not a dict.",
                )
            claims = self._merge(plugin, hook_name, claims, changes, protected)
        return claims

    def _merge(self, plugin: str, hook_name: str, claims: dict, changes: dict, protected) -> dict:
        for name in protected:
            if name in changes and changes[name] != claims.get(name, _MISSING):
                self._fail(
                    plugin,
                    hook_name,
                    f"Plugin '{plugin}' tried to change the protected claim '{name}' in {hook_name}.",
                )
        return {**claims, **changes}

    def _fail(self, plugin: str, hook_name: str, description: str):
        log.error("%s", description)
        self._record(plugin, hook_name, 0.0, "failed", count_call=False)
        raise PluginError(plugin, hook_name, description)

    def customize_access_token(self, claims: dict, context) -> dict:
        return self.run_claims_chain("customize_access_token", claims, context)

    def customize_id_token(self, claims: dict, context) -> dict:
        return self.run_claims_chain("customize_id_token", claims, context)

    def userinfo_claims(self, claims: dict, user, scopes: list[str]) -> dict:
        return self.run_claims_chain(
            "userinfo_claims", claims, user, list(scopes), protected=("sub",)
        )

    def customize_client_credentials(
        self, client, scopes: list[str], audience: str, context
    ) -> tuple[list[str], dict]:
        """Auth0-style chain: returns the final scopes and the extra claims to merge."""
        extra: dict = {}
        for plugin, function in self.chain("customize_client_credentials_token"):
            result = self._call(
                plugin,
                "customize_client_credentials_token",
                function,
                client,
                list(scopes),
                audience,
                context,
            )
            if result is None:
                continue
            if not isinstance(result, dict):
                self._fail(
                    plugin,
                    "customize_client_credentials_token",
                    f"Plugin '{plugin}' returned {type(result).__name__}, not a dict.",
                )
            result = dict(result)
            if "scope" in result:
                new_scopes = result.pop("scope")
                if isinstance(new_scopes, str):
                    new_scopes = new_scopes.split()
                if not isinstance(new_scopes, list | tuple) or not all(
                    is_scope_token(s) for s in new_scopes
                ):
                    self._fail(
                        plugin,
                        "customize_client_credentials_token",
                        f"Plugin '{plugin}' returned an invalid scope list.",
                    )
                scopes = list(dict.fromkeys(new_scopes))
            extra = self._merge(
                plugin,
                "customize_client_credentials_token",
                extra,
                result,
                PROTECTED_CLAIMS + ("scope",),
            )
        return scopes, extra

    def before_user_created(self, user) -> None:
        for plugin, function in self.chain("before_user_created"):
            self._call(plugin, "before_user_created", function, user)

    def emit(self, event: dict) -> None:
        for plugin, function in self.chain("on_event"):
            # already logged and counted; observers never break the request
            with contextlib.suppress(PluginError, TokenDenied, SignupDenied):
                self._call(plugin, "on_event", function, dict(event))

    def registered_scopes(self) -> dict[str, str]:
        scopes: dict[str, str] = {}
        for plugin, function in self.chain("register_scopes"):
            try:
                result = function() or {}
            except Exception as error:
                raise ConfigError(
                    f"plugin {plugin}: register_scopes failed: {type(error).__name__}: {error}"
                ) from None
            for scope, description in dict(result).items():
                if not is_scope_token(scope):
                    raise ConfigError(
                        f"plugin {plugin}: register_scopes: {scope!r} is not a valid scope"
                    )
                scopes[scope] = str(description)
        return scopes

    # --- statistics ---------------------------------------------------------------------

    def _record(
        self, plugin: str, hook_name: str, ms: float, outcome: str, count_call: bool = True
    ) -> None:
        with self._lock:
            entry = self._pending.setdefault((plugin, hook_name), [0, 0, 0, 0.0])
            entry[0] += 1 if count_call else 0
            entry[1] += outcome == "failed"
            entry[2] += outcome == "denied"
            entry[3] += ms

    def maybe_flush(self) -> None:
        if self._pending and time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Add the counters gathered in this process to the shared table."""
        from oauth.storage.models import HookStat, utcnow

        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return
        try:
            for (plugin, hook_name), (calls, failures, denials, ms) in pending.items():
                HookStat.insert(
                    plugin=plugin,
                    hook=hook_name,
                    calls=calls,
                    failures=failures,
                    denials=denials,
                    total_ms=ms,
                ).on_conflict(
                    conflict_target=[HookStat.plugin, HookStat.hook],
                    update={
                        HookStat.calls: HookStat.calls + calls,
                        HookStat.failures: HookStat.failures + failures,
                        HookStat.denials: HookStat.denials + denials,
                        HookStat.total_ms: HookStat.total_ms + ms,
                        HookStat.updated_at: utcnow(),
                    },
                ).execute()
        except Exception:  # statistics must never break a request
            log.warning("could not save plugin statistics", exc_info=True)

    def describe(self) -> list[dict]:
        """Every loaded plugin with its hooks and call statistics (all workers)."""
        from oauth.storage.models import HookStat

        self.flush()
        per_hook: dict[str, dict[str, list]] = {}
        for row in HookStat.select():
            per_hook.setdefault(row.plugin, {})[row.hook] = [
                row.calls,
                row.failures,
                row.denials,
                row.total_ms,
            ]
        result = []
        for info in sorted(self.infos.values(), key=lambda i: i.order):
            hooks_of = [
                impl.name for impl in self.pm.get_hookcallers(self.pm.get_plugin(info.name)) or []
            ]
            counts = per_hook.get(info.name, {})
            calls, failures, denials, total = (sum(c[i] for c in counts.values()) for i in range(4))
            result.append({
                "name": info.name, "source": info.source, "hooks": sorted(hooks_of),
                "calls": calls, "failures": failures, "denials": denials,
                "mean_ms": round(total / calls, 3) if calls else 0.0,
                "per_hook": {
                    hook: {"calls": c, "failures": f, "denials": d, "mean_ms": round(t / c, 3) if c else 0.0}
                    for hook, (c, f, d, t) in sorted(counts.items())
                },
            })  # fmt: skip
        return result


_MISSING = object()


def init_app(app: Flask) -> PluginHost:
    host = PluginHost(app)
    host.load()
    app.extensions["portcullis.plugins"] = host
    app.extensions["portcullis.extra_scopes"] = host.registered_scopes()

    @app.after_request
    def _flush_statistics(response):
        host.maybe_flush()
        return response

    return host


def host() -> PluginHost:
    return current_app.extensions["portcullis.plugins"]
