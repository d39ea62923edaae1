"""One delivery thread per process for the runs' own observers.

A run's own observers (its display, history, files) used to get a thread per run, started
when the run started and joined at its end: most of what a short `track()` loop cost. Every
run's own dispatcher now joins this one thread, which serves each when it is due. Joining is
a list append and a notify; a run's end waits only for its own final delivery (`Dispatcher`
does, bounded). The thread is a daemon started on first use, and again in a forked child,
which has no such thread and forgets its parent's dispatchers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, List, Optional

_log = logging.getLogger("milepost")

#: Seconds after a run's start that its first delivery is due.
FIRST_DELIVERY = 0.05

#: Seconds after the last run left that the thread keeps looking for new ones by itself.
IDLE_POLL = 1.0

#: What a client does when served: its delivery, then when it wants serving next
#: (`time.monotonic()` seconds), or None when it is done for good.
Step = Callable[[], Optional[float]]


class _Client:
    __slots__ = ("step", "due", "woken", "serving", "served")

    def __init__(self, step: Step) -> None:
        self.step = step
        # First served a moment after it joins: a bar that lives less than that (a job that
        # wraps many short loops) gets one delivery, its last, instead of two that its end
        # would wait on; a longer one shows up on screen within FIRST_DELIVERY of its start.
        self.due = time.monotonic() + FIRST_DELIVERY
        #: Woken while being served: served again at once, whatever the step asked.
        self.woken = False
        self.serving = False
        self.served = False


class Service:
    """The thread and the clients it serves."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._clients: List[_Client] = []
        self._thread: Optional[threading.Thread] = None
        #: When the thread wakes next by itself (`inf`: only when notified): a client due later
        #: joins without waking it (a wake-up is a GIL switch the job's thread pays for).
        self._next_wake = float("inf")

    @property
    def thread(self) -> Optional[threading.Thread]:
        return self._thread

    def add(self, step: Step) -> _Client:
        """Serves `step` from now on, the first time FIRST_DELIVERY seconds from now."""
        client = _Client(step)
        with self._cond:
            self._clients.append(client)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="milepost-dispatch", daemon=True)
                self._thread.start()
            if client.due < self._next_wake:
                self._cond.notify()
        return client

    def take_back(self, client: _Client) -> bool:
        """Takes `client` off the list if it was never served and is not being served: its
        run ends before its first delivery, and its caller makes that delivery itself rather
        than hand it to this thread and wait (two thread switches, most of a short loop's
        cost)."""
        with self._cond:
            if client.served or client.serving or client not in self._clients:
                return False
            self._clients.remove(client)
            return True

    def wake(self, client: _Client) -> None:
        """Serves `client` now (its run is ending)."""
        with self._cond:
            client.due = 0.0
            client.woken = True
            self._cond.notify()

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    due = [c for c in self._clients if c.due <= now]
                    if due:
                        for client in due:
                            client.woken = False
                            client.serving = True
                        break
                    wait = min((c.due for c in self._clients), default=None)
                    if self._clients:
                        idle_since = now
                    elif now - idle_since < IDLE_POLL:
                        # Runs came and went a moment ago: more may come (a job wrapping many
                        # short loops). Looking again at FIRST_DELIVERY spares each of them
                        # waking this thread when it joins (a GIL switch on the job's thread).
                        wait = now + FIRST_DELIVERY
                    self._next_wake = float("inf") if wait is None else wait
                    self._cond.wait(None if wait is None else wait - now)
                self._next_wake = 0.0  # serving: a client joining meanwhile is looked at next round
            for client in due:
                self._serve(client)

    def _serve(self, client: _Client) -> None:
        try:
            again = client.step()
        except BaseException as e:  # noqa: BLE001 - one client's failure must not stop the others'
            _log.error("milepost: a run's delivery failed: %s: %s", type(e).__name__, e)
            again = None
        with self._cond:
            client.serving, client.served = False, True
            if again is None:
                self._clients.remove(client)
            elif not client.woken:
                client.due = again

    def _forget(self) -> None:
        """In a forked child: no thread, and the parent's runs are not ours to serve."""
        self._cond = threading.Condition(threading.Lock())
        self._clients = []
        self._thread = None
        self._next_wake = float("inf")


SERVICE = Service()
os.register_at_fork(after_in_child=SERVICE._forget)  # noqa: SLF001 - the service's own reset
