"""gunicorn's settings for Portcullis: gunicorn reads ``./gunicorn.conf.py`` from its working
directory, so ``gunicorn -w 4 'app:create_app()'`` run from the project root uses this file
(elsewhere: ``gunicorn -c /path/to/portcullis/gunicorn.conf.py ...``).

- ``/metrics`` adds up every worker (prometheus_client's multiprocess mode): each worker
  writes its counters to files in ``PROMETHEUS_MULTIPROC_DIR``. When the variable is unset,
  a private folder is made for this server (and removed when it stops); a folder you name is
  emptied at start. A worker that exits is marked dead (its counts stay in the sums).
- ``PORTCULLIS_LOG_FORMAT=json`` also makes gunicorn's own lines (booting, workers, errors)
  JSON objects. Our request line (``portcullis.request``) is the access log, so gunicorn's
  access log stays off; command-line options override anything set here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Before anything imports prometheus_client (the workers import the app after this).
_private_folder = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _private_folder = tempfile.mkdtemp(prefix="portcullis-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _private_folder

from gunicorn.glogging import Logger  # noqa: E402  # after the variable above

from oauth.logs import JsonFormatter  # noqa: E402  # after the variable above


def on_starting(server):
    """Counts of an earlier run are not this server's."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _private_folder:
        shutil.rmtree(_private_folder, ignore_errors=True)


class PortcullisLogger(Logger):
    """gunicorn's logger; with ``PORTCULLIS_LOG_FORMAT=json`` its lines are JSON too."""

    def setup(self, cfg):
        super().setup(cfg)
        if os.environ.get("PORTCULLIS_LOG_FORMAT", "").strip().lower() == "json":
            for handler in [*self.error_log.handlers, *self.access_log.handlers]:
                handler.setFormatter(JsonFormatter())


logger_class = PortcullisLogger
