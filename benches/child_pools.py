"""The items of test_pools.py, importable by the pools' workers: ~10 µs of busy work, and a
0.2 ms sleep."""

from __future__ import annotations

import time

from busywork import work


def busy(item: int, k: int) -> int:
    """`k` multiply-adds of Python (test_pools calibrates `k` to ~10 µs)."""
    return work(k) + item


def nap(item: int, seconds: float) -> int:
    time.sleep(seconds)
    return item
