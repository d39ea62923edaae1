"""asyncio, first-class: `track()` over async iterables, `async with item`, `async_map` and
`async_as_completed`, on real event loops and real runs: counts, end states, lanes, cancels
(from the run, from the caller, Ctrl-C) that leave no task pending, and live-channel retries."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import subprocess
import sys
import warnings
from typing import Any, AsyncIterator, List

import pytest

import milepost
from live_jobs import published


async def agen(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


def _nothing_left_behind(caplog: pytest.LogCaptureFixture) -> None:
    """No task destroyed while pending, no coroutine never awaited (both would be logged or
    warned when collected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gc.collect()
    text = caplog.text
    assert "was destroyed but it is pending" not in text
    assert "never awaited" not in text
    assert "exception was never retrieved" not in text


# -- track() over an async iterable ---------------------------------------------------------------
def test_async_track_alone_counts_and_completes() -> None:
    async def main() -> Any:
        seen = []
        loop = milepost.track(agen(7), total=7, desc="alone", display="none")
        async for x in loop:
            seen.append(x)
        return seen, loop

    seen, loop = asyncio.run(main())
    assert seen == list(range(7))
    run = loop._task.run
    node = run.snapshot().find("alone")
    assert (node["done"], node["total"], node["state"]) == (7, 7, "completed")
    assert run.snapshot().root["state"] == "completed"


@pytest.mark.parametrize(
    "how, state, done",
    [("exhaust", "completed", 6), ("raise", "failed", 2), ("break", "cancelled", 3), ("aclose", "cancelled", 3)],
)
def test_async_track_in_a_run_ends_as_the_sync_loop_does(how: str, state: str, done: int) -> None:
    async def body() -> None:
        if how == "aclose":
            loop = milepost.track(agen(6), total=6, desc="loop")
            async for x in loop:
                if x == 3:
                    await loop.aclose()  # type: ignore[attr-defined]
                    break
            return
        # Not kept in a variable: an exception's traceback would keep it alive past the loop,
        # and it would end as a loop left with `break` (so does the sync tracker).
        async for x in milepost.track(agen(6), total=6, desc="loop"):
            if x == 2 and how == "raise":
                raise ValueError("bad item")
            if x == 3 and how == "break":
                break

    async def main() -> milepost.Run:
        with milepost.Run("r", display="none") as run:
            try:
                await body()
            except ValueError:
                pass
            return run

    run = asyncio.run(main())
    node = run.snapshot().find("loop")
    assert (node["state"], node["done"], node["total"]) == (state, done, 6)


def test_async_track_hands_out_nothing_once_the_run_is_cancelled() -> None:
    async def main() -> List[int]:
        seen: List[int] = []
        with milepost.Run("r", display="none") as run:
            with pytest.raises(milepost.Cancelled):
                async for x in milepost.track(agen(10), desc="loop"):
                    seen.append(x)
                    if x == 3:
                        run.cancel()
            node = run.snapshot().find("loop")
            assert (node["state"], node["done"], node["total"]) == ("cancelled", 4, None)
        return seen

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_a_sync_iterable_still_gets_the_native_tracker() -> None:
    it = milepost.track(range(3), desc="sync", display="none")
    assert isinstance(it, milepost._milepost.Tracker)
    assert list(it) == [0, 1, 2]


def test_async_track_disabled_is_the_plain_async_iterator() -> None:
    async def main() -> List[int]:
        return [x async for x in milepost.track(agen(3), disable=True)]

    assert asyncio.run(main()) == [0, 1, 2]


# -- async with item, current_item() per task -------------------------------------------------------
def test_async_with_item_and_current_item_per_task() -> None:
    async def one(phase: milepost.Task, i: int) -> str:
        async with phase.item(f"job-{i}") as item:
            for _ in range(5):
                await asyncio.sleep(0.001 * (i % 3))
                assert milepost.current_item() is item
                assert milepost.current_item().name == f"job-{i}"
            if i % 10 == 9:
                raise ValueError(f"bad {i}")
        return item.name

    async def main() -> milepost.Run:
        with milepost.Run("r", display="none") as run:
            with run.phase("p", total=50) as phase:
                out = await asyncio.gather(*(one(phase, i) for i in range(50)), return_exceptions=True)
                assert milepost.current_item() is None
            assert sum(isinstance(o, ValueError) for o in out) == 5
        return run

    node = asyncio.run(main()).snapshot().find("p")
    assert (node["done"], node["failed"], node["in_flight"]) == (45, 5, 0)


# -- async_map ---------------------------------------------------------------------------------------
async def double(x: int) -> int:
    await asyncio.sleep(0)
    item = milepost.current_item()
    assert item is not None and item.name == str(x)
    return x * 2


def test_async_map_counts_2000_items_at_concurrency_100_in_order() -> None:
    async def main() -> Any:
        with milepost.Run("r", display="none") as run:
            out = await milepost.async_map(double, range(2000), concurrency=100, description="map")
            return out, run.snapshot()

    out, snap = asyncio.run(main())
    assert out == [2 * i for i in range(2000)]
    node = snap.find("map")
    assert (node["done"], node["failed"], node["total"], node["state"]) == (2000, 0, 2000, "completed")
    lanes = snap.data["lanes"]
    assert sorted(lane["name"] for lane in lanes) == sorted(f"w{i}" for i in range(100))
    assert sum(lane["done"] for lane in lanes) == 2000


def test_async_map_over_an_async_iterable_alone() -> None:
    async def main() -> List[Any]:
        return await milepost.async_map(double, agen(50), 7, display="none")

    assert asyncio.run(main()) == [2 * i for i in range(50)]


async def fails_on_odd_tens(x: int) -> int:
    await asyncio.sleep(0.001)
    if x % 20 == 10:
        raise ValueError(f"bad {x}")
    return x


def test_async_map_return_exceptions_puts_them_in_place() -> None:
    async def main() -> Any:
        with milepost.Run("r", display="none") as run:
            out = await milepost.async_map(fails_on_odd_tens, range(100), 8, return_exceptions=True, description="m")
            return out, run

    out, run = asyncio.run(main())
    assert [type(o) for o in out[10::20]] == [ValueError] * 5
    assert [o for i, o in enumerate(out) if i % 20 != 10] == [i for i in range(100) if i % 20 != 10]
    node = run.snapshot().find("m")
    assert (node["done"], node["failed"], node["state"]) == (95, 5, "completed")


def test_async_map_raises_the_first_failure_and_runs_nothing_more() -> None:
    started: List[int] = []

    async def fn(x: int) -> int:
        started.append(x)
        await asyncio.sleep(0.001 if x != 10 else 0)
        if x == 10:
            raise ValueError("bad 10")
        return x

    async def main() -> milepost.Run:
        with milepost.Run("r", display="none") as run:
            with pytest.raises(ValueError, match="bad 10"):
                await milepost.async_map(fn, range(1000), 4, description="m")
            return run

    run = asyncio.run(main())
    assert max(started) < 20, "items after the failure were not started"
    node = run.snapshot().find("m")
    assert (node["failed"], node["in_flight"], node["state"]) == (1, 0, "failed")
    assert node["done"] + node["failed"] <= len(started)


def test_async_as_completed_yields_every_index_once() -> None:
    async def slow_first(x: int) -> int:
        await asyncio.sleep(0.02 if x < 3 else 0)
        return -x

    async def main() -> List[Any]:
        return [pair async for pair in milepost.async_as_completed(slow_first, range(300), 10, display="none")]

    pairs = asyncio.run(main())
    assert sorted(i for i, _ in pairs) == list(range(300))
    assert all(v == -i for i, v in pairs)
    assert [i for i, _ in pairs][:3] != [0, 1, 2], "as they finish, not in order"


# -- stopping ----------------------------------------------------------------------------------------
def test_a_run_cancel_lets_items_in_flight_finish_and_starts_none() -> None:
    started: List[int] = []
    finished: List[int] = []

    async def main() -> milepost.Run:
        with milepost.Run("r", display="none") as run:

            async def fn(x: int) -> int:
                started.append(x)
                if x == 20:
                    run.cancel()
                await asyncio.sleep(0.01)
                finished.append(x)
                return x

            with pytest.raises(milepost.Cancelled):
                await milepost.async_map(fn, range(1000), 5, description="m")
            return run

    run = asyncio.run(main())
    assert sorted(started) == sorted(finished), "items in flight finished"
    assert max(started) < 20 + 5
    node = run.snapshot().find("m")
    assert (node["state"], node["done"], node["failed"], node["in_flight"]) == ("cancelled", len(started), 0, 0)
    assert run.snapshot().root["state"] == "cancelled"


def test_the_caller_cancelled_cancels_items_in_flight_and_leaves_no_task(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    done: List[int] = []

    async def fn(x: int) -> int:
        await asyncio.sleep(0 if x < 30 else 10)
        done.append(x)
        return x

    async def main() -> milepost.Run:
        with milepost.Run("r", display="none") as run:
            job = asyncio.ensure_future(milepost.async_map(fn, range(1000), 10, description="m"))
            while len(done) < 30:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
            assert asyncio.all_tasks() == {asyncio.current_task()}
            node = run.snapshot().find("m")
            assert (node["state"], node["done"], node["failed"], node["in_flight"]) == ("cancelled", 30, 0, 0)
            return run

    asyncio.run(main())
    _nothing_left_behind(caplog)


def test_ctrl_c_in_an_item_cancels_the_others_and_propagates(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    runs: List[milepost.Run] = []
    left: List[Any] = []

    async def fn(x: int) -> int:
        if x == 25:
            raise KeyboardInterrupt
        await asyncio.sleep(0 if x < 25 else 10)
        return x

    async def main() -> None:
        with milepost.Run("r", display="none") as run:
            runs.append(run)
            try:
                await milepost.async_map(fn, range(1000), 10, description="m")
            finally:
                left.extend(asyncio.all_tasks() - {asyncio.current_task()})

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())
    assert left == []
    node = runs[0].snapshot().find("m")
    assert (node["state"], node["failed"], node["in_flight"]) == ("cancelled", 0, 0)
    assert node["done"] <= 25, "items below 25 in flight at the Ctrl-C were cancelled, not counted"
    assert runs[0].snapshot().root["state"] == "cancelled"
    _nothing_left_behind(caplog)


def test_an_iterable_that_raises_ends_the_map_failed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")

    def items():
        yield from range(10)
        raise OSError("source broke")

    def bad_name(item: int, index: int) -> str:
        if item == 3:
            raise KeyError("no name")
        return str(item)

    async def main() -> milepost.Run:
        with milepost.Run("r", display="none") as run:
            with pytest.raises(OSError, match="source broke"):
                await milepost.async_map(double, items(), 3, return_exceptions=True, description="m")
            out = await milepost.async_map(double, range(5), 2, item_name=bad_name, return_exceptions=True)
            assert isinstance(out[3], KeyError) and out[4] == 8
            assert asyncio.all_tasks() == {asyncio.current_task()}
            return run

    run = asyncio.run(main())
    assert run.snapshot().find("m")["state"] == "failed"
    _nothing_left_behind(caplog)


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("concurrency", [0, -1, 1.5, "2", True])
def test_bad_concurrency_is_refused_before_anything_starts(concurrency: Any) -> None:
    async def main() -> None:
        with pytest.raises(milepost.InvalidValueError, match=repr(concurrency).replace(".", r"\.")):
            await milepost.async_map(double, range(3), concurrency, display="none")
        with pytest.raises(milepost.InvalidValueError, match="concurrency"):
            milepost.async_as_completed(double, range(3), concurrency)
        assert milepost.current_run() is None

    asyncio.run(main())


def test_a_sync_function_is_a_type_error_naming_it() -> None:
    def not_async(x: int) -> int:
        return x

    async def main() -> None:
        with milepost.Run("r", display="none") as run:
            with pytest.raises(TypeError, match="not_async"):
                await milepost.async_map(not_async, range(3))
            assert list(run.snapshot().nodes()) == [], "no phase was made"

    asyncio.run(main())


# -- the live channel --------------------------------------------------------------------------------
def test_a_live_retry_runs_exactly_the_failed_item_again() -> None:
    answers: List[str] = []
    calls = {3: 0}

    async def main() -> Any:
        with milepost.Run("retry-async", display="none") as run:

            async def fn(i: int) -> int:
                if i == 0:  # the first result waits while item 3 fails and is retried
                    while run.snapshot().root["failed"] < 1:
                        await asyncio.sleep(0.005)
                    answers.append(await asyncio.to_thread(lambda: published(run.id).send("retry")))
                if i == 3:
                    calls[3] += 1
                    if calls[3] == 1:
                        raise ValueError("flaky")
                return i

            out = await milepost.async_map(fn, range(4), 4, return_exceptions=True, description="pool")
            return out, run

    out, run = asyncio.run(main())
    assert answers == ["1 failed item will run again"]
    assert out == [0, 1, 2, 3] and calls[3] == 2
    node = run.snapshot().find("pool")
    assert (node["done"], node["failed"], node["retried"], node["total"]) == (4, 1, 1, 5)


CTRL_C_JOB = r"""
import asyncio, sys, milepost

async def fn(x):
    if x == 20:
        print("started", flush=True)
    await asyncio.sleep(0 if x < 20 else 30)
    return x

async def main():
    with milepost.Run("sigint", display="none") as run:
        try:
            await milepost.async_map(fn, range(1000), 10, description="m")
        finally:
            node = run.snapshot().find("m")
            left = asyncio.all_tasks() - {asyncio.current_task()}
            print(node["state"], node["done"], node["failed"], node["in_flight"], len(left), flush=True)

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
"""


def test_a_real_ctrl_c_under_asyncio_run_cancels_cleanly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-W", "error", "-c", CTRL_C_JOB], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    counts, last = out.splitlines()
    state, done, failed, in_flight, left = counts.split()
    assert (state, failed, in_flight, left, last) == ("cancelled", "0", "0", "0", "KeyboardInterrupt"), err
    assert int(done) <= 20, "the items sleeping when Ctrl-C came were cancelled, not counted"
    assert "Traceback" not in err and "pending" not in err, err
