"""Items entered and ended natively (`ItemBase`, issue 16): a run on the real clock with no
budget takes the native path for a plain item; everything else an item does (a failure, a
stream, a report, a cost, metrics) ends it through its Python path. These tests run items of
both kinds side by side and check counts, lanes, history rows and `current_item()`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sqlite3
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Tuple

import pytest

import milepost
from milepost.persistence import History, default_path


def _rows(run_id: str) -> list:
    db = sqlite3.connect(str(default_path()))
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            "SELECT name, status, started_at, duration, error, metrics FROM items WHERE run_id = ? ORDER BY id",
            (run_id,),
        ).fetchall()
    finally:
        db.close()


def test_plain_items_count_done_skipped_and_failed_exactly(event_log) -> None:
    n = 3_000
    with milepost.Run("native", display="none", history=False, observers=[event_log]) as run:
        ph = run.phase("p", total=n)
        for i in range(n):
            try:
                with ph.item(i) as item:
                    assert milepost.current_item() is item and item.name == str(i)
                    if i % 7 == 0:
                        item.skip()
                    if i % 11 == 0:
                        raise ValueError(f"bad {i}")
            except ValueError:
                pass
            assert milepost.current_item() is None
        node = run.snapshot().find("p")
    failed = sum(1 for i in range(n) if i % 11 == 0)
    skipped = sum(1 for i in range(n) if i % 7 == 0 and i % 11 != 0)
    assert (node["done"], node["skipped"], node["failed"], node["in_flight"]) == (
        n - failed - skipped,
        skipped,
        failed,
        0,
    )
    events = [e for e in event_log.events if isinstance(e, milepost.ItemFailed)]
    assert [(e.item, e.error) for e in events[:2]] == [("0", "ValueError: bad 0"), ("11", "ValueError: bad 11")]
    assert len(events) == failed


def test_an_exception_is_a_failure_with_its_text_and_is_raised_again() -> None:
    with milepost.Run("native", display="none", history=False) as run:
        ph = run.phase("p")
        with pytest.raises(KeyError, match="missing"):
            with ph.item("doc-1"):
                raise KeyError("missing")
        with ph.item("doc-2"):
            pass
        snap = run.snapshot()
    assert (snap.find("p")["failed"], snap.find("p")["done"]) == (1, 1)
    assert snap.data["failures"][0]["name"] == "doc-1"
    assert snap.data["failures"][0]["error"] == "KeyError: 'missing'"
    assert [r["name"] for r in snap.data["recent"]] == ["doc-2", "doc-1"]


def test_history_rows_have_the_status_start_and_duration_of_each_item() -> None:
    before = time.time()
    with milepost.Run("native-rows", display="none") as run:
        ph = run.phase("map")
        with ph.item("slow") as slow:
            time.sleep(0.05)
        with ph.item("skipped") as skipped:
            skipped.skip()
        with pytest.raises(RuntimeError):
            with ph.item("broken"):
                raise RuntimeError("no")
        with ph.item("costly") as costly:
            costly.metric("tokens", 5)
        ph.item(7).__enter__().__exit__(None, None, None)  # an int name, entered by hand
    after = time.time()
    rows = {r["name"]: r for r in _rows(run.id)}
    assert set(rows) == {"slow", "skipped", "broken", "costly", "7"}
    assert [rows[k]["status"] for k in ("slow", "skipped", "broken", "costly", "7")] == [
        "done",
        "skipped",
        "failed",
        "done",
        "done",
    ]
    assert 0.05 <= rows["slow"]["duration"] < 5.0
    assert all(before - 1 <= r["started_at"] <= after + 1 for r in rows.values())
    assert all(r["duration"] >= 0 for r in rows.values())
    assert rows["slow"]["started_at"] < rows["skipped"]["started_at"] <= rows["costly"]["started_at"]
    assert rows["broken"]["error"] == "RuntimeError: no" and rows["slow"]["error"] is None
    assert json.loads(rows["costly"]["metrics"]) == {"tokens": 5} and rows["slow"]["metrics"] is None
    # `item.row` is the row as stored (what a worker process sends its parent).
    assert slow.row == ("done", rows["slow"]["started_at"], rows["slow"]["duration"], None, None)
    assert skipped.row is not None and skipped.row[0] == "skipped"
    assert costly.row is not None and costly.row[4] == json.dumps({"tokens": 5})


def test_no_row_without_history() -> None:
    with milepost.Run("native", display="none", history=False) as run:
        with run.phase("p").item("a") as item:
            pass
    assert item.row is None


def test_many_plain_items_are_all_kept_in_the_history() -> None:
    # More than one write batch: the writer is woken and no row is lost.
    n = 25_000
    with milepost.Run("native-many", display="none") as run:
        ph = run.phase("p", total=n)
        for i in range(n):
            with ph.item(i) as item:
                if i % 5 == 0:
                    item.skip()
    rows = _rows(run.id)
    assert len(rows) == n
    assert sum(r["status"] == "skipped" for r in rows) == n // 5
    assert [r["name"] for r in rows[:3]] == ["0", "1", "2"]


def test_streams_reports_and_costs_still_end_the_item() -> None:
    with milepost.Run("native-agent", display="none") as run:
        ph = run.phase("fix")
        with ph.item("issue-1") as item:
            item.stream("thinking…")
            assert run.snapshot().find("fix")["tail"] == "thinking…"
            item.progress(2, of=5)
            item.check("tests pass", True)
            item.metric("cost_usd", 0.25)
        with pytest.raises(milepost.InvalidValueError, match="after it ended"):
            item.stream("late")
        snap = run.snapshot()
    assert snap.find("fix")["done"] == 1 and snap.find("fix")["tail"] is None
    with History.open() as history:
        (report,) = history.run(run.id)["reports"]
    assert (report["name"], report["progress"], report["checks"]) == ("issue-1", [2, 5], [("tests pass", True)])
    (row,) = _rows(run.id)
    assert json.loads(row["metrics"]) == {"cost_usd": 0.25}


def test_items_in_worker_lanes_count_on_their_lane() -> None:
    def work(x: int) -> int:
        item = milepost.current_item()
        assert item is not None and item.name == str(x)
        return x

    with milepost.Run("native-lanes", display="none", history=False) as run:
        out = milepost.thread_map(work, range(200), workers=4, description="t")
        snap = run.snapshot()
    assert out == list(range(200))
    lanes = snap.data["lanes"]
    assert len(lanes) == 4 and sum(lane["done"] for lane in lanes) == 200
    assert snap.find("t")["done"] == 200


def test_eight_threads_count_every_item_exactly() -> None:
    threads, per = 8, 2_000
    seen_wrong: list = []
    with milepost.Run("native-threads", display="none") as run:
        ph = run.phase("p", total=threads * per)

        def worker(t: int) -> None:
            for i in range(per):
                with ph.item(f"{t}-{i}") as item:
                    if milepost.current_item() is not item:
                        seen_wrong.append((t, i))
                    if i % 4 == 0:
                        item.skip()

        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        node = run.snapshot().find("p")
    assert seen_wrong == []
    assert (node["done"], node["skipped"], node["in_flight"]) == (threads * per * 3 // 4, threads * per // 4, 0)
    rows = _rows(run.id)
    assert len(rows) == threads * per and len({r["name"] for r in rows}) == threads * per


def test_current_item_is_the_innermost_one() -> None:
    with milepost.Run("native", display="none", history=False) as run:
        ph = run.phase("p")
        with ph.item("outer") as outer:
            with ph.item("inner") as inner:
                assert milepost.current_item() is inner
            assert milepost.current_item() is outer
        assert milepost.current_item() is None


def test_a_sync_with_in_a_coroutine_is_current_in_its_task_only() -> None:
    """`with` (not `async with`) in an `async def` whose block awaits: other asyncio tasks run
    on the same thread meanwhile, each with its own current item."""

    async def one(ph: milepost.Task, i: int) -> None:
        with ph.item(f"job-{i}") as item:
            for _ in range(3):
                await asyncio.sleep(0.001 * (i % 3))
                assert milepost.current_item() is item
            # A thread handed this task's context sees its item.
            assert await asyncio.to_thread(milepost.current_item) is item

    async def main() -> milepost.Run:
        with milepost.Run("native-async", display="none", history=False) as run:
            ph = run.phase("p")
            with ph.item("around") as around:  # entered outside the event loop's tasks
                await asyncio.gather(*(one(ph, i) for i in range(20)))
                assert milepost.current_item() is around
        return run

    node = asyncio.run(main()).snapshot().find("p")
    assert (node["done"], node["in_flight"]) == (21, 0)


def test_an_item_entered_through_a_helper_under_an_event_loop_is_current_in_its_task_only() -> None:
    """`ExitStack.enter_context` enters the item from a plain function, but under the event
    loop: the block still awaits while other tasks run."""

    async def one(ph: milepost.Task, i: int) -> None:
        with contextlib.ExitStack() as stack:
            item = stack.enter_context(ph.item(f"job-{i}"))
            for _ in range(3):
                await asyncio.sleep(0.001 * (i % 3))
                assert milepost.current_item() is item

    async def main() -> milepost.Run:
        with milepost.Run("native-stack", display="none", history=False) as run:
            ph = run.phase("p")
            await asyncio.gather(*(one(ph, i) for i in range(20)))
            assert milepost.current_item() is None
        return run

    node = asyncio.run(main()).snapshot().find("p")
    assert (node["done"], node["in_flight"]) == (20, 0)


def test_an_item_entered_outside_the_event_loop_is_current_inside_it() -> None:
    async def inner(ph: milepost.Task) -> tuple:
        seen = milepost.current_item()
        async with ph.item("async") as item:
            innermost = milepost.current_item()
        return seen, item, innermost

    with milepost.Run("native", display="none", history=False) as run:
        ph = run.phase("p")
        with ph.item("sync") as outer:
            seen, item, innermost = asyncio.run(inner(ph))
    assert seen is outer and innermost is item


def test_budgeted_and_manual_clock_items_take_the_python_path(clock) -> None:
    with milepost.Run("native", display="none", history=False, clock=clock) as run:
        ph = run.phase("p")
        with ph.item("a") as a:
            clock.advance(3.0)
            assert milepost.current_item() is a
        assert run.snapshot().data["recent"][0]["duration"] == 3.0
    with milepost.Run("native", display="none", history=False, budget={"cost_usd": 1.0}) as run:
        ph = run.phase("p")
        with ph.item("b") as b:
            b.metric("cost_usd", 0.5)
        assert run.snapshot().find("p")["done"] == 1


def test_item_takes_one_name() -> None:
    with milepost.Run("native", display="none", history=False) as run:
        ph = run.phase("p")
        with ph.item(name="by-keyword") as item:
            assert item.name == "by-keyword"
        with pytest.raises(TypeError):
            ph.item()  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="item name must be a str or path, got list"):
            with ph.item([1]):
                pass
        assert ph.done == 1


def test_a_finished_run_and_its_tasks_are_freed() -> None:
    """A task keeps its last item to make it again, and the item refers to its task: the
    collector must see that cycle, or every run would stay in memory."""

    def job() -> tuple:
        with milepost.Run("native-freed", display="none", history=False) as run:
            ph = run.phase("p")
            for i in range(10):
                with ph.item(i):
                    pass
        return weakref.ref(ph), weakref.ref(run)

    task, run = job()
    gc.collect()
    assert task() is None and run() is None


def test_a_bound_exit_held_elsewhere_keeps_its_item_and_ends_it() -> None:
    """A loop's items get the same bound `__enter__`/`__exit__` each time (nothing made per
    item); one held by the caller keeps its item from being made again for the next."""
    with milepost.Run("bound", display="none", history=False) as run:
        ph = run.phase("p")
        with ph.item("a"):
            pass
        with ph.item("b") as kept:
            pass
        del kept
        first = ph.item("c")
        enter, leave = first.__enter__, first.__exit__
        with ph.item("d"):
            pass  # an item of its own: "c" is held through its bound methods
        del first
        enter()
        with ph.item("e") as inner:
            assert milepost.current_item() is inner
        leave(None, None, None)  # ends "c", not the item "e" was
        names = [r["name"] for r in run.snapshot().data["recent"]]
        assert sorted(names) == ["a", "b", "c", "d", "e"] and ph.done == 5
        assert milepost.current_item() is None


def test_an_item_class_method_is_made_only_by_its_class_and_goes_with_it() -> None:
    from milepost.task import Item

    method = type(Item.__dict__["__enter__"])
    with pytest.raises(TypeError):
        method()  # made by the class alone: one made here would bind nothing
    assert Item.__enter__.__name__ == "__enter__", "read on the class, the method descriptor"

    class Mine(Item):
        pass

    made = weakref.ref(Mine)
    del Mine
    gc.collect()
    assert made() is None, "a class made at run time is freed with its methods"


def test_a_weak_reference_to_a_bound_exit_keeps_its_item_from_being_made_again() -> None:
    with milepost.Run("weak", display="none", history=False) as run:
        ph = run.phase("p")
        first = ph.item("b")
        weak_exit = weakref.ref(first.__exit__)
        with first:
            pass
        del first
        second = ph.item("c")
        second.__enter__()
        held = weak_exit()
        assert held is None or held.__self__ is not second, "the weak reference reaches its own item only"
        assert milepost.current_item() is second
        second.__exit__(None, None, None)
        assert ph.done == 2 and milepost.current_item() is None


def test_items_in_a_fresh_thread_and_in_one_whose_loop_ended_are_current() -> None:
    """Where no loop ever ran, and where one ran and ended, a plain `with` takes the
    thread's own list; under a loop started later in that thread, a helper's item is still
    current in its task only."""
    seen = []

    def body(ph: milepost.Task) -> None:
        with ph.item("fresh") as item:
            seen.append(milepost.current_item() is item)
        asyncio.run(asyncio.sleep(0))  # a loop ran in this thread, and ended
        with contextlib.ExitStack() as stack:
            item = stack.enter_context(ph.item("after"))
            seen.append(milepost.current_item() is item)

        async def helper(i: int) -> None:
            with contextlib.ExitStack() as stack:
                item = stack.enter_context(ph.item(f"under-{i}"))
                await asyncio.sleep(0.001 * i)
                seen.append(milepost.current_item() is item)

        async def gathered() -> None:
            await asyncio.gather(*(helper(i) for i in range(3)))

        asyncio.run(gathered())
        seen.append(milepost.current_item() is None)

    with milepost.Run("loops", display="none", history=False) as run:
        ph = run.phase("p")
        worker = threading.Thread(target=body, args=(ph,))
        worker.start()
        worker.join(30)
    assert seen == [True] * 6 and run.snapshot().find("p")["done"] == 5


def _through_a_name(on_text: Callable[[Any, int], None]) -> Tuple[Dict[str, Any], Any]:
    """Enters and leaves one plain item named by an object whose `__fspath__` calls
    `on_text(item, nth)` each time the item's name is asked for (the first time on the way in,
    the second on the way out); returns the phase's counts and the item."""
    asked: List[int] = []
    holder: List[Any] = []

    class Name:
        def __fspath__(self) -> str:
            asked.append(len(asked))
            on_text(holder[0], len(asked))
            return "odd name"

    with milepost.Run("names", display="none", history=False) as run:
        it = run.phase("p").item(Name())
        holder.append(it)
        with it:
            pass
    assert len(asked) >= 2, "the name's text was asked for on the way in and out"
    return run.snapshot().find("p"), it


def test_a_name_whose_text_uses_the_item_is_entered_and_ended_natively() -> None:
    """No borrow of the item is held while Python code runs on the way in (a name's
    `__fspath__` here): the item is read and written from it, and ends as a plain item does.
    The entry and exit take what they need from the item in one borrow each, an atomic
    operation a borrow."""
    seen = []

    def use(item: Any, nth: int) -> None:
        seen.append((item.row, milepost.current_item() is item))
        if nth == 1:
            item.skip()  # an exclusive borrow of the item, while it is entered

    p, _ = _through_a_name(use)
    assert seen[0] == (None, False), "read on the way in, before it is current"
    assert (p["done"], p["skipped"]) == (0, 1)


def test_what_a_name_asks_of_its_item_while_the_item_ends_is_refused() -> None:
    """Found in review: the native end marked the item ended only after it read the name, so a
    name's `__fspath__` run by the end could stream into the item (which then never settled)
    or skip it after it was counted done. The item is ended first now, as on Python's path."""

    def late(item: Any, nth: int) -> None:
        if nth == 2:  # while the item ends
            item.skip()
            with pytest.raises(milepost.MilepostError, match="after it ended"):
                item.stream("late")

    p, it = _through_a_name(late)
    assert (p["done"], p["skipped"]) == (1, 0)
    assert not it._skipped, "counted done, and says so"
