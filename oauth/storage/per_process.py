"""Set-up that each process must do for itself (descriptors, threads), done once however many
of a new worker's threads reach it together.

A forked worker inherits its parent's objects, but not its threads, and a descriptor it
inherited shares the parent's locks. So objects such as the SQLite writers' lock redo their
set-up when they find themselves in a new process. Several threads of a threaded worker reach
that moment together at its first requests. One does the set-up while the others wait, and
the object's ``_pid`` is set last, so no thread uses what the set-up makes before it exists.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

_setting_up = threading.Lock()


def _new_lock() -> None:
    # Only the forking thread survives a fork; another may have held the lock at that moment.
    global _setting_up
    _setting_up = threading.Lock()


os.register_at_fork(after_in_child=_new_lock)


def once(owner, set_up: Callable[[], None]) -> None:
    """Run ``set_up()`` unless ``owner._pid`` is this process's; then set it."""
    if owner._pid == os.getpid():
        return
    with _setting_up:
        if owner._pid != os.getpid():
            set_up()
            owner._pid = os.getpid()
