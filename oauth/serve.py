"""``portcullis-serve``: the production server, granian's WSGI interface running
``app:create_app`` in worker processes. Measured against gunicorn's sync and gthread workers
(benchmarks/RESULTS.md), it served the most tokens per CPU-second: its HTTP handling is Rust,
outside the GIL, and it keeps connections alive.

Before any worker starts, it does for granian what ``gunicorn.conf.py`` does for gunicorn:

- ``/metrics`` adds up every worker (prometheus_client's multiprocess mode): a private folder
  for ``PROMETHEUS_MULTIPROC_DIR`` when it is unset (removed when the server stops); a folder
  you name is emptied first, so counts of an earlier run are not this server's.
- ``PORTCULLIS_LOG_FORMAT=json`` makes granian's own lines JSON objects too; our request line
  (``portcullis.request``) is the access log, so granian's stays off.

``gunicorn -w N 'app:create_app()'`` keeps working (DESIGN.md); this is the faster one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

TARGET = "app:create_app"
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# One Python thread per worker: threads of one process share the GIL, so more of them only
# queue behind each other (measured: benchmarks/RESULTS.md); run more workers instead.
DEFAULT_THREADS = 1
# A worker still starting when SIGTERM came was seen to miss its stop (granian 2.8): after this
# many seconds the server kills what did not stop (the audit spool loses nothing to a kill).
KILL_TIMEOUT = 10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="portcullis-serve",
        description="Serve Portcullis in production (granian, WSGI). Settings: PORTCULLIS_*.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="worker processes (default: one per CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS,
        help=f"Python threads per worker (default {DEFAULT_THREADS})",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for name in ("port", "workers", "threads"):
        if getattr(args, name) < (0 if name == "port" else 1):
            parser.error(f"--{name} must be at least {0 if name == 'port' else 1}")
    return args


def prepare_metrics_folder() -> Path | None:
    """The multiprocess metrics folder, empty; returns it when it is ours to remove."""
    named = os.environ.get(METRICS_DIR)
    if named:
        folder = Path(named)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    private = Path(tempfile.mkdtemp(prefix="portcullis-metrics-"))
    os.environ[METRICS_DIR] = str(private)
    return private


def log_config() -> dict | None:
    """granian's logging with our JSON formatter, when the log format is JSON."""
    if os.environ.get("PORTCULLIS_LOG_FORMAT", "").strip().lower() != "json":
        return None
    handler = {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {  # granian merges these top-level keys into its own configuration
        "formatters": {"json": {"()": "oauth.logs.JsonFormatter"}},
        "handlers": {"console": handler, "access": handler},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    private = prepare_metrics_folder()  # before anything imports prometheus_client
    from granian import Granian  # after the metrics folder is set

    try:
        Granian(
            TARGET, address=args.host, port=args.port, interface="wsgi", factory=True,
            workers=args.workers, blocking_threads=args.threads, respawn_failed_workers=True,
            workers_kill_timeout=KILL_TIMEOUT,
            log_dictconfig=log_config(), log_access=False,
        ).serve()  # fmt: skip
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
