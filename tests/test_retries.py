"""Automatic retries (`retries=`, `retry_on=`, `backoff=`) on real pools: threads, worker
processes (fork and spawn) and asyncio. Counts are exact (an item counted once, each retry
counted retried), each attempt's error reaches the events and the history, the waits grow
within their jitter bounds, a cancel stops a wait, and bad arguments start nothing."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Tuple

import pytest

import milepost
import retry_helpers as rh
from milepost import retrying
from milepost.persistence import default_path

KINDS = ["thread", "fork", "spawn", "async"]


@pytest.fixture(autouse=True)
def _fresh_attempts() -> None:
    rh.reset()


def _async(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    async def call(x: Any) -> Any:
        await asyncio.sleep(0)
        return fn(x)

    return call


def _map(kind: str, fn: Callable[[Any], Any], items: List[Any], **kw: Any) -> Tuple[List[Any], dict, milepost.Run]:
    """`fn` over `items` in a pool of `kind`, in a run of its own: the results (exceptions in
    place), the pool's node and the run."""
    kw.setdefault("backoff", 0)
    with milepost.Run("r", display="none", history=False) as run:
        if kind == "thread":
            results = milepost.thread_map(fn, items, 4, description="m", return_exceptions=True, **kw)
        elif kind == "async":
            coro = milepost.async_map(_async(fn), items, 4, description="m", return_exceptions=True, **kw)
            results = asyncio.run(coro)
        else:
            ctx = mp.get_context(kind)
            results = milepost.process_map(fn, items, 2, description="m", return_exceptions=True, mp_context=ctx, **kw)
    return results, run.snapshot().find("m"), run


def _counts(node: dict) -> Tuple[int, int, int]:
    return node["done"], node["failed"], node["retried"]


# -- counting -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_an_item_failing_fewer_times_than_its_retries_is_done(kind: str) -> None:
    results, node, _ = _map(kind, rh.fails_three_times, [4, 5], retries=3, retry_on=rh.Flaky)
    assert results == [16, 25]
    assert _counts(node) == (2, 0, 6)
    assert node["state"] == "completed"


@pytest.mark.parametrize("kind", KINDS)
def test_an_item_failing_more_times_than_its_retries_fails_with_its_last_error(kind: str) -> None:
    results, node, _ = _map(kind, rh.fails_three_times, [4], retries=2)
    assert isinstance(results[0], rh.Flaky) and str(results[0]) == "attempt 3"
    assert _counts(node) == (0, 1, 2)


@pytest.mark.parametrize("kind", KINDS)
def test_exact_counts_over_many_items(kind: str) -> None:
    sevenths = len(range(0, 200, 7))
    results, node, _ = _map(kind, rh.fails_twice_every_7th, list(range(200)), retries=2)
    assert results == [x * x for x in range(200)]
    assert (*_counts(node), node["total"]) == (200, 0, 2 * sevenths, 200)
    rh.reset()
    results, node, _ = _map(kind, rh.fails_twice_every_7th, list(range(200)), retries=1)
    assert [i for i, r in enumerate(results) if isinstance(r, rh.Flaky)] == list(range(0, 200, 7))
    assert _counts(node) == (200 - sevenths, sevenths, sevenths)


def test_process_as_completed_retries_in_the_worker() -> None:
    with milepost.Run("r", display="none", history=False) as run:
        pairs = list(
            milepost.process_as_completed(
                rh.fails_twice_every_7th,
                range(50),
                2,
                description="m",
                mp_context=mp.get_context("fork"),
                retries=2,
                backoff=0,
            )
        )
    assert sorted(pairs) == [(x, x * x) for x in range(50)]
    assert _counts(run.snapshot().find("m")) == (50, 0, 2 * len(range(0, 50, 7)))


def test_async_as_completed_retries_in_the_slot() -> None:
    async def main() -> List[Tuple[int, Any]]:
        stream = milepost.async_as_completed(_async(rh.fails_three_times), [1, 2], 2, retries=3, backoff=0)
        return [pair async for pair in stream]

    assert sorted(asyncio.run(main())) == [(0, 1), (1, 4)]


@pytest.mark.parametrize("kind", KINDS)
def test_retry_on_leaves_other_errors_failed_at_once(kind: str) -> None:
    results, node, _ = _map(kind, rh.type_error_once, [1, 2], retries=3, retry_on=rh.Flaky)
    assert all(isinstance(r, TypeError) for r in results)
    assert _counts(node) == (0, 2, 0)
    rh.reset()
    results, node, _ = _map(kind, rh.type_error_once, [1, 2], retries=3, retry_on=(rh.Flaky, TypeError))
    assert results == [1, 2] and _counts(node) == (2, 0, 2)


def test_without_return_exceptions_a_retried_success_is_no_failure() -> None:
    with milepost.Run("r", display="none", history=False):
        assert milepost.thread_map(rh.fails_three_times, [3], retries=3, backoff=0) == [9]


# -- each attempt's error -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["thread", "spawn"])
def test_each_attempts_error_is_in_the_events_and_the_history(kind: str, event_log: Any) -> None:
    with milepost.Run("h", display="none", observers=[event_log]) as run:
        if kind == "thread":
            milepost.thread_map(
                rh.fails_three_times, [7], description="m", return_exceptions=True, retries=2, backoff=0
            )
        else:
            milepost.process_map(
                rh.fails_three_times,
                [7],
                1,
                description="m",
                return_exceptions=True,
                retries=2,
                backoff=0,
                mp_context=mp.get_context(kind),
            )
    retried = [(e.item, e.error) for e in event_log.events if isinstance(e, milepost.ItemRetried)]
    assert retried == [("7", "Flaky: attempt 1"), ("7", "Flaky: attempt 2")]
    db = sqlite3.connect(str(default_path()))
    events = db.execute(
        "SELECT kind, message FROM events WHERE run_id = ? AND kind LIKE 'item_%' ORDER BY id", (run.id,)
    ).fetchall()
    assert events == [
        ("item_retried", "Flaky: attempt 1"),
        ("item_retried", "Flaky: attempt 2"),
        ("item_failed", "Flaky: attempt 3"),
    ]
    rows = db.execute("SELECT name, status, error FROM items WHERE run_id = ?", (run.id,)).fetchall()
    assert rows == [("7", "failed", "Flaky: attempt 3")], "the item is one row, with its last error"


# -- backoff --------------------------------------------------------------------------------------
def test_the_delay_doubles_per_attempt_with_full_jitter_and_a_cap() -> None:
    policy = retrying.RetryPolicy.of(10, Exception, 0.5)
    assert [policy.delay(a, lambda: 1.0) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert policy.delay(1000, lambda: 1.0) == retrying.MAX_DELAY
    assert [policy.delay(a, lambda: 0.0) for a in range(3)] == [0, 0, 0]
    assert retrying.RetryPolicy.of(3, Exception, 0).delay(2, lambda: 1.0) == 0


@pytest.mark.parametrize("kind", ["thread", "async"])
def test_the_pools_wait_within_the_jitter_bounds(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: List[float] = []

    def pause(seconds: float, cancelled: Callable[[], bool]) -> bool:
        waits.append(seconds)
        return True

    async def pause_async(seconds: float, cancelled: Callable[[], bool]) -> bool:
        return pause(seconds, cancelled)

    monkeypatch.setattr(retrying, "pause", pause)
    monkeypatch.setattr(retrying, "pause_async", pause_async)
    jitter = iter([1.0, 0.5, 0.25, 0.0, 1.0, 1.0])
    monkeypatch.setattr(retrying, "jitter", lambda: next(jitter))
    _, node, _ = _map(kind, rh.fails_three_times, [1], retries=3, backoff=0.25)
    assert waits == [0.25, 0.25, 0.25], "ceilings 0.25, 0.5, 1.0 times the jitter"
    assert _counts(node) == (1, 0, 3)


def test_real_waits_go_by_with_small_backoff() -> None:
    _, node, _ = _map("thread", rh.fails_three_times, [1, 2], retries=3, backoff=0.001)
    assert _counts(node) == (2, 0, 6)


# -- cancel ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_during_a_wait_stops_retrying(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait would be 30 s: the cancel ends it, the item fails with its error, unretried."""
    monkeypatch.setattr(retrying, "jitter", lambda: 1.0)  # in the parent and forked workers (spawned: the item)
    marker = tmp_path / "failed-once"
    with milepost.Run("c", display="none", history=False) as run:

        def cancel_once_failed() -> None:
            while not marker.exists():
                threading.Event().wait(0.01)
            run.cancel()

        canceller = threading.Thread(target=cancel_once_failed)
        canceller.start()
        # Threads and asyncio raise Cancelled; a process map whose every item ran returns.
        with contextlib.suppress(milepost.Cancelled):
            _pool(kind, str(marker))
        canceller.join()
    node = run.snapshot().find("m")
    assert _counts(node) == (0, 1, 0)
    assert node["state"] == "cancelled"


def test_a_thread_map_ended_by_an_error_stops_the_waits_of_its_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `return_exceptions` the first error ends the map at once; an item waiting to be
    tried again (30 s) in the background stops waiting and fails with its error."""
    monkeypatch.setattr(retrying, "jitter", lambda: 1.0)
    waiting = threading.Event()

    def job(x: int) -> None:
        if x == 1:
            waiting.set()
            raise rh.Flaky("retry me")
        waiting.wait()
        raise TypeError("not retried")

    with milepost.Run("e", display="none", history=False) as run:
        with pytest.raises(TypeError):
            milepost.thread_map(job, [0, 1], 2, description="m", retries=5, retry_on=rh.Flaky, backoff=1000)
        for t in threading.enumerate():
            if t.name.startswith("milepost-worker"):
                t.join()
        assert _counts(run.snapshot().find("m")) == (0, 2, 0)


def _pool(kind: str, item: str) -> Any:
    kw = {"description": "m", "return_exceptions": True, "retries": 5, "backoff": 1000}
    if kind == "thread":
        return milepost.thread_map(rh.always_fails_after_marking, [item], **kw)
    if kind == "async":
        return asyncio.run(milepost.async_map(_async(rh.always_fails_after_marking), [item], **kw))
    return milepost.process_map(rh.always_fails_after_marking, [item], 1, mp_context=mp.get_context(kind), **kw)


# -- bad input ------------------------------------------------------------------------------------
BAD = [
    {"retries": -1},
    {"retries": 1.5},
    {"retries": True},
    {"backoff": -1},
    {"backoff": float("nan")},
    {"backoff": float("inf")},
    {"retry_on": 42},
    {"retry_on": (ValueError, "x")},
    {"retry_on": KeyboardInterrupt},
]


@pytest.mark.parametrize("kw", BAD, ids=[repr(k) for k in BAD])
@pytest.mark.parametrize("kind", ["thread", "process", "as_completed", "async", "async_as_completed"])
def test_bad_arguments_are_named_and_start_nothing(kind: str, kw: dict, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    value = repr(next(iter(kw.values())))
    with milepost.Run("b", display="none", history=False) as run:
        with pytest.raises(milepost.InvalidValueError, match=re.escape(value)):
            _bad(kind, ran, kw)
        assert [c["name"] for c in run.snapshot().root["children"]] == [], "no phase made"
    assert not ran.exists()
    assert os.path.exists(tmp_path)


def _bad(kind: str, ran: Path, kw: dict) -> Any:
    fn = rh.always_fails_after_marking
    if kind == "thread":
        return milepost.thread_map(fn, [str(ran)], **kw)
    if kind == "process":
        return milepost.process_map(fn, [str(ran)], 1, mp_context=mp.get_context("fork"), **kw)
    if kind == "as_completed":
        return list(milepost.process_as_completed(fn, [str(ran)], 1, mp_context=mp.get_context("fork"), **kw))
    if kind == "async":
        return asyncio.run(milepost.async_map(_async(fn), [str(ran)], **kw))
    return milepost.async_as_completed(_async(fn), [str(ran)], **kw)


def test_retry_failed_from_code_runs_the_failed_items_of_a_running_pool_again() -> None:
    calls: dict = {}
    asked: list = []

    def flaky(i: int) -> int:
        calls[i] = calls.get(i, 0) + 1
        if i in (2, 5) and calls[i] == 1:
            raise ValueError(f"first try of {i}")
        if i == 0:  # holds the pool open until the failures are in, then asks for them again
            deadline = time.monotonic() + 10
            while run.snapshot().root["failed"] < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            asked.append(run.retry_failed())
        return i

    with milepost.Run("retry-from-code", display="none") as run:
        out = milepost.thread_map(flaky, range(8), workers=4, return_exceptions=True, description="pool")
    assert asked == [2] and out == list(range(8)) and calls[2] == calls[5] == 2
    node = run.snapshot().find("pool")
    assert (node["done"], node["failed"], node["retried"], node["total"]) == (8, 2, 2, 10)
    assert run.retry_failed() == 0, "no pool is running: nothing to run again"


def test_a_retry_takes_the_failures_of_a_process_chunk_still_out(tmp_path: Path) -> None:
    """Found trying it as a user: `milepost retry` on a `process_map` ran again only the
    failures whose chunk had come back (15 of 23), though the display counted them all; the
    others stayed failed. The failures a worker counted before the retry are run again as its
    chunk comes back."""
    (tmp_path / "failing").touch()
    asked: list = []

    def failed() -> int:
        try:
            return int(run.snapshot().find("pool")["failed"])
        except KeyError:  # the pool's phase is not made yet
            return 0

    def steer() -> None:
        deadline = time.monotonic() + 10
        while failed() < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        (tmp_path / "failing").unlink()
        asked.append(run.retry_failed())  # the chunk with both failures is still out (item 7 waits)
        (tmp_path / "go").touch()

    with milepost.Run("retry-chunk-out", display="none") as run:
        helper = threading.Thread(target=steer)
        helper.start()
        items = [(x, str(tmp_path)) for x in range(10)]
        out = milepost.process_map(
            rh.fails_while_flagged_then_waits,
            items,
            1,
            chunksize=10,
            return_exceptions=True,
            description="pool",
            mp_context=mp.get_context("fork"),
        )
        helper.join(10)
    assert asked == [2] and out == list(range(10)), (asked, out)
    node = run.snapshot().find("pool")
    assert (node["done"], node["failed"], node["retried"], node["total"]) == (10, 2, 2, 12)
