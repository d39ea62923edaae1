"""`item.stream(text)`: the tail of what an item streams, kept by the core with its lane (or,
for an item without a lane, its node), in the snapshot, and on the displays."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import re
import textwrap
import threading

import pytest
from rich.console import Console

import milepost
import monitor_fixtures as fixture
from milepost.live.place import live_dir
from milepost.live.reader import find_run
from milepost.monitor.render import in_flight
from milepost.monitor.view import View
from procs_helpers import streams
from test_cost_outlook import _screens


def _lane_tails(run) -> dict:
    return {lane["item"]: lane["tail"] for lane in run.snapshot().data["lanes"] if lane["item"]}


def test_pool_items_stream_to_their_lanes_and_the_tail_goes_with_the_item() -> None:
    seen = {}
    streaming, check = threading.Barrier(3), threading.Event()

    def work(x: int) -> int:
        item = milepost.current_item()
        for token in ("Once ", "upon\r\na ", "\x1b[31mtime\x1b[0m", "\x1b]0;pwned\x07", f" #{x}"):
            item.stream(token)
        streaming.wait(10)
        check.wait(10)
        return x

    with milepost.Run("pool", display="none") as run:
        pool = threading.Thread(
            target=lambda: milepost.thread_map(work, range(2), workers=2, description="tell", run=run)
        )
        pool.start()
        streaming.wait(10)
        seen.update(_lane_tails(run))
        check.set()
        pool.join()
        lanes = run.snapshot().data["lanes"]
    # Escapes and control characters gone, the newline marked, each lane its own item's tail.
    assert seen == {"0": "Once upon↵a time #0", "1": "Once upon↵a time #1"}
    assert all(lane["tail"] is None for lane in lanes)


def test_a_long_stream_keeps_its_last_400_characters() -> None:
    with milepost.Run("long", display="none") as run, run.lane("w0"):
        with run.phase("p").item("essay") as item:
            for i in range(5000):
                item.stream(f"w{i} ")
            tail = _lane_tails(run)["essay"]
    assert len(tail) == 400 and tail.endswith("w4998 w4999 ")


def test_an_item_without_a_lane_streams_into_its_node() -> None:
    with milepost.Run("solo", display="none") as run:
        ph = run.phase("write", total=2)
        with ph.item("chapter-1") as item:
            item.stream("It was\na dark")
            node = run.snapshot().find("write")
            assert (node["tail_item"], node["tail"]) == ("chapter-1", "It was↵a dark")
            assert run.snapshot().root["tail"] is None, "the node the item belongs to, not its ancestors"
        node = run.snapshot().find("write")
        assert (node["tail_item"], node["tail"]) == (None, None)
        with ph.item("chapter-2") as item:
            item.stream("and stormy night")
            assert run.snapshot().find("write")["tail"] == "and stormy night"


def test_asyncio_items_stream_to_their_slots_lanes() -> None:
    seen = {}

    async def tell(x: int) -> int:
        milepost.current_item().stream(f"story {x}")
        await asyncio.sleep(0.05)
        return x

    async def main() -> None:
        with milepost.Run("async", display="none") as run:
            task = asyncio.ensure_future(milepost.async_map(tell, range(3), concurrency=3))
            await asyncio.sleep(0.02)
            seen.update(_lane_tails(run))
            await task

    asyncio.run(main())
    assert seen == {"0": "story 0", "1": "story 1", "2": "story 2"}


def test_bad_text_and_streaming_outside_the_block_are_errors_naming_them() -> None:
    with milepost.Run("bad", display="none") as run:
        ph = run.phase("p")
        item = ph.item("doc-1")
        with pytest.raises(milepost.InvalidValueError, match="'doc-1' before it started"):
            item.stream("early")
        with item:
            with pytest.raises(TypeError, match=r"item.stream\(\) text must be a str, got bytes: b'raw'"):
                item.stream(b"raw")
            item.stream("fine")
            with pytest.raises(TypeError, match="got int: 7"):
                item.stream(7)
            assert run.snapshot().find("p")["tail"] == "fine", "what was streamed stays"
        with pytest.raises(milepost.InvalidValueError, match="'doc-1' after it ended"):
            item.stream("late")


def test_streaming_in_a_worker_process_does_nothing_and_fails_nothing() -> None:
    with milepost.Run("workers", display="none") as run:
        results = milepost.process_map(streams, range(6), workers=2, mp_context=mp.get_context("fork"))
        lanes = run.snapshot().data["lanes"]
    assert results == list(range(6))
    assert all(lane["tail"] is None for lane in lanes)


# -- displays ----------------------------------------------------------------------------------


def test_the_native_display_shows_the_end_of_each_tail_on_its_lanes_line(pty_run) -> None:
    code = textwrap.dedent(
        """
        import threading, time, milepost
        go = threading.Event()
        def work(x):
            item = milepost.current_item()
            item.stream("The committee's report\\nfinds that " + "the budget rose by 4% " * 5 + f"while #{x}")
            go.wait(5)
            return x
        with milepost.Run("job", refresh_hz=20) as run:
            with run.phase("solo", total=1) as solo, solo.item("intro") as item:
                item.stream("Dear reader,\\n\\x1b[2Jwelcome")
                pool = threading.Thread(target=milepost.thread_map, args=(work, range(2), 2), kwargs={"run": run})
                pool.start()
                time.sleep(0.6)
            go.set()
            pool.join()
        """
    )
    res = pty_run(code, cols=80, rows=16)
    assert res.status == 0, res.raw[-2000:]
    lane = re.compile(r"^    w[01] ▸ [01] \(0 done\) │ …[^\n]*rose by 4% while #[01]$", re.M)
    solo = re.compile(r"^      ▸ intro │ Dear reader,↵welcome$", re.M)
    screens = _screens(res.raw, 80, 16)
    assert any(len(lane.findall(s)) == 2 and solo.search(s) for s in screens), res.raw[-3000:]
    assert all(max(map(len, s.splitlines()), default=0) <= 80 for s in screens)
    assert "│" not in res.text, "the tails went with their items"


def test_the_monitor_shows_the_last_lines_of_each_tail_with_their_end_visible(tmp_path) -> None:
    fixture.publish(live_dir(), tmp_path / "runs.db")
    run = find_run(fixture.RUN_ID)
    state = run.read()
    state.snapshot["root"]["children"][1].update(tail_item="doc-0700.md", tail="one↵two↵three↵" + "x" * 200 + "END")
    state.reports["doc-0612.md"] = {"progress": [3, 20]}
    view = View(run, state, fixture.CLOCK)
    rows = {row["item"]: row for row in view.in_flight}
    assert rows["doc-0613.md"]["tail"] == "The committee's report finds that↵the budget rose by 4% while"
    assert rows["doc-0700.md"]["lane"] == "main" and rows["doc-0612.md"]["report"] == {"progress": [3, 20]}
    console = Console(width=60, record=True, color_system=None)
    console.print(in_flight(view, 60))
    text = console.export_text()
    assert "│ the budget rose by 4% while" in text
    assert "│ two" in text and "│ three" in text and "│ one" not in text, "its last three lines"
    assert re.search(r"│ …x+END\n", text), text
    assert all(len(line) <= 60 for line in text.splitlines())
