"""Group "pools": the pools against `concurrent.futures` doing the same work.

1. `process_map` over ~10 µs items of busy work (2 worker processes, the same chunk size)
   against `ProcessPoolExecutor.map`, with the run's history on (every item's row stored) and
   off.
2. `thread_map` over items sleeping 0.2 ms on 8 threads against `ThreadPoolExecutor.map`.

The machine is shared and noisy: the contenders take turns, round after round, in an order
that turns each round, and the report gives the median of the rounds' ratios (each round's
milepost time over the same round's executor time) and their spread. Nothing asserts a time;
the counts, the results and (history on) the rows are checked exact. Each median ratio comes
with a 90% bootstrap interval: how far this machine's noise alone could move it. CPU time (the
pools' workers included) is reported beside wall time: on a machine others share, it moves
less. Under `--benchmark-disable` (CI) one short round runs.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import random
import resource
import sqlite3
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest

import milepost

sys.path.insert(0, str(Path(__file__).parent))
from busywork import work  # noqa: E402
from child_pools import busy, nap  # noqa: E402

pytestmark = pytest.mark.benchmark(group="pools")

WORK_SECONDS = 10e-6
NAP_SECONDS = 0.2e-3


def calibrate() -> int:
    """The `k` for which `busy(item, k)` takes ~10 µs here."""
    k, reps = 300, 2000

    def once() -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            work(k)
        return (time.perf_counter() - t0) / reps

    return max(1, round(k * WORK_SECONDS / min(once() for _ in range(5))))


def _usage() -> tuple:
    """CPU seconds of this process and of its children that ended (a pool's workers), and this
    process's own CPU seconds and page faults."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = own.ru_utime + own.ru_stime
    return mine + children.ru_utime + children.ru_stime, mine, own.ru_minflt


def _reaped(limit: float = 10.0) -> None:
    """Waits until this process has no child process left: `process_map` returns once its
    workers have left the run, and its executor reaps them meanwhile; their CPU is counted once
    they are reaped (and the next round starts without them)."""
    deadline = time.monotonic() + limit
    while mp.active_children() and time.monotonic() < deadline:
        time.sleep(0.001)


def turns(contenders: Dict[str, Callable[[], Any]], rounds: int) -> Dict[str, Dict[str, List[float]]]:
    """Each contender's wall seconds (until its call returns) and CPU seconds (its workers'
    included, once they are reaped), and the parent's own CPU seconds and page faults, one run a
    round, in an order that turns each round."""
    labels = list(contenders)
    out: Dict[str, Dict[str, List[float]]] = {
        kind: {label: [] for label in labels} for kind in ("wall", "cpu", "parent cpu", "parent faults")
    }
    for r in range(rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            (c0, p0, f0), t0 = _usage(), time.perf_counter()
            contenders[label]()
            out["wall"][label].append(time.perf_counter() - t0)
            _reaped()
            (c1, p1, f1) = _usage()
            out["cpu"][label].append(c1 - c0)
            out["parent cpu"][label].append(p1 - p0)
            out["parent faults"][label].append(f1 - f0)
    return out


def parent_figures(measured: Dict[str, Dict[str, List[float]]], baseline: str) -> Dict[str, Any]:
    """What the pool's parent process spends a run, its workers aside (on a machine whose two
    cores the workers keep busy, it comes out of theirs): its CPU, median and over the
    baseline's in the same round, and its page faults (after a fork, the first write to each
    page the workers share is one)."""
    out: Dict[str, Any] = {}
    cpu, faults = measured["parent cpu"], measured["parent faults"]
    for label in cpu:
        out[f"{label}, parent CPU a run, median ms"] = round(statistics.median(cpu[label]) * 1e3, 2)
        out[f"{label}, parent page faults a run, median"] = statistics.median(faults[label])
        if label != baseline:
            over = [(a - b) * 1e3 for a, b in zip(cpu[label], cpu[baseline], strict=True)]
            out[f"{label}, parent CPU over {baseline}'s, median of rounds, ms"] = round(statistics.median(over), 2)
    return out


def interval(rs: List[float], resamples: int = 2000) -> str:
    """A 90% bootstrap interval of the median of `rs` (the rounds drawn again with
    replacement; a fixed seed, so one set of rounds always gives the same interval): how far
    the reported median could move on this machine's noise alone."""
    draw = random.Random(0)
    medians = sorted(statistics.median(draw.choices(rs, k=len(rs))) for _ in range(resamples))
    return f"{medians[resamples // 20]:.3f}..{medians[resamples - 1 - resamples // 20]:.3f}"


def ratios(measured: Dict[str, Dict[str, List[float]]], baseline: str) -> Dict[str, Any]:
    """Per contender: median wall seconds, the median, its 90% interval and the spread of its
    per-round ratio to `baseline` (what a user waits), and the same for CPU seconds (what the
    machine spends, less moved by the other tenants of a shared machine)."""
    out: Dict[str, Any] = {}
    for kind in ("wall", "cpu"):
        seconds = measured[kind]
        out[f"{baseline}, median {kind} s"] = round(statistics.median(seconds[baseline]), 4)
        for label, times in seconds.items():
            if label == baseline:
                continue
            rs = [t / b for t, b in zip(times, seconds[baseline], strict=True)]
            out[f"{label}, median {kind} s"] = round(statistics.median(times), 4)
            out[f"{label} / {baseline}, {kind}, median of rounds"] = round(statistics.median(rs), 3)
            out[f"{label} / {baseline}, {kind}, 90% interval of the median"] = interval(rs)
            out[f"{label} / {baseline}, {kind}, spread"] = f"{min(rs):.3f}..{max(rs):.3f}"
    return out


def _rows(run: milepost.Run) -> Dict[str, int]:
    assert run.history_path is not None, "the run keeps a history"
    with sqlite3.connect(str(run.history_path)) as db:
        return dict(db.execute("SELECT status, count(*) FROM items WHERE run_id = ? GROUP BY status", (run.id,)))


def test_process_map_against_process_pool_executor(benchmark: Any) -> None:
    items, chunk, rounds = (2_000, 100, 1) if benchmark.disabled else (40_000, 500, 31)
    fn = functools.partial(busy, k=calibrate())
    expected = [fn(i) for i in range(items)]
    ctx = mp.get_context("fork")
    ran: List[Tuple[milepost.Run, bool]] = []

    def executor() -> None:
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            assert list(pool.map(fn, range(items), chunksize=chunk)) == expected

    def tracked(history: bool) -> None:
        with milepost.Run("bench", display="none", history=history) as run:
            got = milepost.process_map(fn, range(items), workers=2, chunksize=chunk, description="map", mp_context=ctx)
        assert got == expected  # as the executor's round checks its results
        ran.append((run, history))  # its counts are checked after the timed rounds, as its rows are

    contenders = {
        "ProcessPoolExecutor.map": executor,
        "process_map, history on": functools.partial(tracked, True),
        "process_map, history off": functools.partial(tracked, False),
    }
    result: Dict[str, Dict[str, List[float]]] = {}
    benchmark.pedantic(lambda: result.update(turns(contenders, rounds)), rounds=1, iterations=1)
    # Every item is counted, and (history on) its row is in the history once its run ended:
    # read after the timed rounds (a snapshot has no counterpart in the executor's round).
    assert ran and all(run.snapshot().find("map")["done"] == items for run, _ in ran)
    kept = [run for run, history in ran if history]
    assert kept and all(_rows(run) == {"done": items} for run in kept)
    benchmark.extra_info["report"] = {
        "items (~10 µs of busy work each)": items,
        "workers, chunksize": f"2, {chunk}",
        "rounds": rounds,
        **ratios(result, "ProcessPoolExecutor.map"),
        **parent_figures(result, "ProcessPoolExecutor.map"),
    }


def test_thread_map_against_thread_pool_executor(benchmark: Any) -> None:
    items, rounds = (800, 1) if benchmark.disabled else (20_000, 9)
    fn = functools.partial(nap, seconds=NAP_SECONDS)
    expected = list(range(items))

    def executor() -> None:
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(fn, range(items))) == expected

    ran: List[milepost.Run] = []

    def tracked() -> None:
        with milepost.Run("bench", display="none") as run:
            assert milepost.thread_map(fn, range(items), workers=8, description="map") == expected
        ran.append(run)  # its counts are checked after the timed rounds (see the test above)

    result: Dict[str, Dict[str, List[float]]] = {}
    contenders = {"ThreadPoolExecutor.map": executor, "thread_map": tracked}
    benchmark.pedantic(lambda: result.update(turns(contenders, rounds)), rounds=1, iterations=1)
    assert ran and all(run.snapshot().find("map")["done"] == items for run in ran)
    benchmark.extra_info["report"] = {
        "items (sleeping 0.2 ms each)": items,
        "threads": 8,
        "rounds": rounds,
        **ratios(result, "ThreadPoolExecutor.map"),
    }
