"""What a run's live channel can see and ask in the process that made the run: the run's
metadata, what its items in flight report (progress, checks), the items it was asked to skip,
and the pools that can run their failed items again. A worker process has none of it (`steer`
is None in its context): what it is asked stays in the parent's hands. (What items stream is
in the snapshot: the core keeps it with their lanes.)"""

from __future__ import annotations

import math
import threading
import time
import weakref
from typing import Any, Dict, List, Protocol

from .errors import InvalidValueError

__all__ = ["Steer", "Retryable", "Meta", "META_CHARS"]

#: Skip requests kept at most (a request for an item that never comes is forgotten first),
#: and for how many seconds.
MAX_SKIPS = 1000
SKIP_SECONDS = 600.0


#: Characters of a meta key or text value kept (the history and every display show it whole).
META_CHARS = 300


class Meta(Dict[str, Any]):
    """`run.meta`: what the run is about. Keys are non-empty strings, checked as they are set
    (an `InvalidValueError` naming the key); values are kept as given, and `json()` gives
    them as the history and the live channel keep them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.update(*args, **kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key.strip():
            raise InvalidValueError(f"meta's keys must be non-empty strings, got {key!r}")
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def json(self) -> Dict[str, Any]:
        """JSON-ready, always: None, bools, ints and finite floats as they are, anything else
        (NaN and infinities, objects) as its text; texts valid UTF-8 (a lone surrogate
        replaced) and clipped to `META_CHARS`. A copy is read first: the job may be setting
        keys meanwhile."""
        return {_text(k): _json_value(v) for k, v in list(self.items())}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int)) and abs(value) <= 2**53:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return _text(value)


def _text(value: Any) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except Exception:  # noqa: BLE001 - a value that cannot say what it is still shows as something
        text = f"<{type(value).__name__}>"
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text if len(text) <= META_CHARS else text[: META_CHARS - 1] + "…"


class Retryable(Protocol):
    def request_retry(self) -> int:
        """Queues the items that failed so far to run again: how many."""


class Steer:
    def __init__(self) -> None:
        #: Shown by the monitor and the dashboard beside the run (model, provider, ...).
        self.meta = Meta()
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
        return self.meta.json()
