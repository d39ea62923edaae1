"""Group "store": the history store.

1. Throughput: item rows written per second by the store's background thread.
2. Overhead: a 100,000-item job of ~100 µs items with the history store against the same
   job without it, in fresh processes, alternating, paired rounds (median of the ratios).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from milepost.persistence import Store

pytestmark = pytest.mark.benchmark(group="store")

CHILD = Path(__file__).with_name("child_store.py")


def test_item_rows_per_second(benchmark) -> None:
    n = 20_000 if benchmark.disabled else 500_000
    result = {}

    def write():
        store = Store(Path(tempfile.mkdtemp()) / "runs.db")
        store.bind_run("run")
        names = [f"item-{i}" for i in range(n)]
        t = time.perf_counter()
        for name in names:
            store.item("map", name, "done", 0.0, 0.001, None, None)
        assert store.flush(timeout=300)
        result["seconds"] = time.perf_counter() - t
        assert store.written == n
        store.close()

    benchmark.pedantic(write, rounds=1, iterations=1)
    benchmark.extra_info["report"] = {
        "rows": n,
        "rows per second (queued and committed)": round(n / result["seconds"]),
    }


def _calibrate(target: float = 100e-6) -> int:
    sys.path.insert(0, str(CHILD.parent))
    from child_store import work

    k = 2000
    best = min(_time(work, k) for _ in range(5))
    return max(1, round(k * target / best))


def _time(f, k):
    t = time.perf_counter()
    f(k)
    return time.perf_counter() - t


def _child(mode: str, n: int, k: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(CHILD), mode, str(n), str(k)], capture_output=True, text=True, check=True, timeout=600
    )
    return json.loads(out.stdout)


def test_history_overhead_on_100_us_items(benchmark) -> None:
    n, rounds = (2_000, 1) if benchmark.disabled else (100_000, 5)
    k = _calibrate()
    plain, kept = [], []

    def ab():
        for r in range(rounds):
            for mode in ("none", "history") if r % 2 == 0 else ("history", "none"):
                res = _child(mode, n, k)
                assert res["done"] == n
                if mode == "history":
                    assert res["rows"] == n, "every item is in the store"
                    kept.append(res["seconds"])
                else:
                    plain.append(res["seconds"])

    benchmark.pedantic(ab, rounds=1, iterations=1)
    ratios = [(h / p - 1) * 100 for h, p in zip(kept, plain)]
    benchmark.extra_info["report"] = {
        "items, ~100 µs each": n,
        "rounds": rounds,
        "without history, median s": round(statistics.median(plain), 3),
        "with history, median s": round(statistics.median(kept), 3),
        "slowdown, median of rounds (%)": round(statistics.median(ratios), 2),
        "spread of rounds (%)": f"{min(ratios):+.2f}..{max(ratios):+.2f}",
    }
