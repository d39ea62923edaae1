"""What a run's live channel can see and ask in the process that made the run: the run's
metadata, the tails of its items' streamed output, the items it was asked to skip, and the
pools that can run their failed items again. A worker process has none of it (`steer` is None
in its context): what it streams or is asked stays in the parent's hands."""

from __future__ import annotations

import threading
import weakref
from typing import Any, Dict, Protocol, Set

__all__ = ["Steer", "Retryable", "TAIL_CHARS"]

#: Characters of an item's streamed output kept for the monitor (its end).
TAIL_CHARS = 2000
#: Skip requests kept at most (a request for an item that never comes is forgotten first).
MAX_SKIPS = 1000


class Retryable(Protocol):
    def request_retry(self) -> int:
        """Queues the items that failed so far to run again: how many."""


class Steer:
    def __init__(self) -> None:
        #: Shown by the monitor and the dashboard beside the run (model, provider, ...).
        self.meta: Dict[str, Any] = {}
        self._tails: Dict[str, str] = {}
        self._skips: Dict[str, None] = {}
        self._pools: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._lock = threading.Lock()

    # -- streamed output ---------------------------------------------------------------------
    def stream(self, name: str, text: str) -> None:
        with self._lock:
            self._tails[name] = (self._tails.get(name, "") + text)[-TAIL_CHARS:]

    def end_stream(self, name: str) -> None:
        with self._lock:
            self._tails.pop(name, None)

    def outputs(self) -> Dict[str, str]:
        with self._lock:
            return dict(self._tails)

    # -- skips ----------------------------------------------------------------------------------
    def request_skip(self, name: str) -> bool:
        with self._lock:
            self._skips[name] = None
            while len(self._skips) > MAX_SKIPS:
                del self._skips[next(iter(self._skips))]
        return True

    def skip_requested(self, name: str) -> bool:
        return name in self._skips

    def skipped(self, name: str) -> None:
        with self._lock:
            self._skips.pop(name, None)

    @property
    def skips(self) -> Set[str]:
        return set(self._skips)

    # -- retries --------------------------------------------------------------------------------
    def add_pool(self, pool: Retryable) -> None:
        self._pools.add(pool)

    def remove_pool(self, pool: Retryable) -> None:
        self._pools.discard(pool)

    def retry(self) -> int:
        """Asks every running pool to run its failed items again: how many will."""
        return sum(pool.request_retry() for pool in list(self._pools))

    def snapshot_meta(self) -> Dict[str, Any]:
        return {
            str(k): v if isinstance(v, (str, int, float, bool)) or v is None else str(v) for k, v in self.meta.items()
        }
