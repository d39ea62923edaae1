"""Budgets of a phase or a step: the phase's pools and loops stop at its limit, the phase ends
cancelled, and the run goes on (its own budget, if any, still holds)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, List

import pytest

import milepost
from procs_helpers import costs_the_same, dear_then_cheap, spend_a_cent

COST = 0.01


def _spend(i: int) -> int:
    milepost.current_item().metric("cost_usd", COST)
    return i


def _lines(events: List[Any]) -> List[str]:
    return [e.message for e in events if isinstance(e, milepost.LogLine) and e.source == "milepost"]


def _check_phase_stopped(run: milepost.Run, name: str, limit: float, events: List[Any]) -> None:
    node = run.snapshot().find(name)
    assert node["state"] == "cancelled" and node["in_flight"] == 0
    assert limit - COST - 1e-9 <= node["metrics"]["cost_usd"] <= limit + COST + 1e-9, node["metrics"]
    lines = _lines(events)
    assert sum(f"budget warning: phase {name!r}: cost_usd" in m for m in lines) == 1, lines
    stopped = rf"phase {name!r} stopped: budget: cost_usd \$0\.\d{{4}} of \${limit:.4f} spent(, .* in flight)?"
    assert any(re.fullmatch(stopped, m) for m in lines), lines


@pytest.mark.parametrize("pool", ["threads", "async", "processes", "pending"])
def test_a_phase_budget_stops_its_phase_and_the_run_goes_on(pool: str, event_log: Any) -> None:
    with milepost.Run("phase-budget", display="none", observers=[event_log]) as run:
        with pytest.raises(milepost.Cancelled, match=r"phase 'gen' was stopped \(budget: cost_usd \$"):
            with run.phase("gen", budget={"cost_usd": 0.5}) as gen:
                if pool == "threads":
                    milepost.thread_map(_spend, range(1000), workers=8, task=gen)
                elif pool == "processes":
                    milepost.process_map(spend_a_cent, range(1000), workers=2, chunksize=3, task=gen)
                elif pool == "async":

                    async def spend(i: int) -> int:
                        await asyncio.sleep(0)
                        return _spend(i)

                    asyncio.run(milepost.async_map(spend, range(1000), concurrency=50, task=gen))
                else:
                    for i in gen.pending(range(1000)):
                        with gen.item(str(i)) as item:
                            item.metric("cost_usd", COST)
        assert not run.cancelled, "a phase's budget stops the phase, not the run"
        with run.phase("evaluate") as evaluate:  # the run goes on
            milepost.thread_map(_spend, range(20), workers=4, task=evaluate)
    _check_phase_stopped(run, "gen", 0.5, event_log.events)
    assert run.snapshot().root["state"] == "completed"
    assert run.snapshot().find("evaluate")["done"] == 20


def test_a_step_budget_inside_a_run_budget_both_count_and_the_run_stops_first(event_log: Any) -> None:
    with milepost.Run("nested-budgets", display="none", budget={"cost_usd": 0.3}, observers=[event_log]) as run:
        with run.phase("gen") as gen:
            first = gen.step("first", budget={"cost_usd": 0.2})
            with pytest.raises(milepost.Cancelled, match="step 'first' was stopped"):
                milepost.thread_map(_spend, range(100), workers=4, task=first)
            with pytest.raises(milepost.Cancelled, match=r"run was cancelled \(budget: cost_usd"):
                milepost.thread_map(_spend, range(100), workers=4, task=gen.step("second", budget={"cost_usd": 5}))
        raise_it = run.cancelled
    assert raise_it and run.snapshot().root["state"] == "cancelled"
    assert 0.29 <= run.snapshot().root["metrics"]["cost_usd"] <= 0.31 + 1e-9
    assert 0.19 <= run.snapshot().find("first")["metrics"]["cost_usd"] <= 0.21 + 1e-9


def test_a_phase_that_fits_its_budget_completes_and_a_bad_one_makes_nothing() -> None:
    with milepost.Run("fits", display="none") as run:
        with run.phase("gen", budget={"cost_usd": 1.0}) as gen:
            milepost.thread_map(_spend, range(50), workers=4, task=gen)
        with pytest.raises(milepost.InvalidValueError, match=r"budget\['cost_usd'\] must be a positive finite number"):
            run.phase("bad", budget={"cost_usd": 0})
        with pytest.raises(milepost.InvalidValueError, match="budget"):
            gen.step("bad-step", budget=[1])
    assert run.snapshot().find("gen")["state"] == "completed"
    assert [n["name"] for _, n in run.snapshot().nodes()] == ["gen"], "nothing made for a bad budget"


def test_on_budget_cancel_cancels_the_coroutines_in_flight() -> None:
    started: List[int] = []
    finished: List[int] = []

    async def reply(i: int) -> int:
        started.append(i)
        await asyncio.sleep(0 if i < 40 else 30)  # from the 40th on, replies that take long
        _spend(i)  # priced at the end, as an LLM call's usage is
        finished.append(i)
        return i

    async def main() -> List[Any]:
        with pytest.raises(milepost.Cancelled, match="items in flight were cancelled"):
            async with asyncio.timeout(20):  # "finish" would wait 30 s for the replies in flight
                await milepost.async_map(reply, range(1000), concurrency=20)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with milepost.Run("cancel-in-flight", display="none", budget={"cost_usd": 0.3}, on_budget="cancel") as run:
        left = asyncio.run(main())
    assert left == [] and run.snapshot().root["state"] == "cancelled"
    node = run.snapshot().find("reply")
    assert node["in_flight"] == 0 and node["done"] == len(finished) and max(finished) < 40
    assert len(started) > len(finished), "the replies in flight were cancelled, not waited for"
    assert run.snapshot().root["metrics"]["cost_usd"] <= 0.31 + 1e-9
    with pytest.raises(milepost.InvalidValueError, match="on_budget must be one of finish, cancel, got 'stop'"):
        milepost.Run("bad", display="none", budget={"cost_usd": 1}, on_budget="stop")
    with pytest.raises(milepost.InvalidValueError, match="got 'stop'"):
        milepost.Run("bad", display="none", on_budget="stop")  # said even without a budget


def test_track_loops_sync_and_async_stop_at_the_budget(event_log: Any) -> None:
    with milepost.Run("track-budget", display="none", budget={"cost_usd": 0.5}, observers=[event_log]) as run:
        with pytest.raises(milepost.Cancelled, match=r"run was cancelled \(budget: cost_usd"):
            for _ in milepost.track(range(1000), desc="sync"):
                run.metric("cost_usd", COST)
    assert 0.49 <= run.snapshot().root["metrics"]["cost_usd"] <= 0.51 + 1e-9
    assert run.snapshot().find("sync")["state"] == "cancelled"

    async def pages():
        for i in range(1000):
            await asyncio.sleep(0)
            yield i

    async def main() -> milepost.Run:
        async with milepost.Run("atrack-budget", display="none") as arun:
            with pytest.raises(milepost.Cancelled, match=r"phase 'crawl' was stopped \(budget: cost_usd"):
                async with arun.phase("crawl", budget={"cost_usd": 0.2}) as crawl:
                    async for _ in milepost.track(pages(), total=1000, desc="pages", run=crawl):
                        crawl.metric("cost_usd", COST)
        return arun

    arun = asyncio.run(main())
    assert 0.19 <= arun.snapshot().find("crawl")["metrics"]["cost_usd"] <= 0.21 + 1e-9
    assert arun.snapshot().find("crawl")["state"] == "cancelled"
    assert arun.snapshot().root["state"] == "completed", "caught, the phase's stop leaves the run going"


def test_a_loop_left_by_break_gives_its_reservation_back(event_log: Any) -> None:
    async def pages():
        for i in range(100):
            yield i

    async def main(run: milepost.Run) -> None:
        async for i in milepost.track(pages(), total=100, desc="async-loop"):
            run.metric("cost_usd", COST)
            if i == 5:
                break
        for i in milepost.track(range(100), desc="sync-loop"):
            run.metric("cost_usd", COST)
            if i == 5:
                break

    with milepost.Run("left-loops", display="none", budget={"cost_usd": 1.0}, observers=[event_log]) as run:
        asyncio.run(main(run))
        time.sleep(0.5)  # a reservation left behind would be priced by its age by now
        out = milepost.thread_map(_spend, range(20), workers=4)  # fits: $0.12 + $0.20 of $1.00
    assert out == list(range(20)) and not run.cancelled, _lines(event_log.events)


def test_spend_recorded_outside_the_items_context_still_counts_per_item() -> None:
    # A sync SDK called through run_in_executor: the spend is recorded in an executor thread,
    # not in the item's asyncio task, so no ticket takes it; it must still price the items.
    async def call(i: int) -> int:
        item = milepost.current_item()
        await asyncio.get_running_loop().run_in_executor(None, item.metric, "cost_usd", COST)
        return i

    with milepost.Run("executor-spend", display="none", budget={"cost_usd": 1.0}) as run:
        with pytest.raises(milepost.Cancelled):
            asyncio.run(milepost.async_map(call, range(1000), concurrency=20))
    spent = run.snapshot().root["metrics"]["cost_usd"]
    assert 0.9 <= spent <= 1.0 + COST + 1e-9, spent


@pytest.mark.parametrize("cost", [0.3, 0.23, 0.13])
def test_a_process_pool_under_a_budget_runs_its_items_in_order_when_chunks_come_back_together(cost) -> None:
    """Found in review: once chunks in flight came back after a refusal, the pool topped up
    several at once from the iterator it had started, past the refused chunk put back in front:
    item 3 ran and item 2 was reported not run. Every item costs the same here."""
    ran: List[int] = []
    with milepost.Run("same-cost", display="none", budget={"cost_usd": 1.0}):
        try:
            items = [(i, cost) for i in range(30)]
            for i, value in milepost.process_as_completed(costs_the_same, items, workers=2, chunksize=1):
                if not isinstance(value, BaseException):
                    ran.append(i)
        except milepost.Cancelled:
            pass
    assert ran, "some items ran"
    assert sorted(ran) == list(range(len(ran))), f"an item skipped and a later one run: {sorted(ran)}"


def test_a_process_pool_never_skips_an_item_and_runs_later_ones() -> None:
    ran: List[int] = []
    with milepost.Run("dear-then-cheap", display="none", budget={"cost_usd": 1.0}) as run:
        try:
            for i, value in milepost.process_as_completed(dear_then_cheap, range(60), workers=2, chunksize=1):
                if not isinstance(value, milepost.Cancelled):
                    ran.append(i)
        except milepost.Cancelled:
            pass  # the budget may end it: what matters is which items ran
    assert sorted(ran) == list(range(len(ran))), "the items not run are the last ones, never one in between"
    assert run.snapshot().root["metrics"]["cost_usd"] <= 1.0 + 0.2 + 1e-9
