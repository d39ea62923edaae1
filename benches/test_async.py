"""Group "async": `milepost.async_map` next to a bare `asyncio.gather` bounded by a semaphore
of the same concurrency, in the same event loop, rounds alternated so that noise hits both.

- overhead: 10,000 no-op coroutines at concurrency 100; the report is the median round of each
  and their ratio (issue 12's goal: under 5% slower).
- event-loop lag: 1,000 items in flight at once, each `await asyncio.sleep(0.01)`, while a probe
  measures how late `asyncio.sleep(0.001)` wakes up (median and max).

Nothing asserts a time: a CI smoke run (--benchmark-disable) runs one short round and checks
the counts.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any, Awaitable, Callable, Dict, List

import pytest

import milepost

pytestmark = pytest.mark.benchmark(group="async")


async def noop(x: int) -> int:
    return x


async def nap(x: int) -> int:
    await asyncio.sleep(0.01)
    return x


async def gathered(fn: Callable[[int], Awaitable[int]], n: int, concurrency: int) -> List[int]:
    """The baseline: one task per item, a semaphore bounding how many run."""
    sem = asyncio.Semaphore(concurrency)

    async def one(x: int) -> int:
        async with sem:
            return await fn(x)

    return await asyncio.gather(*(one(x) for x in range(n)))


def _pct(value: float, base: float) -> float:
    return round((value / base - 1) * 100, 1)


def test_async_map_overhead(benchmark: Any) -> None:
    n, concurrency = 10_000, 100
    rounds = 1 if benchmark.disabled else 15
    times: Dict[str, List[float]] = {"gather": [], "async_map": []}

    async def main() -> milepost.Run:
        with milepost.Run("async-bench", display="none") as run:
            for r in range(rounds):
                t0 = time.perf_counter()
                base = await gathered(noop, n, concurrency)
                t1 = time.perf_counter()
                out = await milepost.async_map(noop, range(n), concurrency, description=f"r{r}")
                t2 = time.perf_counter()
                assert out == base == list(range(n))
                times["gather"].append(t1 - t0)
                times["async_map"].append(t2 - t1)
            return run

    run = benchmark.pedantic(lambda: asyncio.run(main()), rounds=1, iterations=1)
    assert run.snapshot().root["done"] == n * rounds
    g, m = statistics.median(times["gather"]), statistics.median(times["async_map"])
    benchmark.extra_info["report"] = {
        "items": n,
        "concurrency": concurrency,
        "rounds": rounds,
        "gather + semaphore, median ms": round(g * 1000, 1),
        "async_map, median ms": round(m * 1000, 1),
        "async_map us/item": round(m / n * 1e6, 2),
        "gather us/item": round(g / n * 1e6, 2),
        "async_map vs gather (%)": _pct(m, g),
    }


async def _lag_under(work: Awaitable[Any]) -> List[float]:
    """How late `asyncio.sleep(0.001)` wakes up, again and again, while `work` runs."""
    lags: List[float] = []
    job = asyncio.ensure_future(work)
    while not job.done():
        t0 = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - t0 - 0.001)
    await job
    return lags


def test_event_loop_lag(benchmark: Any) -> None:
    concurrency = 1000
    n = 2_000 if benchmark.disabled else 30_000
    rounds = 1 if benchmark.disabled else 3
    lags: Dict[str, List[float]] = {"gather": [], "async_map": []}

    async def main() -> None:
        with milepost.Run("async-lag", display="none") as run:
            for r in range(rounds):
                lags["gather"] += await _lag_under(gathered(nap, n, concurrency))
                lags["async_map"] += await _lag_under(
                    milepost.async_map(nap, range(n), concurrency, description=f"r{r}")
                )
            assert run.snapshot().root["done"] == n * rounds

    benchmark.pedantic(lambda: asyncio.run(main()), rounds=1, iterations=1)
    report: Dict[str, Any] = {"items in flight": concurrency, "items": n, "rounds": rounds}
    for label, values in lags.items():
        report[f"{label}: probes"] = len(values)
        report[f"{label}: lag median (ms)"] = round(statistics.median(values) * 1000, 2)
        report[f"{label}: lag max (ms)"] = round(max(values) * 1000, 2)
    benchmark.extra_info["report"] = report
