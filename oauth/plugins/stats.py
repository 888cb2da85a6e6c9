"""Hook call statistics: counted in memory per process, added to the shared ``hook_stat``
table every few seconds, so ``flask plugins list`` and the admin page see every worker."""

from __future__ import annotations

import contextvars
import logging
import threading
import time

from oauth import metrics
from oauth.storage.models import HookStat, utcnow

log = logging.getLogger(__name__)

FLUSH_SECONDS = 5.0

# Set while ``flask plugins try`` runs a chain: a dry run is not a call.
dry_run = contextvars.ContextVar("portcullis_dry_run", default=False)


class HookStats:
    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def record(
        self, plugin: str, hook: str, ms: float, outcome: str, count_call: bool = True
    ) -> None:
        """Count one call (``outcome``: ok, failed or denied)."""
        if dry_run.get():
            return
        if count_call:
            metrics.HOOK_CALLS.labels(plugin, hook).inc()
        if outcome == "failed":
            metrics.HOOK_FAILURES.labels(plugin, hook).inc()
        with self._lock:
            entry = self._pending.setdefault((plugin, hook), [0, 0, 0, 0.0])
            entry[0] += 1 if count_call else 0
            entry[1] += outcome == "failed"
            entry[2] += outcome == "denied"
            entry[3] += ms

    def maybe_flush(self) -> None:
        if self._pending and time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Add the counters gathered in this process to the shared table."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return
        try:
            for (plugin, hook), (calls, failures, denials, ms) in pending.items():
                _add(plugin, hook, calls, failures, denials, ms)
        except Exception:  # statistics must never break a request
            log.warning("could not save plugin statistics", exc_info=True)

    def totals(self) -> dict[str, dict[str, list]]:
        """``{plugin: {hook: [calls, failures, denials, total_ms]}}`` over every worker."""
        self.flush()
        per_plugin: dict[str, dict[str, list]] = {}
        for row in HookStat.select():
            per_plugin.setdefault(row.plugin, {})[row.hook] = [
                row.calls,
                row.failures,
                row.denials,
                row.total_ms,
            ]
        return per_plugin


def _add(plugin: str, hook: str, calls: int, failures: int, denials: int, ms: float) -> None:
    HookStat.insert(
        plugin=plugin, hook=hook, calls=calls, failures=failures, denials=denials, total_ms=ms
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


def summary(name: str, hooks: list[str], counts: dict[str, list]) -> dict:
    """One plugin's line for ``flask plugins list`` and the admin page."""
    calls, failures, denials, total = (sum(c[i] for c in counts.values()) for i in range(4))
    return {
        "name": name, "hooks": sorted(hooks),
        "calls": calls, "failures": failures, "denials": denials,
        "mean_ms": round(total / calls, 3) if calls else 0.0,
        "per_hook": {
            hook: {"calls": c, "failures": f, "denials": d, "mean_ms": round(t / c, 3) if c else 0.0}
            for hook, (c, f, d, t) in sorted(counts.items())
        },
    }  # fmt: skip
