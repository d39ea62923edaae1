"""Budgets: real runs over real pools and loops stop before their spend goes past the limit."""

from __future__ import annotations

import asyncio
import math
import random
import re
import sqlite3
import time

import pytest

import milepost
from milepost.persistence import default_path
from procs_helpers import spend_a_cent

COST = 0.01  # each item's cost: a $1.00 budget holds 100 of them


def _budget_lines(events: list) -> list:
    return [
        e.message
        for e in events
        if isinstance(e, milepost.LogLine) and e.source == "milepost" and "budget" in e.message
    ]


def _kept_events(run) -> list:
    db = sqlite3.connect(str(default_path()))
    return [m for (m,) in db.execute("SELECT message FROM events WHERE run_id = ? ORDER BY id", (run.id,))]


def _status(run) -> str:
    db = sqlite3.connect(str(default_path()))
    return db.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone()[0]


def _spent(run, name: str = "cost_usd") -> float:
    return run.snapshot().root["metrics"][name]


def _assert_stopped_by_budget(run, events: list) -> None:
    assert run.snapshot().root["state"] == "cancelled"
    assert _status(run) == "cancelled"
    assert 0.99 <= _spent(run) <= 1.01 + 1e-9
    lines = _budget_lines(events)
    assert sum("budget warning" in m for m in lines) == 1, lines
    said = r"cancel requested: budget: cost_usd \$[01]\.\d{4} of \$1\.0000 spent"
    said += r"(, \$0\.\d{4} expected of the \d+ items in flight)?"
    assert any(re.fullmatch(said, m) for m in lines), lines
    assert any("cancel requested: budget" in (m or "") for m in _kept_events(run)), "the reason is in the history"


def test_async_map_at_concurrency_100_stops_within_one_item(event_log) -> None:
    async def fn(i: int) -> int:
        await asyncio.sleep(0)
        milepost.current_item().metric("cost_usd", COST)
        await asyncio.sleep(0)
        return i

    async def main(run) -> set:
        with pytest.raises(milepost.Cancelled):
            await milepost.async_map(fn, range(1000), concurrency=100)
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    with pytest.raises(milepost.Cancelled):
        with milepost.Run("b-async", display="none", budget={"cost_usd": 1.0}, observers=[event_log]) as run:
            left = asyncio.run(main(run))
            assert run.cancelled
            raise milepost.Cancelled("the job passes the cancel on")
    assert left == set(), "no asyncio task is left pending"
    _assert_stopped_by_budget(run, event_log.events)
    assert run.snapshot().root["done"] < 1000


def test_thread_map_with_16_workers_stops_within_one_item(event_log) -> None:
    def fn(i: int) -> int:
        milepost.current_item().metric("cost_usd", COST)
        return i

    with milepost.Run("b-threads", display="none", budget={"cost_usd": 1.0}, observers=[event_log]) as run:
        with pytest.raises(milepost.Cancelled):
            milepost.thread_map(fn, range(1000), workers=16)
    _assert_stopped_by_budget(run, event_log.events)


@pytest.mark.parametrize("chunksize", [1, 7])
def test_process_map_stops_within_one_item_from_the_workers_metrics(event_log, chunksize: int) -> None:
    with milepost.Run("b-procs", display="none", budget={"cost_usd": 1.0}, observers=[event_log]) as run:
        with pytest.raises(milepost.Cancelled, match="budget: cost_usd"):
            milepost.process_map(spend_a_cent, range(1000), workers=2, chunksize=chunksize)
    _assert_stopped_by_budget(run, event_log.events)
    assert run.snapshot().root["done"] <= 101


def test_process_map_under_a_budget_it_fits_runs_every_item() -> None:
    with milepost.Run("b-procs-fit", display="none", budget={"cost_usd": 1.0}) as run:
        results = milepost.process_map(spend_a_cent, range(60), workers=2, chunksize=4)
    assert results == list(range(60)) and run.snapshot().root["state"] == "completed"
    assert run.snapshot().root["metrics"]["cost_usd"] == pytest.approx(0.60)


def test_a_pending_loop_priced_through_usage_stops_at_the_budget(event_log) -> None:
    milepost.set_prices({"penny-model": {"input": 10, "output": 0}})  # 1,000 tokens: $0.01
    try:
        with milepost.Run("b-loop", display="none", budget={"cost_usd": 1.0}, observers=[event_log]) as run:
            with run.phase("map") as ph:
                with pytest.raises(milepost.Cancelled):
                    for i in ph.pending(range(1000)):
                        with ph.item(str(i)) as item:
                            item.usage("penny-model", input_tokens=1_000)
    finally:
        milepost.prices.clear()
    _assert_stopped_by_budget(run, event_log.events)
    assert run.snapshot().root["done"] in (99, 100)


def test_a_tokens_budget_and_a_run_that_fits_its_budget(event_log) -> None:
    with milepost.Run("b-tokens", display="none", budget={"tokens": 10_000}, observers=[event_log]) as run:
        with run.phase("map") as ph:
            with pytest.raises(milepost.Cancelled):
                for i in ph.pending(range(100)):
                    with ph.item(str(i)) as item:
                        item.metric("tokens", 1_000)
    assert run.snapshot().root["metrics"]["tokens"] == 10_000
    assert any("cancel requested: budget: tokens" in m for m in _budget_lines(event_log.events))
    with milepost.Run("b-fits", display="none", budget={"tokens": 10_000}) as fits:
        milepost.thread_map(lambda i: milepost.current_item().metric("tokens", 100), range(50), workers=4)
    assert fits.snapshot().root["state"] == "completed" and not fits.cancelled


@pytest.mark.parametrize(
    ("budget", "named"),
    [
        ({"cost_usd": 0}, "0"),
        ({"cost_usd": -1.0}, "-1.0"),
        ({"cost_usd": math.nan}, "nan"),
        ({"cost_usd": math.inf}, "inf"),
        ({"cost_usd": "5"}, "'5'"),
        ({"cost_usd": True}, "True"),
        ({"": 1.0}, "''"),
        ({}, "{}"),
        ([("cost_usd", 1.0)], "cost_usd"),
        (5.0, "5.0"),
    ],
)
def test_a_bad_budget_is_refused_before_anything_is_made(budget, named) -> None:
    with pytest.raises(milepost.InvalidValueError, match="budget") as raised:
        milepost.Run("b-bad", display="none", budget=budget)
    assert named in str(raised.value)
    assert not default_path().exists(), "no history row"


def test_a_run_stopped_by_its_budget_resumes_with_a_bigger_one() -> None:
    def job(limit: float) -> tuple:
        seen = []
        with milepost.Run("b-resume", display="none", budget={"cost_usd": limit}, resume=True) as run:
            with run.phase("map", total=300) as ph:
                for i in ph.pending(f"doc-{i}" for i in range(300)):
                    with ph.item(str(i)) as item:
                        item.metric("cost_usd", COST)
                        seen.append(i)
        return run, seen

    with pytest.raises(milepost.Cancelled):
        job(1.0)
    first = sqlite3.connect(str(default_path())).execute("SELECT id, status, done FROM runs").fetchone()
    assert first[1] == "cancelled" and 99 <= first[2] <= 100
    run, seen = job(10.0)
    assert run.id == first[0]
    assert seen[0] == f"doc-{first[2]}" and len(seen) == 300 - first[2], "done items are skipped"
    assert _status(run) == "completed"
    assert _spent(run) == pytest.approx(COST * len(seen)), "metrics (and the budget) start over on resume"


@pytest.mark.parametrize("concurrency", [1, 8, 32])
def test_a_cost_that_grows_with_the_items_length_still_holds(concurrency: int) -> None:
    # An LLM reply: the longer it streams, the more it costs, priced at its end. The items in
    # flight are the long ones more often than not, and early on only short ones have
    # finished; priced at the plain mean of the finished (short, cheap) ones, the run would
    # end well over its budget. The budget holds about 400 items, 12 waves at concurrency 32.
    rng = random.Random(concurrency)
    lengths = [rng.choice([0.001, 0.002, 0.01, 0.02]) for _ in range(2000)]

    costs: list = []

    async def reply(i: int) -> int:
        # Priced by how long it really took ($1 a second): on a loaded machine a sleep runs
        # long, and the cost must still grow with the length.
        t0 = time.monotonic()
        await asyncio.sleep(lengths[i])
        costs.append(time.monotonic() - t0)
        milepost.current_item().metric("cost_usd", costs[-1])
        return i

    lag = [0.0]

    async def watch_lag() -> None:
        # A loaded machine can stall the event loop: every item in flight then runs (and costs)
        # that much longer at once, which no estimate can foresee.
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.005)
            lag[0] = max(lag[0], time.monotonic() - t0 - 0.005)

    async def job() -> None:
        watcher = asyncio.create_task(watch_lag())
        try:
            await milepost.async_map(reply, range(2000), concurrency=concurrency)
        finally:
            watcher.cancel()

    with milepost.Run("b-lengths", display="none", budget={"cost_usd": 3.3}) as run:
        with pytest.raises(milepost.Cancelled):
            asyncio.run(job())
    spent = _spent(run)
    # Each item in flight is reserved at what it is expected to spend, but they spread around
    # it: at 32 at once the spend may end a second dear item over (measured: README), plus
    # what the longest stall of the loop added to each item in flight.
    dearest = sorted(costs)[-len(costs) // 100 - 1]  # the 99th percentile: a slow scheduler's outlier aside
    allowed = 3.3 + 2 * dearest + concurrency * lag[0] + 1e-9
    assert spent <= allowed, f"over by more than two of the dearest items and the stalls: {spent} (lag {lag[0]})"
    assert spent >= 3.0, f"stopped far too early: {spent}"
