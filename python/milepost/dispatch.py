"""Delivery: moves lifecycle events and sampled snapshots to observers, off the job's threads.

Events go into a bounded queue per dispatcher (a full queue counts what it drops instead of
growing); a background thread drains it every tick and hands out snapshots when observers'
intervals are due. A run has two dispatchers (see `Delivery`): one for its own observers
(displays, history, files), whose final delivery the run's end waits for, on a thread started
only once the run has lived 50 ms (`service`: a short run makes its one delivery itself and
starts no thread), and one for the observers the user passed, on a thread of its own, which
never holds up the job. With an injected clock there are no threads: `poll()` does the same
work on demand.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Iterable, List, Optional, Sequence

from .errors import InvalidValueError
from .events import BOUNDARY_EVENTS, Event
from .service import SERVICE, Client

if TYPE_CHECKING:
    from .observers import Observer
    from .snapshot import Snapshot

_log = logging.getLogger("milepost")

#: Most events waiting for delivery; past this they are dropped and counted.
MAX_QUEUED_EVENTS = 10_000

#: The dispatcher never wakes more often than this, whatever an observer asks for.
MIN_TICK = 0.01

#: Seconds the end of a run waits for its own observers' final delivery (the history's last
#: write, the last frame, the dashboard's last events) before it goes on without them.
OWN_CLOSE_TIMEOUT = 30.0

#: Seconds the end of a run waits for the user's observers' final delivery: in the common
#: case they have seen the run's end when `with Run` is left (and `stop()` follows on their
#: thread); one that takes longer finishes in the background.
USER_CLOSE_GRACE = 0.2

#: Seconds the interpreter's exit waits for user observers still finishing their delivery.
USER_EXIT_TIMEOUT = 10.0

#: Seconds a user observers' thread waits, after their final delivery, for the run to let go
#: of everything before their `stop()` (the run's end waits OWN_CLOSE_TIMEOUT at most first).
RELEASE_WAIT = OWN_CLOSE_TIMEOUT + 10.0


def check_interval(value: Any, what: str) -> Optional[float]:
    """`None`, or a positive finite number of seconds; anything else is an error naming it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise InvalidValueError(f"{what} must be a positive number of seconds or None, got {value!r}")
    return float(value)


def is_own(observer: Observer) -> bool:
    """Whether `observer` is one of milepost's own (a display, the history, a file, the
    dashboard, the console summary): fast, and waited for at the run's end. Anything else,
    subclasses of milepost's classes included, is the user's."""
    return type(observer).__module__.startswith("milepost.")


class _Slot:
    """An observer, its interval (read once) and its delivery bookkeeping."""

    __slots__ = ("observer", "interval", "boundaries", "next_due", "failures", "lifecycle", "started")

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        #: `start()` and `stop()` are the observer protocol's only on classes that say so
        #: (`BaseObserver` does): on anything else they may mean something else (a
        #: `threading.Thread` subclass has a `start()` of its own).
        self.lifecycle = getattr(observer, "lifecycle", False) is True
        self.started = False
        name = type(observer).__name__
        self.interval = check_interval(getattr(observer, "interval", None), f"{name}.interval")
        self.boundaries = bool(getattr(observer, "snapshot_on_boundaries", False))
        self.next_due = 0.0
        self.failures = 0


class Dispatcher:
    """Delivers events and due snapshots to a group of observers, on one background thread."""

    def __init__(
        self,
        observers: Sequence[Observer],
        snapshot: Callable[[], Snapshot],
        now: Callable[[], float],
        tick: float = 0.25,
        pull: Optional[Callable[[], None]] = None,
        name: str = "milepost-dispatch",
        late: bool = False,
    ) -> None:
        self._slots = [_Slot(o) for o in observers]
        self._pull = pull
        self._snapshot = snapshot
        self._now = now
        self._name = name
        self._queue: Deque[Event] = deque()
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self.dropped = 0
        self.snapshot_failures = 0
        self._tick = max(MIN_TICK, min([tick, *(s.interval for s in self._slots if s.interval)]))
        #: Set by `close()`; the thread (if any) waits on `_wakeup`, made when it starts: a
        #: run without observers (or served by the shared thread) makes no Event at all.
        self._stopping = False
        self._wakeup: Optional[threading.Event] = None
        self._thread: Optional[threading.Thread] = None
        self._deferred: Optional[Callable[[], None]] = None
        self._closed = False
        #: The observers' `stop()` follows their final delivery, once the run has let go of
        #: everything (`release()`); else the caller stops them (see `Delivery`).
        self._stop_after = False
        self._released: Optional[threading.Event] = None
        #: Set by the thread once its final delivery is over (`wait_delivered`).
        self._delivered: Optional[threading.Event] = None
        self._stopped = False
        #: The thread is started late, by the process's starter (`service`): a run that ends
        #: before then makes its one delivery itself, and never has a thread.
        self._late = late
        self._client: Optional[Client] = None

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

    def set_pull(self, pull: Optional[Callable[[], None]]) -> None:
        """What this dispatcher calls first at every delivery (taking worker events)."""
        self._pull = pull

    def start(self, observers_here: bool = False) -> None:
        """Starts the thread, which calls the observers' `start()` (unless `observers_here`:
        then it happens now, on this thread) and delivers what is queued at once."""
        if observers_here:
            self.start_observers()
        if not self._slots:  # no observers, no thread to wake the interpreter
            return
        if self._late:
            if not observers_here:
                self.start_observers()
            self._client = SERVICE.add(self._start_thread)
            return
        self._start_thread(not observers_here)

    def _start_thread(self, start_observers: bool = False) -> None:
        self._wakeup, self._released, self._delivered = threading.Event(), threading.Event(), threading.Event()
        if self._stopping:  # closed while the starter was on its way: the thread's loop
            self._wakeup.set()  # makes the final delivery at once
        thread = threading.Thread(target=self._loop, args=(start_observers,), name=self._name, daemon=True)
        thread.start()
        self._thread = thread

    def start_observers(self) -> None:
        for slot in self._slots:
            if slot.lifecycle and not slot.started:
                slot.started = True
                self._call(slot, "start")

    def stop_observers(self) -> None:
        """Each started observer's `stop()`, once, whoever asks first."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for slot in self._slots:
            if slot.started:
                self._call(slot, "stop")

    def _loop(self, start: bool) -> None:
        if start:
            self.start_observers()
        while True:
            final = self._stopping
            self.poll(final=final)
            deferred, self._deferred = self._deferred, None
            if deferred is not None:
                deferred()
            if final or self._closed:
                assert self._delivered is not None  # made before the thread starts
                self._delivered.set()
                if self._stop_after and self._released is not None and self._released.wait(RELEASE_WAIT):
                    self.stop_observers()
                return
            assert self._wakeup is not None  # made before the thread starts
            self._wakeup.wait(self._tick)

    def on_dispatch_thread(self) -> bool:
        return self._thread is not None and self._thread is threading.current_thread()

    def defer(self, action: Callable[[], None]) -> None:
        """Runs `action` on the dispatcher thread once its current delivery is over (for work
        that would wait on that delivery, such as ending the run from inside an observer)."""
        self._deferred = action

    def poll(self, final: bool = False) -> None:
        """Delivers queued events, then snapshots to the observers that are due; with `final`,
        a last snapshot to every observer and `close()` (once)."""
        with self._poll_lock:
            if self._closed:
                return
            if self._pull is not None:
                self._pull()  # events from worker processes
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
                    snap = snap or self._take_snapshot()
                    if snap is None:
                        break  # nothing to deliver this time; events and close() go on
                    self._call(slot, "on_snapshot", snap)
            if final:
                self._closed = True
                for slot in self._slots:
                    self._call(slot, "close")

    def _take_snapshot(self) -> Optional[Snapshot]:
        """The snapshot to deliver, or None if taking it failed (said once): the thread that
        delivers must outlive any one failure, or the run's end would wait on a dead one."""
        try:
            return self._snapshot()
        except Exception as e:  # noqa: BLE001 - logged, the delivery goes on
            self.snapshot_failures += 1
            if self.snapshot_failures == 1:
                _log.error(
                    "milepost: taking a snapshot failed: %s: %s (further failures are not shown)", type(e).__name__, e
                )
            return None

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
        call = getattr(slot.observer, method, None)
        if call is None:  # `start` and `stop` are optional
            return
        try:
            call(*args)
        except Exception as e:  # noqa: BLE001 - an observer must never break the job
            slot.failures += 1
            if slot.failures == 1:
                _log.error(
                    "milepost: observer %r failed in %s: %s: %s (further errors from it are not shown)",
                    slot.observer,
                    method,
                    type(e).__name__,
                    e,
                )

    def close(self, timeout: Optional[float], stop_after: bool = False) -> bool:
        """Makes the final delivery (every observer gets a last snapshot, then `close()`, and
        with `stop_after` then `stop()`) on the dispatcher thread, and waits for it at most
        `timeout` seconds (0: not at all). Without a thread it happens here. True when it is
        over."""
        self._stop_after |= stop_after
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._client is not None and not SERVICE.take_back(self._client):
            SERVICE.started(self._client)  # its thread is being started: a moment
        if self._wakeup is not None:
            self._wakeup.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            self.poll(final=True)
            return True
        if timeout:
            thread.join(timeout)
        return not thread.is_alive()

    def wait_delivered(self, timeout: float) -> None:
        """Waits at most `timeout` seconds for the thread's final delivery (after `close`)."""
        if self._delivered is not None and self._thread is not threading.current_thread():
            self._delivered.wait(timeout)

    def release(self) -> None:
        """The run has let go of everything (its display, its threads): the observers closed
        with `stop_after` are stopped now, on their thread if it is still there."""
        if self._released is not None:
            self._released.set()
        thread = self._thread
        if self._stop_after and (thread is None or thread is threading.current_thread() or not thread.is_alive()):
            self.stop_observers()

    def observer_failures(self) -> int:
        return sum(s.failures for s in self._slots)


#: User dispatchers whose final delivery may still be going on: the interpreter's exit waits
#: for them (bounded), as they run on daemon threads.
_finishing: "weakref.WeakSet[Dispatcher]" = weakref.WeakSet()


@atexit.register
def _wait_for_user_observers() -> None:
    for d in list(_finishing):
        if not d.close(USER_EXIT_TIMEOUT):
            _log.warning(
                "milepost: observers %r did not finish within %.0f s of the interpreter's exit",
                d.observers,
                USER_EXIT_TIMEOUT,
            )


class Delivery:
    """A run's two dispatchers: its own observers (displays, history, files, dashboard) on a
    thread started late (see `service`), the user's on a thread of their own. Every event goes to
    both. The end of the run waits for its own observers' final delivery (bounded) and never
    for the user's, which finish in the background (the interpreter's exit waits for them,
    bounded): an observer that sleeps holds up neither the job nor the history."""

    def __init__(
        self,
        observers: Iterable[Observer],
        snapshot: Callable[[], Snapshot],
        now: Callable[[], float],
        pull: Callable[[], List[Event]],
    ) -> None:
        observers = list(observers)
        self._pull_source = pull
        self._pulling = threading.Lock()
        self.own = Dispatcher([o for o in observers if is_own(o)], snapshot, now, pull=self.pull_now, late=True)
        self.user = Dispatcher([o for o in observers if not is_own(o)], snapshot, now, name="milepost-observers")
        #: Whether any observer takes events (none: an event need not even be made). Asked
        #: for every event a run would emit: kept, not worked out each time.
        self.listening = bool(observers)

    @property
    def observers(self) -> List[Observer]:
        return [*self.own.observers, *self.user.observers]

    @property
    def dropped(self) -> int:
        """Events some observer missed because its queue was full (the larger of the two)."""
        return max(self.own.dropped, self.user.dropped)

    def add(self, observer: Observer) -> None:
        (self.own if is_own(observer) else self.user).add(observer)
        self.listening = True

    def emit(self, event: Event) -> None:
        self.own.emit(event)
        self.user.emit(event)

    def pull_now(self) -> None:
        """Queues the worker processes' events waiting now, for both dispatchers (one thread at
        a time: the events are queued in the order they were taken)."""
        with self._pulling:
            for event in self._pull_source():
                self.emit(event)

    def start(self, threads: bool = True) -> None:
        """The observers' `start()`: the run's own here and now (its display is up before
        the job runs), the user's on their thread. Without `threads` (an injected clock),
        everything happens here, in `poll()` and `close()`."""
        if not self.own.observers:
            # Worker events are pulled by whichever thread runs.
            self.own.set_pull(None)
            self.user.set_pull(self.pull_now)
        if not threads:
            self.own.start_observers()
            self.user.start_observers()
            return
        self.own.start(observers_here=True)
        self.user.start()

    def poll(self) -> None:
        self.own.poll()
        self.user.poll()

    def on_dispatch_thread(self) -> Optional[Dispatcher]:
        """The dispatcher whose thread this is, if any."""
        return next((d for d in (self.own, self.user) if d.on_dispatch_thread()), None)

    def close(self) -> None:
        """The final delivery: waited for (bounded) for the run's own observers, for a moment
        (`USER_CLOSE_GRACE`) for the user's, then left to the background (their `stop()`
        follows on their thread)."""
        if not self.own.close(OWN_CLOSE_TIMEOUT):
            _log.warning(
                "milepost: the run's observers %r did not finish within %.0f s; going on without them",
                self.own.observers,
                OWN_CLOSE_TIMEOUT,
            )
        if not self.user.close(0, stop_after=True):
            self.user.wait_delivered(USER_CLOSE_GRACE)
            _finishing.add(self.user)

    def stop_own(self) -> None:
        """The run's own observers' `stop()`, here: after the final delivery, the display
        draws its last frame and gives the streams back."""
        self.own.stop_observers()

    def release(self) -> None:
        """The run has let go of everything: the user's observers are stopped (on their
        thread)."""
        self.user.release()

    def observer_failures(self) -> int:
        return self.own.observer_failures() + self.user.observer_failures()
