"""Items that fail a set number of times before they succeed, for test_retries.py: the count of
attempts lives in the process that runs them (a retry runs in the same worker), so that they
work alike in threads, forked and spawned worker processes."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

from milepost import retrying

_attempts: Counter = Counter()
_lock = threading.Lock()


class Flaky(Exception):
    """The error a flaky item raises before it succeeds."""


def attempt(x: int) -> int:
    """This attempt's number for item `x` (1 first), in this process."""
    with _lock:
        _attempts[x] += 1
        return _attempts[x]


def fails_twice_every_7th(x: int) -> int:
    """Every 7th item fails twice, then returns its square."""
    if x % 7 == 0 and attempt(x) <= 2:
        raise Flaky(f"flaky {x}")
    return x * x


def fails_three_times(x: int) -> int:
    """Fails three times (`Flaky: attempt n`), then returns its square."""
    n = attempt(x)
    if n <= 3:
        raise Flaky(f"attempt {n}")
    return x * x


def type_error_once(x: int) -> int:
    """Raises TypeError on its first attempt (not retried unless asked)."""
    if attempt(x) == 1:
        raise TypeError(f"type {x}")
    return x


def reset() -> None:
    """Forgets the attempts counted in this process (threads share them across tests)."""
    with _lock:
        _attempts.clear()


def always_fails_after_marking(path: str) -> None:
    """Creates `path` (the test then cancels the run), then fails: the run is cancelled while
    the item waits to be tried again."""
    retrying.jitter = _longest  # the longest wait (a spawned worker: the test cannot set it)
    with open(path, "a"):
        pass
    raise Flaky("always")


def _longest() -> float:
    return 1.0


def fails_while_flagged_then_waits(pair: tuple) -> int:
    """Item `(x, folder)`: 2 and 5 fail while `folder/failing` exists; 7 waits (10 s at most) for
    `folder/go`, holding its chunk out; then `x` comes back."""
    x, folder = pair
    if x in (2, 5) and os.path.exists(os.path.join(folder, "failing")):
        raise Flaky(f"flagged {x}")
    if x == 7:
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(folder, "go")) and time.monotonic() < deadline:
            time.sleep(0.005)
    return x
