"""What a run's live channel can see and ask in the process that made the run: the run's
metadata, what its items in flight report (progress, checks), the items it was asked to skip,
and the pools that can run their failed items again. A worker process has none of it (`steer`
is None in its context): what it is asked stays in the parent's hands. (What items stream is
in the snapshot: the core keeps it with their lanes.)"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Dict, List, Protocol

__all__ = ["Steer", "Retryable"]

#: Skip requests kept at most (a request for an item that never comes is forgotten first),
#: and for how many seconds.
MAX_SKIPS = 1000
SKIP_SECONDS = 600.0


class Retryable(Protocol):
    def request_retry(self) -> int:
        """Queues the items that failed so far to run again: how many."""


class Steer:
    def __init__(self) -> None:
        #: Shown by the monitor and the dashboard beside the run (model, provider, ...).
        self.meta: Dict[str, Any] = {}
        #: What items in flight reported (`Item.progress`, `check`): a few numbers each.
        self._reports: Dict[str, Dict[str, Any]] = {}
        self._skips: Dict[str, float] = {}
        self._pools: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._lock = threading.Lock()

    # -- what items report ----------------------------------------------------------------------
    def report(self, name: str, live: Dict[str, Any]) -> None:
        with self._lock:
            self._reports[name] = live

    def end_report(self, name: str) -> None:
        """The item ended: what it reported goes."""
        with self._lock:
            self._reports.pop(name, None)

    def reports(self) -> Dict[str, Dict[str, Any]]:
        with self._lock:
            return dict(self._reports)

    # -- skips ----------------------------------------------------------------------------------
    def request_skip(self, name: str) -> None:
        with self._lock:
            self._skips.pop(name, None)
            self._skips[name] = time.monotonic()
            while len(self._skips) > MAX_SKIPS:
                del self._skips[next(iter(self._skips))]

    def take_skip(self, name: str) -> bool:
        """Whether a skip was asked for `name` (and not too long ago): the asking item takes it,
        so that a later item of the same name is not skipped by the same request."""
        if name not in self._skips:  # the common case, without the lock
            return False
        with self._lock:
            asked = self._skips.pop(name, None)
        return asked is not None and time.monotonic() - asked < SKIP_SECONDS

    # -- retries --------------------------------------------------------------------------------
    def add_pool(self, pool: Retryable) -> None:
        with self._lock:
            self._pools.add(pool)

    def remove_pool(self, pool: Retryable) -> None:
        with self._lock:
            self._pools.discard(pool)

    def retry(self) -> int:
        """Asks every running pool to run its failed items again: how many will."""
        with self._lock:
            pools: List[Any] = list(self._pools)
        return sum(pool.request_retry() for pool in pools)

    def snapshot_meta(self) -> Dict[str, Any]:
        """`meta` as JSON-ready values (a copy first: the job may be setting keys meanwhile)."""
        meta = dict(self.meta)
        return {
            _shown(k): v if isinstance(v, (str, int, float, bool)) or v is None else _shown(v) for k, v in meta.items()
        }


def _shown(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a value that cannot say what it is still shows as something
        return f"<{type(value).__name__}>"
