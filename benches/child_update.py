"""Worker side of test_process_updates.py: per-update cost inside a worker process.

`measure(task, n, queue_n)` runs in a spawned worker: a bare loop, `task.advance()` per
iteration (shared memory), and the queue-per-item pattern (`queue.put(1)` to the parent),
and returns their seconds.
"""

from __future__ import annotations

import time
from typing import Any, Dict

_queue: Any = None


def set_queue(queue: Any) -> None:
    """Pool initializer: a multiprocessing queue can only reach a worker at its start."""
    global _queue
    _queue = queue


def measure(task: Any, n: int, queue_n: int) -> Dict[str, float]:
    def bare() -> None:
        for _ in range(n):
            pass

    advance = task.advance

    def shared() -> None:
        for _ in range(n):
            advance()

    put = _queue.put

    def per_item_queue() -> None:
        for _ in range(queue_n):
            put(1)

    out: Dict[str, float] = {}
    for name, fn in (("bare", bare), ("shared", shared), ("bare", bare), ("shared", shared)):
        t = time.perf_counter()
        fn()
        out[name] = min(out.get(name, float("inf")), time.perf_counter() - t)
    t = time.perf_counter()
    per_item_queue()
    out["queue"] = time.perf_counter() - t
    return out


def busy(x: int, k: int) -> int:
    """About a millisecond of CPU work at the `k` the parent calibrated."""
    s = 0
    for i in range(k):
        s += i * i
    return s + x
