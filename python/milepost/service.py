"""One thread per process that starts the runs' delivery threads, late.

A run's own observers (its display, history, files) get a delivery thread of their own, so
that one stalled observer (a display writing to a pipe nobody reads) holds up no other run.
Starting and joining that thread was most of what a short `track()` loop cost, so a run's
thread is started only once the run has lived `FIRST_DELIVERY` seconds: this thread starts it
then (starting a thread never waits on anybody's observers). A run that ends before then makes
its one delivery, its last, itself (`take_back`) and never has a thread.

The thread is a daemon started on first use, and again in a forked child, which has no such
thread and forgets its parent's runs. Its lock is a plain lock and it is woken through a
C-implemented queue, never a `Condition`: a Ctrl-C landing inside a Condition's Python
`__enter__` can leave its lock held for good, and every later run would hang at its start.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Callable, List, Optional

_log = logging.getLogger("milepost")

#: Seconds after a run's start that its delivery thread is started.
FIRST_DELIVERY = 0.05

#: Seconds after the last run left that the thread keeps looking for new ones by itself.
IDLE_POLL = 1.0


class Client:
    """A run waiting for its delivery thread: `start` is called once, at `due`."""

    __slots__ = ("start", "due", "state")

    def __init__(self, start: Callable[[], None]) -> None:
        self.start = start
        self.due = time.monotonic() + FIRST_DELIVERY
        #: WAITING, then STARTING while the thread calls `start`, then STARTED; or TAKEN.
        self.state = WAITING


WAITING, STARTING, STARTED, TAKEN = range(4)


class Service:
    """The starter thread and the runs waiting for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake: "queue.SimpleQueue[bool]" = queue.SimpleQueue()
        self._clients: List[Client] = []
        self._thread: Optional[threading.Thread] = None
        #: When the thread wakes by itself next (`inf`: only when woken): a run due later
        #: joins without waking it (a wake-up is a GIL switch the job's thread pays for).
        self._next_wake = float("inf")

    def add(self, start: Callable[[], None]) -> Client:
        """Calls `start` FIRST_DELIVERY seconds from now, on this service's thread, unless the
        client is taken back first."""
        client = Client(start)
        with self._lock:
            self._clients.append(client)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="milepost-starter", daemon=True)
                self._thread.start()
            wake = client.due < self._next_wake
        if wake:
            self._wake.put(True)
        return client

    def take_back(self, client: Client) -> bool:
        """Takes `client` off the list if `start` has not been called: True, and it never will
        be. False once it was (or is being) called: wait for it with `started`."""
        with self._lock:
            if client.state != WAITING:
                return False
            client.state = TAKEN
            self._clients.remove(client)
            return True

    @staticmethod
    def started(client: Client, timeout: float = 5.0) -> bool:
        """Waits (briefly: starting a thread takes microseconds) until `client`'s `start` has
        returned; False if it did not within `timeout`."""
        deadline = time.monotonic() + timeout
        while client.state == STARTING:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        return client.state == STARTED

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._lock:
                now = time.monotonic()
                due = [c for c in self._clients if c.due <= now]
                for client in due:
                    client.state = STARTING
                    self._clients.remove(client)
                wait = min((c.due for c in self._clients), default=None)
                if self._clients or due:
                    idle_since = now
                elif now - idle_since < IDLE_POLL:
                    # Runs came and went a moment ago: more may come (a job wrapping many
                    # short loops). Looking again at FIRST_DELIVERY spares each of them
                    # waking this thread when it joins (a GIL switch on the job's thread).
                    wait = now + FIRST_DELIVERY
                self._next_wake = 0.0 if due else float("inf") if wait is None else wait
            for client in due:
                try:
                    client.start()
                except Exception as e:  # noqa: BLE001 - one run's failure must not stop the others'
                    _log.error("milepost: starting a run's delivery failed: %s: %s", type(e).__name__, e)
                finally:
                    client.state = STARTED
            if due:
                continue
            try:
                self._wake.get(timeout=None if wait is None else max(0.0, wait - now))
            except queue.Empty:
                pass
            while not self._wake.empty():
                self._wake.get_nowait()

    def _forget(self) -> None:
        """In a forked child: no thread, and the parent's runs are not ours to start."""
        self._lock = threading.Lock()
        self._wake = queue.SimpleQueue()
        self._clients = []
        self._thread = None
        self._next_wake = float("inf")


SERVICE = Service()
os.register_at_fork(after_in_child=SERVICE._forget)  # noqa: SLF001 - the service's own reset
