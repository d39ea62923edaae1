"""Automatic retries of a pool's items (`retries=`, `retry_on=`, `backoff=`), one policy for the
thread, process and async pools: what is retried, how long to wait, and how a retry is counted.

An item is tried again in the worker it ran in (thread, worker process, async slot), inside the
same `task.item()` block: the item is counted once, when its last attempt ends, and each retry
counts as retried, with an ItemRetried event that carries the error of the attempt it follows.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, Tuple, Type

from . import _milepost
from .errors import Cancelled, InvalidValueError
from .events import ItemRetried

if TYPE_CHECKING:
    from .task import Task

#: The longest wait between two attempts, whatever the attempt: a long run's tenth retry must
#: not sleep for minutes.
MAX_DELAY = 30.0
#: A wait is cut in slices this long, so that a cancel stops it promptly.
_SLICE = 0.05
#: Where the jitter comes from, a number in [0, 1) (a test sets it to see the bounds of the waits).
jitter = random.random


@dataclass(frozen=True)
class RetryPolicy:
    """How a pool retries its items (picklable: process pools hand it to their workers)."""

    retries: int = 0
    retry_on: Tuple[Type[Exception], ...] = (Exception,)
    backoff: float = 0.5
    cap: float = MAX_DELAY

    @classmethod
    def of(cls, retries: Any, retry_on: Any, backoff: Any) -> RetryPolicy:
        """The policy of a pool's arguments; InvalidValueError naming a bad one (checked before
        the pool starts anything)."""
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidValueError(f"retries must be an int >= 0, got {retries!r}")
        types = retry_on if isinstance(retry_on, tuple) else (retry_on,)
        # Exception subclasses only: Ctrl-C or SystemExit is never an item's failure to retry.
        if not types or not all(isinstance(t, type) and issubclass(t, Exception) for t in types):
            raise InvalidValueError(f"retry_on must be an exception type or a tuple of them, got {retry_on!r}")
        ok = not isinstance(backoff, bool) and isinstance(backoff, (int, float))
        if not ok or not math.isfinite(backoff) or backoff < 0:
            raise InvalidValueError(f"backoff must be a number of seconds >= 0, got {backoff!r}")
        return cls(retries, types, float(backoff))

    def retries_after(self, exc: BaseException, attempt: int) -> bool:
        """Whether an item whose attempt number `attempt` (0 first) raised `exc` is tried
        again. A cancel is never retried: it is no failure of the item."""
        return attempt < self.retries and isinstance(exc, self.retry_on) and not isinstance(exc, Cancelled)

    def delay(self, attempt: int, rand: Optional[Callable[[], float]] = None) -> float:
        """Seconds to wait after attempt `attempt` (0 first) failed: full jitter, a random
        wait up to `backoff * 2**attempt`, capped (so that many workers retrying after one
        outage do not come back all at once)."""
        if self.backoff == 0:
            return 0.0
        ceiling = self.cap if attempt >= 64 else min(self.cap, self.backoff * 2**attempt)
        return (rand or jitter)() * ceiling


NO_RETRIES = RetryPolicy()


def pause(seconds: float, cancelled: Callable[[], bool]) -> bool:
    """Waits `seconds` in a thread or a worker process; False, at once, if `cancelled()`
    becomes true meanwhile."""
    deadline = time.monotonic() + seconds
    while not cancelled():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, _SLICE))
    return False


async def pause_async(seconds: float, cancelled: Callable[[], bool]) -> bool:
    """`pause` on an event loop: awaits, never blocks the loop."""
    import asyncio  # loaded already: a coroutine is running

    deadline = time.monotonic() + seconds
    while not cancelled():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, _SLICE))
    return False


def counted_retry(task: Task, name: Any, error: BaseException) -> None:
    """Counts one retry of item `name` and emits its ItemRetried event, carrying the error of
    the attempt that failed (the history keeps it as the event's message)."""
    task.retry()  # the count only: the event is emitted here, with the error
    msg = str(error)
    text = f"{type(error).__name__}: {msg}" if msg else type(error).__name__
    item = _clip(_milepost.sanitize(name if isinstance(name, str) else str(name)), _milepost.MAX_NAME_CHARS)
    task.context.emit(ItemRetried, task.path, item=item, error=_clip(text, _milepost.MAX_ERROR_CHARS))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def call(policy: RetryPolicy, task: Task, name: Any, fn: Callable[[], Any], cancelled: Callable[[], bool]) -> Any:
    """`fn()`, tried again per `policy` (in a thread or a worker process); raises the last
    error once no retry is left, or once the run is cancelled."""
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as e:
            if not policy.retries_after(e, attempt) or cancelled():
                raise
            if not pause(policy.delay(attempt), cancelled):
                raise
            counted_retry(task, name, e)
            attempt += 1


async def call_async(
    policy: RetryPolicy, task: Task, name: Any, fn: Callable[[], Awaitable[Any]], cancelled: Callable[[], bool]
) -> Any:
    """`call` for a coroutine function: the wait is awaited."""
    attempt = 0
    while True:
        try:
            return await fn()
        except Exception as e:
            if not policy.retries_after(e, attempt) or cancelled():
                raise
            if not await pause_async(policy.delay(attempt), cancelled):
                raise
            counted_retry(task, name, e)
            attempt += 1
