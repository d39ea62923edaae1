"""Group "dask": what counting from Dask workers costs, with the transport forced to Dask's
channels (`MILEPOST_TRANSPORT=dask`) on a real LocalCluster of worker processes (loopback).
Not named `test_dask.py`: Dask's workers import a task's module by its name, and the tests'
`test_dask` would then be this one.

- `advance()` inside a Dask task against a bare loop and a C method call in the same task;
- messages a second each worker sends while a map runs (the goal: at most 4);
- a 10,000-item map of 1 ms items with `milepost.dask.map` against the same chunks mapped
  with plain `Client.map` (paired rounds in alternating order, so drift hits both alike).

The map runs on one worker process: this machine has two cores, and the client and the
scheduler need one of their own, as they have on a cluster (they run on another host). With
two workers the two cores are shared by three busy processes, and whatever the client does
(plain Dask's share or milepost's) comes straight off the workers' time; that figure is
reported too.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Dict, Iterator, List

import pytest

distributed = pytest.importorskip("distributed")

import milepost  # noqa: E402
import milepost.dask as mdask  # noqa: E402

pytestmark = pytest.mark.benchmark(group="dask")


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def client(request: Any) -> Iterator[Any]:
    before = os.environ.get("MILEPOST_TRANSPORT")
    os.environ["MILEPOST_TRANSPORT"] = "dask"  # inherited by the worker processes
    # Loopback only, the scheduler's HTTP server on any free port (see tests/test_dask.py).
    cluster = distributed.LocalCluster(
        n_workers=request.param,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    )
    try:
        c = distributed.Client(cluster)
        try:
            c.wait_for_workers(request.param, timeout=60)
            yield c
        finally:
            c.close()
    finally:
        cluster.close()
        if before is None:
            os.environ.pop("MILEPOST_TRANSPORT", None)
        else:
            os.environ["MILEPOST_TRANSPORT"] = before


def _loops(phase: milepost.Task, n: int) -> Dict[str, float]:
    """In a worker: ns an iteration of a bare loop, a C method call, and `phase.advance()`."""
    s: set = set()
    out: Dict[str, List[float]] = {"bare": [], "c_call": [], "advance": []}
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            pass
        out["bare"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(n):
            s.discard(1)
        out["c_call"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(n):
            phase.advance()
        out["advance"].append(time.perf_counter() - t)
    return {k: min(v) / n * 1e9 for k, v in out.items()}


def test_advance_in_a_dask_task(benchmark: Any, client: Any) -> None:
    n = 20_000 if benchmark.disabled else 1_000_000
    with milepost.Run("bench-dask-advance", display="none", history=False) as run:
        phase = run.phase("count")
        got = benchmark.pedantic(lambda: client.submit(_loops, phase, n, pure=False).result(), rounds=1, iterations=1)
        here = _loops(phase, n)  # the same loops in the run's own process
    assert run.snapshot().find("count")["done"] == 10 * n  # counted remotely, all merged
    c_call, advance = got["c_call"] - got["bare"], got["advance"] - got["bare"]
    benchmark.extra_info["report"] = {
        "bare loop in the worker (ns/it)": round(got["bare"], 1),
        "C method call over bare (ns)": round(c_call, 1),
        "advance() in the worker over bare (ns)": round(advance, 1),
        "advance() in the run's process over bare (ns)": round(here["advance"] - here["bare"], 1),
        "advance() in the worker / C method call": round(advance / c_call, 2),
    }


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _cpu(client: Any) -> float:
    """CPU seconds used so far by this process (client and scheduler) and every worker."""
    return _process_cpu() + sum(client.run(_process_cpu).values())


def _spin(x: int) -> int:
    """About a millisecond of work (a sleep would leave the core to others and hide a cost)."""
    end = time.perf_counter() + 0.001
    while time.perf_counter() < end:
        pass
    return x


def _plain_chunk(chunk: List[int]) -> List[int]:
    return [_spin(x) for x in chunk]


def test_map_of_one_ms_items_against_plain_dask(benchmark: Any, client: Any) -> None:
    n, rounds = (400, 1) if benchmark.disabled else (10_000, 5)
    workers = len(client.nthreads())
    items = list(range(n))
    size = max(1, n // (workers * 8))  # the chunks milepost.dask.map makes by itself
    chunks = [items[i : i + size] for i in range(0, n, size)]
    seconds: Dict[str, List[float]] = {"plain": [], "milepost": []}
    cpu: Dict[str, List[float]] = {"plain": [], "milepost": []}
    with milepost.Run("bench-dask-map", display="none", history=False) as run:
        mdask.map(_spin, range(4), client=client)  # connected: the run's topic subscribed

        def plain() -> None:
            out = client.gather(client.map(_plain_chunk, chunks, pure=False))
            assert sum(len(c) for c in out) == n

        def counted() -> None:
            assert len(mdask.map(_spin, items, client=client, chunksize=size, description="map")) == n

        def ab() -> None:
            for r in range(rounds):
                for name, f in (("plain", plain), ("milepost", counted))[:: 1 if r % 2 else -1]:
                    c, t = _cpu(client), time.perf_counter()
                    f()
                    seconds[name].append(time.perf_counter() - t)
                    cpu[name].append(_cpu(client) - c)

        link = run.context.links[0]
        before = {k: v["seq"] for k, v in link.merger.stats().items()}
        started = time.monotonic()
        benchmark.pedantic(ab, rounds=1, iterations=1)
        elapsed = time.monotonic() - started
        sent = {k: v["seq"] - before.get(k, 0) for k, v in link.merger.stats().items()}
    maps = [node for node in run.snapshot().root["children"] if node["name"] == "map"]
    assert [node["done"] for node in maps] == [n] * rounds  # a phase a map, each exact
    ratios = [m / p - 1 for m, p in zip(seconds["milepost"], seconds["plain"], strict=True)]
    benchmark.extra_info["report"] = {
        "workers (1 thread each)": workers,
        "items a map": n,
        "rounds": rounds,
        "plain Dask map, median s": round(statistics.median(seconds["plain"]), 3),
        "milepost.dask.map, median s": round(statistics.median(seconds["milepost"]), 3),
        "slowdown, median of paired rounds (%)": round(statistics.median(ratios) * 100, 2),
        "slowdown, spread of rounds (%)": f"{min(ratios) * 100:+.2f}..{max(ratios) * 100:+.2f}",
        # CPU seconds of every process (client and scheduler here, the workers): the items spin
        # for 1 ms of wall time each, so what the cluster spends beyond that is the overhead,
        # and a busy neighbour on the machine moves it far less than it moves wall time.
        "CPU of all processes, plain, median s": round(statistics.median(cpu["plain"]), 3),
        "CPU of all processes, milepost, median s": round(statistics.median(cpu["milepost"]), 3),
        "extra CPU, median of paired rounds (% of plain)": round(
            statistics.median(m / p - 1 for m, p in zip(cpu["milepost"], cpu["plain"], strict=True)) * 100, 2
        ),
        # Over the whole A/B, half of which is milepost's maps: a worker sends at most 4 a
        # second while it counts, and a heartbeat a second while it does not.
        "messages a second per worker (max)": round(max(sent.values()) / elapsed, 2),
    }
