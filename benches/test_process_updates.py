"""Group "processes": counting from worker processes.

1. Per-update cost inside a worker: `task.advance()` into shared memory against a bare loop
   and against the queue-per-item pattern (a message to the parent per item), measured in
   the same worker process.
2. A 10,000-item job of ~1 ms CPU items on a 2-process pool: `milepost.process_map` against
   `ProcessPoolExecutor.map` with the same chunk size and no progress at all, alternating
   rounds, medians (the counts of the milepost run are checked exact).
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import statistics
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import milepost

sys.path.insert(0, str(Path(__file__).parent))
from child_update import busy, measure, set_queue  # noqa: E402

pytestmark = pytest.mark.benchmark(group="processes")


def test_update_cost_in_a_worker(benchmark) -> None:
    n, queue_n = (20_000, 2_000) if benchmark.disabled else (2_000_000, 100_000)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with milepost.Run("updates", display="none") as run:
        phase = run.phase("count")
        drained = []
        drain = threading.Thread(target=lambda: drained.extend(queue.get() for _ in range(queue_n)), daemon=True)
        drain.start()
        with ProcessPoolExecutor(1, mp_context=ctx, initializer=set_queue, initargs=(queue,)) as pool:
            result = {}

            def go():
                result.update(pool.submit(measure, phase, n, queue_n).result())

            benchmark.pedantic(go, rounds=1, iterations=1)
        drain.join(60)
        counted = run.snapshot().find("count")["done"]
    assert counted == 2 * n, "every update from the worker is in the parent's count"
    assert len(drained) == queue_n
    per = {k: v / (queue_n if k == "queue" else n) * 1e9 for k, v in result.items()}
    benchmark.extra_info["report"] = {
        "updates per loop": n,
        "bare loop, ns/iteration": round(per["bare"], 1),
        "advance() in a worker, ns/update over bare": round(per["shared"] - per["bare"], 1),
        "queue-per-item pattern, ns/update over bare": round(per["queue"] - per["bare"], 1),
        "queue / advance cost ratio": round((per["queue"] - per["bare"]) / max(per["shared"] - per["bare"], 0.1), 1),
    }


def _calibrate(target: float = 1e-3) -> int:
    k = 20_000
    best = min(_time(busy, k) for _ in range(5))
    return max(1, round(k * target / best))


def _time(f, k):
    t = time.perf_counter()
    f(0, k)
    return time.perf_counter() - t


def test_one_ms_items_on_two_processes(benchmark) -> None:
    items, rounds = (400, 1) if benchmark.disabled else (10_000, 5)
    k = _calibrate()
    work = functools.partial(busy, k=k)
    ctx = mp.get_context("fork")
    chunk = 16
    plain, tracked = [], []

    def a():
        t = time.perf_counter()
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            list(pool.map(work, range(items), chunksize=chunk))
        plain.append(time.perf_counter() - t)

    def b():
        t = time.perf_counter()
        with milepost.Run("bench", display="none") as run:
            milepost.process_map(work, range(items), workers=2, chunksize=chunk, description="map", mp_context=ctx)
            counted = run.snapshot().find("map")["done"]
        tracked.append(time.perf_counter() - t)
        assert counted == items

    def ab():
        for r in range(rounds):
            for f in (a, b) if r % 2 == 0 else (b, a):
                f()

    benchmark.pedantic(ab, rounds=1, iterations=1)
    ratios = [(y / x - 1) * 100 for x, y in zip(plain, tracked)]
    benchmark.extra_info["report"] = {
        "items, ~1 ms each": items,
        "rounds": rounds,
        "ProcessPoolExecutor.map, median s": round(statistics.median(plain), 3),
        "milepost.process_map, median s": round(statistics.median(tracked), 3),
        "slowdown, median of rounds (%)": round(statistics.median(ratios), 2),
        "spread of rounds (%)": f"{min(ratios):+.2f}..{max(ratios):+.2f}",
    }
