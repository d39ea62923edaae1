"""Items: durations, failures with their error text, skips, and worker lanes."""

from __future__ import annotations

import threading

import pytest

import milepost


def test_item_records_duration_and_success(clock) -> None:
    with milepost.Run("items", display="none", clock=clock) as run:
        ph = run.phase("p", total=3)
        with ph.item("a"):
            assert run.snapshot().find("p")["in_flight"] == 1
            clock.advance(2.0)
        with ph.item("b"):
            clock.advance(4.0)
        snap = run.snapshot()
        p = snap.find("p")
        assert (p["done"], p["in_flight"], p["mean_item_seconds"]) == (2, 0, 3.0)
        assert [r["name"] for r in snap.data["recent"]] == ["b", "a"]
        assert snap.data["recent"][0]["duration"] == 4.0


def test_item_failure_records_error_and_reraises(clock, event_log) -> None:
    events = event_log.events
    with milepost.Run("items", display="none", clock=clock, observers=[event_log]) as run:
        ph = run.phase("p")
        with pytest.raises(KeyError):
            with ph.item("doc-7"):
                raise KeyError("missing field")
        with ph.item("doc-8") as it:
            it.skip()
        snap = run.snapshot()
        p = snap.find("p")
        assert (p["failed"], p["skipped"], p["done"], p["success_rate"]) == (1, 1, 0, 0.0)
        assert snap.data["failures"][0]["error"] == "KeyError: 'missing field'"
    failed = [e for e in events if isinstance(e, milepost.ItemFailed)]
    assert failed[0].item == "doc-7" and failed[0].path == ("items", "p")


def test_phase_exception_marks_it_failed(clock) -> None:
    run = milepost.Run("r", display="none", clock=clock).start()
    with pytest.raises(RuntimeError):
        with run.phase("p"):
            raise RuntimeError("x")
    assert run.snapshot().find("p")["state"] == "failed"
    run.finish()
    # One rule for how a run ends: a failed phase makes it failed, even when the job caught
    # the exception and went on (issue 9, item 13).
    assert run.snapshot().root["state"] == "failed"


def test_run_exception_and_interrupt_states(clock) -> None:
    with pytest.raises(ValueError):
        with milepost.Run("r", display="none", clock=clock) as run:
            run.phase("open")
            raise ValueError("x")
    snap = run.snapshot()
    assert snap.root["state"] == "failed"
    assert snap.find("open")["state"] == "failed", "open phases end with their run"
    with pytest.raises(KeyboardInterrupt):
        with milepost.Run("r2", display="none", clock=clock) as run2:
            raise KeyboardInterrupt
    assert run2.snapshot().root["state"] == "cancelled"


def test_thread_map_gives_each_worker_a_lane_and_keeps_order() -> None:
    seen_threads = set()

    def work(x: int) -> int:
        seen_threads.add(threading.get_ident())
        if x == 13:
            raise ValueError("unlucky")
        return x * x

    with milepost.Run("pool", display="none") as run:
        out = milepost.thread_map(work, range(100), workers=4, description="square", return_exceptions=True)
        snap = run.snapshot()
    assert [r for i, r in enumerate(out) if i != 13] == [i * i for i in range(100) if i != 13]
    assert isinstance(out[13], ValueError)
    sq = snap.find("square")
    assert (sq["done"], sq["failed"], sq["total"], sq["state"]) == (99, 1, 100, "completed")
    lanes = snap.data["lanes"]
    assert len(seen_threads) <= len(lanes) <= 4  # a pool thread may start and find no work left
    assert sum(lane["done"] + lane["failed"] for lane in lanes) == 100
    assert all(lane["state"] == "finished" for lane in lanes)
    assert snap.data["failures"][0]["lane"] in {lane["name"] for lane in lanes}


def test_thread_map_raises_the_first_error_by_default() -> None:
    def work(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    with milepost.Run("pool", display="none") as run:
        with pytest.raises(ValueError, match="three"):
            milepost.thread_map(work, range(50), workers=2, description="m")
        assert run.snapshot().find("m")["state"] == "failed"


def test_thread_map_without_a_run_makes_its_own() -> None:
    assert milepost.thread_map(str, [1, 2, 3], workers=2, display="none") == ["1", "2", "3"]
    assert milepost.current_run() is None


def test_lane_context_binds_items_on_this_thread(clock) -> None:
    with milepost.Run("lanes", display="none", clock=clock) as run:
        ph = run.phase("p")
        with run.lane("main-worker"):
            with ph.item("x.json"):
                lane = run.snapshot().data["lanes"][0]
                assert (lane["name"], lane["item"], lane["state"]) == ("main-worker", "x.json", "busy")
        lane = run.snapshot().data["lanes"][0]
        assert (lane["state"], lane["done"]) == ("finished", 1)


def test_a_number_names_an_item_as_in_the_pools() -> None:
    with milepost.Run("numbered", display="none") as run:
        ph = run.phase("p")
        with ph.item(0) as item:
            assert item.name == "0"
        with pytest.raises(TypeError, match="item name must be a str or path, got tuple"):
            with ph.item((1, 2)):
                pass
    assert run.snapshot().find("p")["done"] == 1
