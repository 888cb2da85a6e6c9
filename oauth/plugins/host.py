"""The plugin host: one pluggy manager per app, ordered hook chains called by argument name,
the protected-claim guard, and the statistics of every call.

``app.extensions["portcullis.plugins"]``, so plugin state never leaks between apps or tests.
The rest of the code calls this façade, never pluggy directly.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pluggy
from flask import Flask, current_app

from oauth import compact_json
from oauth.config import ConfigError
from oauth.plugins import hookspecs, loader, stats
from oauth.plugins.hookspecs import (
    ID_TOKEN_PROTECTED_CLAIMS,
    PROTECTED_CLAIMS,
    DeletionDenied,
    SignupDenied,
    TokenContext,
    TokenDenied,
)
from oauth.scopes import is_scope_token

log = logging.getLogger(__name__)

CC_HOOK = "customize_client_credentials_token"
_MISSING = object()


class PluginError(Exception):
    """A plugin broke the request (an exception or a protected-claim change): ``server_error``.

    ``description`` names the plugin: it is for the server log, never for the client.
    """

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


@dataclass(frozen=True)
class Impl:
    """One implementation in a chain: it receives only the arguments it names."""

    plugin: str
    function: Any
    argnames: tuple[str, ...]


class PluginHost:
    def __init__(self, app: Flask):
        self.app = app
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs.PortcullisHookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.stats = stats.HookStats()
        self._chains: dict[str, list[Impl]] = {}

    # --- loading ------------------------------------------------------------------------

    def load(self) -> None:
        for found in loader.find(self.app):
            self._register(found)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as error:
            raise ConfigError(f"plugin {getattr(error, 'plugin_name', '?')}: {error}") from None
        self._build_chains()

    def _register(self, found: loader.Found) -> None:
        if found.name in self.infos:
            raise ConfigError(
                f"plugin {found.name} ({found.source}): a plugin with that name is already "
                f"loaded ({self.infos[found.name].source})"
            )
        try:
            self.pm.register(found.module, name=found.name)
        except (ValueError, pluggy.PluginValidationError) as error:
            raise ConfigError(f"plugin {found.name} ({found.source}): {error}") from None
        self.infos[found.name] = PluginInfo(
            found.name, found.source, order=len(self.infos), builtin=found.builtin
        )

    def _build_chains(self) -> None:
        def rank(impl):
            info = self.infos[impl.plugin_name]
            tier = 0 if impl.tryfirst else 2 if (impl.trylast or info.builtin) else 1
            return (tier, info.order)

        for hook_name in loader.spec_arguments():
            impls = getattr(self.pm.hook, hook_name).get_hookimpls()
            self._chains[hook_name] = [
                Impl(impl.plugin_name, impl.function, tuple(impl.argnames))
                for impl in sorted(impls, key=rank)
            ]

    def chain(self, hook_name: str) -> list[Impl]:
        return self._chains.get(hook_name, [])

    # --- calling ------------------------------------------------------------------------

    def _call(self, impl: Impl, hook_name: str, **arguments):
        """Call one implementation the pluggy way: by argument name, only those it takes."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return impl.function(**{name: arguments[name] for name in impl.argnames})
        except (TokenDenied, SignupDenied, DeletionDenied):
            outcome = "denied"
            raise
        except Exception as error:
            outcome = "failed"
            log.exception("plugin %s failed in hook %s", impl.plugin, hook_name)
            raise PluginError(
                impl.plugin, hook_name, f"Plugin '{impl.plugin}' failed in {hook_name}."
            ) from error
        finally:
            self.stats.record(
                impl.plugin, hook_name, (time.perf_counter() - started) * 1000, outcome
            )

    def _fail(self, plugin: str, hook_name: str, description: str):
        log.error("%s", description)
        self.stats.record(plugin, hook_name, 0.0, "failed", count_call=False)
        raise PluginError(plugin, hook_name, description)

    def _changes(self, impl: Impl, hook_name: str, result) -> dict | None:
        if result is not None and not isinstance(result, dict):
            self._fail(
                impl.plugin,
                hook_name,
                f"Plugin '{impl.plugin}' returned {type(result).__name__} from {hook_name}, "
                "not a dict.",
            )
        return result

    def _merge(self, plugin: str, hook_name: str, claims: dict, changes: dict, protected) -> dict:
        for name in protected:
            if name in changes and changes[name] != claims.get(name, _MISSING):
                self._fail(
                    plugin,
                    hook_name,
                    f"Plugin '{plugin}' tried to change the protected claim '{name}' "
                    f"in {hook_name}.",
                )
        try:  # here, so the log names the plugin (the token's signing would fail anonymously)
            compact_json.dumps(changes)
        except (TypeError, ValueError) as error:
            self._fail(
                plugin,
                hook_name,
                f"Plugin '{plugin}' returned a claim that is not JSON from {hook_name}: {error}.",
            )
        return {**claims, **changes}

    def run_claims_chain(
        self, hook_name: str, claims: dict, protected=PROTECTED_CLAIMS, **arguments
    ) -> dict:
        """Run a claims hook through every plugin, each seeing the previous one's result."""
        for impl in self.chain(hook_name):
            result = self._call(impl, hook_name, claims=dict(claims), **arguments)
            changes = self._changes(impl, hook_name, result)
            if changes is not None:
                claims = self._merge(impl.plugin, hook_name, claims, changes, protected)
        return claims

    def customize_access_token(self, claims: dict, context: TokenContext) -> dict:
        return self.run_claims_chain("customize_access_token", claims, context=context)

    def customize_id_token(self, claims: dict, context: TokenContext) -> dict:
        return self.run_claims_chain(
            "customize_id_token", claims, ID_TOKEN_PROTECTED_CLAIMS, context=context
        )

    def userinfo_claims(self, claims: dict, user, scopes: list[str]) -> dict:
        return self.run_claims_chain(
            "userinfo_claims", claims, ("sub",), user=user, scopes=list(scopes)
        )

    def customize_client_credentials(
        self, client, scopes: list[str], audience: str, context: TokenContext
    ) -> tuple[list[str], dict]:
        """Auth0-style chain: returns the final scopes and the extra claims to merge."""
        extra: dict = {}
        for impl in self.chain(CC_HOOK):
            result = self._call(
                impl, CC_HOOK, client=client, scope=list(scopes), audience=audience, context=context
            )
            changes = self._changes(impl, CC_HOOK, result)
            if changes is None:
                continue
            changes = dict(changes)
            if "scope" in changes:
                scopes = self._scope_list(impl, changes.pop("scope"))
            extra = self._merge(impl.plugin, CC_HOOK, extra, changes, (*PROTECTED_CLAIMS, "scope"))
        return scopes, extra

    def _scope_list(self, impl: Impl, value) -> list[str]:
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, list | tuple) or not all(is_scope_token(s) for s in value):
            self._fail(
                impl.plugin, CC_HOOK, f"Plugin '{impl.plugin}' returned an invalid scope list."
            )
        return list(dict.fromkeys(value))

    def before_user_created(self, user) -> None:
        for impl in self.chain("before_user_created"):
            self._call(impl, "before_user_created", user=user)

    def before_user_deleted(self, user, via: str) -> None:
        for impl in self.chain("before_user_deleted"):
            self._call(impl, "before_user_deleted", user=user, via=via)

    def emit(self, event: dict) -> None:
        for impl in self.chain("on_event"):
            # already logged and counted; observers never break the request
            with contextlib.suppress(PluginError, TokenDenied, SignupDenied, DeletionDenied):
                self._call(impl, "on_event", event=dict(event))

    def registered_scopes(self) -> dict[str, str]:
        scopes: dict[str, str] = {}
        for impl in self.chain("register_scopes"):
            try:
                result = impl.function() or {}
            except Exception as error:
                raise ConfigError(
                    f"plugin {impl.plugin}: register_scopes failed: {type(error).__name__}: {error}"
                ) from None
            for scope, description in dict(result).items():
                if not is_scope_token(scope):
                    raise ConfigError(
                        f"plugin {impl.plugin}: register_scopes: {scope!r} is not a valid scope"
                    )
                scopes[scope] = str(description)
        return scopes

    # --- dry runs and statistics --------------------------------------------------------

    @contextlib.contextmanager
    def dry_run(self) -> Iterator[None]:
        """Hooks called inside are not counted in the statistics (``flask plugins try``)."""
        token = stats.dry_run.set(True)
        try:
            yield
        finally:
            stats.dry_run.reset(token)

    def describe(self) -> list[dict]:
        """Every loaded plugin with its source, hooks and call statistics (all workers)."""
        totals = self.stats.totals()
        result = []
        for info in sorted(self.infos.values(), key=lambda i: i.order):
            callers = self.pm.get_hookcallers(self.pm.get_plugin(info.name)) or []
            line = stats.summary(info.name, [c.name for c in callers], totals.get(info.name, {}))
            result.append({"name": line.pop("name"), "source": info.source, **line})
        return result


def init_app(app: Flask) -> PluginHost:
    host = PluginHost(app)
    host.load()
    app.extensions["portcullis.plugins"] = host
    app.extensions["portcullis.extra_scopes"] = host.registered_scopes()

    @app.after_request
    def _flush_statistics(response):
        host.stats.maybe_flush()
        return response

    return host


def host() -> PluginHost:
    return current_app.extensions["portcullis.plugins"]
