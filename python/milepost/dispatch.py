"""The dispatcher: moves lifecycle events and sampled snapshots to observers, off the hot path.

Events go into a bounded queue (a full queue counts what it drops instead of growing); a
background thread drains it every tick and hands out snapshots when observers' intervals are
due. With an injected clock there is no thread: `poll()` does the same work on demand.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, List, Optional, Sequence

from .errors import InvalidValueError
from .events import BOUNDARY_EVENTS, Event

if TYPE_CHECKING:
    from .observers import Observer
    from .snapshot import Snapshot

_log = logging.getLogger("milepost")

#: Most events waiting for delivery; past this they are dropped and counted.
MAX_QUEUED_EVENTS = 10_000


#: The dispatcher never wakes more often than this, whatever an observer asks for.
MIN_TICK = 0.01


def check_interval(value: Any, what: str) -> Optional[float]:
    """`None`, or a positive finite number of seconds; anything else is an error naming it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise InvalidValueError(f"{what} must be a positive number of seconds or None, got {value!r}")
    return float(value)


class _Slot:
    """An observer, its interval (read once) and its delivery bookkeeping."""

    __slots__ = ("observer", "interval", "boundaries", "next_due", "failures")

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        name = type(observer).__name__
        self.interval = check_interval(getattr(observer, "interval", None), f"{name}.interval")
        self.boundaries = bool(getattr(observer, "snapshot_on_boundaries", False))
        self.next_due = 0.0
        self.failures = 0


class Dispatcher:
    def __init__(
        self,
        observers: Sequence[Observer],
        snapshot: Callable[[], Snapshot],
        now: Callable[[], float],
        tick: float = 0.25,
        pull: Optional[Callable[[], List[Event]]] = None,
    ) -> None:
        self._slots = [_Slot(o) for o in observers]
        self._pull = pull
        self._snapshot = snapshot
        self._now = now
        self._queue: Deque[Event] = deque()
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self.dropped = 0
        self._tick = max(MIN_TICK, min([tick, *(s.interval for s in self._slots if s.interval)]))
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._deferred: Optional[Callable[[], None]] = None

    def add(self, observer: Observer) -> None:
        """Adds an observer before the run starts."""
        self._slots.append(_Slot(observer))
        if self._slots[-1].interval:
            self._tick = max(MIN_TICK, min(self._tick, self._slots[-1].interval))

    @property
    def observers(self) -> List[Observer]:
        return [s.observer for s in self._slots]

    def emit(self, event: Event) -> None:
        if not self._slots:  # nobody listens: nothing to queue
            return
        with self._lock:
            if len(self._queue) >= MAX_QUEUED_EVENTS:
                self.dropped += 1
            else:
                self._queue.append(event)

    def pull_now(self) -> None:
        """Queues the worker events waiting now (before the run's own last events)."""
        if self._pull is not None and self._slots:
            for event in self._pull():
                self.emit(event)

    def start(self) -> None:
        if not self._slots:  # no observers, no thread to wake the interpreter
            return
        self._thread = threading.Thread(target=self._loop, name="milepost-dispatch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            self.poll()
            deferred, self._deferred = self._deferred, None
            if deferred is not None:
                deferred()

    def on_dispatch_thread(self) -> bool:
        return self._thread is not None and self._thread is threading.current_thread()

    def defer(self, action: Callable[[], None]) -> None:
        """Runs `action` on the dispatcher thread once its current delivery is over (for work
        that would wait on that delivery, such as ending the run from inside an observer)."""
        self._deferred = action

    def poll(self, final: bool = False) -> None:
        """Delivers queued events, then snapshots to the observers that are due."""
        with self._poll_lock:
            self.pull_now()  # events from worker processes
            with self._lock:
                events = list(self._queue)
                self._queue.clear()
            boundary = False
            for ev in events:
                boundary |= isinstance(ev, BOUNDARY_EVENTS)
                for slot in self._slots:
                    self._call(slot, "on_event", ev)
            now = self._now()
            snap: Optional[Snapshot] = None
            for slot in self._slots:
                if self._due(slot, now, final, boundary):
                    snap = snap or self._snapshot()
                    self._call(slot, "on_snapshot", snap)
            if final:
                for slot in self._slots:
                    self._call(slot, "close")

    @staticmethod
    def _due(slot: _Slot, now: float, final: bool, boundary: bool) -> bool:
        if final or (boundary and slot.boundaries):
            slot.next_due = now + (slot.interval or 0.0)
            return True
        if slot.interval is None or now < slot.next_due:
            return False
        slot.next_due = now + slot.interval
        return True

    @staticmethod
    def _call(slot: _Slot, method: str, *args: Any) -> None:
        try:
            getattr(slot.observer, method)(*args)
        except Exception as e:  # noqa: BLE001 - an observer must never break the job
            slot.failures += 1
            if slot.failures == 1:
                _log.error(
                    "milepost: observer %r failed in %s: %s: %s (further errors from it are not shown)",
                    slot.observer, method, type(e).__name__, e,
                )

    def close(self) -> None:
        """Stops the thread and makes the final delivery (every observer gets a last snapshot)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self.poll(final=True)

    def observer_failures(self) -> int:
        return sum(s.failures for s in self._slots)
