"""Runs that ended before their first publish, published when their process exits.

A run is published once it has lived `publisher.PUBLISH_AFTER` seconds. One that ends sooner
waits here and is published when the interpreter exits (the newest `KEEP`), or at once when
this process reads the live directory (`list_runs`, `find_run`), so that it is listed as if
it had been published at once. Not sooner, and on no thread of its own: making a run's
directory and files costs more than such a run, and a thread doing it while the job starts its
next run costs the job as much (the two take turns at the interpreter's lock: a `Run` entered
and left took twice as long, docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
from typing import Callable, Deque

__all__ = ["later", "drain", "KEEP"]

_log = logging.getLogger("milepost")

#: Runs kept waiting: a job that starts many short runs publishes its newest this many.
KEEP = 20

_waiting: Deque[Callable[[bool], None]] = collections.deque(maxlen=KEEP)


def later(publish: Callable[[bool], None]) -> None:
    """Publishes a run that has ended (`publish(at_exit)`), at the process's exit or its next
    read of the live directory (the oldest waiting is dropped past KEEP)."""
    _waiting.append(publish)


def drain(at_exit: bool = False) -> None:
    """Publishes the runs waiting, here and now, each once (a `popleft` is atomic: two
    threads draining at once take different runs)."""
    while True:
        try:
            publish = _waiting.popleft()
        except IndexError:
            return
        try:
            publish(at_exit)
        except Exception as e:  # noqa: BLE001 - one run's publishing must not stop the others'
            _log.warning("milepost: publishing an ended run failed (%s: %s)", type(e).__name__, e)


atexit.register(drain, True)
os.register_at_fork(after_in_child=_waiting.clear)  # the parent's runs are the parent's
