"""Regressions for what a review and a newcomer found: loops inside loops, exceptions in loop
bodies, Ctrl-C, observers that misbehave, runs ended from odd places, bad settings."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

import milepost
from milepost import InvalidValueError


def test_an_exception_in_the_loop_body_propagates_and_fails_the_phase() -> None:
    with milepost.Run("r", display="none") as run:
        with pytest.raises(RuntimeError, match="boom"):
            for x in milepost.track(range(10), desc="loop"):
                if x == 3:
                    raise RuntimeError("boom")
        loop = run.snapshot().find("loop")
        assert (loop["done"], loop["state"]) == (3, "failed")
    with pytest.raises(ValueError, match="standalone"):
        for x in milepost.track(range(10), display="none"):
            if x == 2:
                raise ValueError("standalone")
    assert milepost.current_run() is None


def test_nested_loops_stay_two_phases_with_sensible_counts() -> None:
    seen = []
    for _epoch in milepost.track(range(5), desc="epochs", display="none"):
        run = milepost.current_run()
        for _batch in milepost.track(range(10), desc="batch"):
            pass
        seen.append(run.snapshot())
    last = seen[-1]
    assert [n["name"] for _, n in last.nodes()] == ["epochs", "batch"]
    batch = last.find("batch")
    assert (batch["done"], batch["total"], batch["state"]) == (50, 50, "completed")
    assert last.find("epochs")["done"] == 4, "the fifth epoch's body is still running"
    assert last.root["processed"] <= last.root["total"]


def test_bad_initial_starts_nothing() -> None:
    with pytest.raises(InvalidValueError, match="initial must be an int >= 0, got -1"):
        milepost.track(range(3), initial=-1, display="none")
    assert milepost.current_run() is None
    with pytest.raises(TypeError, match="not both"):
        milepost.track(range(3), description="a", desc="b")


def test_manual_bar_like_tqdm() -> None:
    with milepost.Run("r", display="none") as run:
        with milepost.track(total=10, desc="download", unit="MB") as bar:
            bar.update(3)
            bar.update()
            bar.set_description("downloading")
            assert (bar.n, bar.total) == (4, 10)
            bar.total = 12
        node = run.snapshot().find("downloading")
        assert (node["done"], node["total"], node["state"], node["unit"]) == (4, 12, "completed", "MB")
    with milepost.Run("r2", display="none") as run2:
        it = milepost.track(range(4), desc="x")
        for _ in it:
            it.set_description("renamed")
        it.update(2)
        assert run2.snapshot().find("renamed")["done"] == 6


def test_ctrl_c_inside_an_item_is_not_a_failure(clock) -> None:
    run = milepost.Run("r", display="none", clock=clock).start()
    ph = run.phase("p")
    with pytest.raises(KeyboardInterrupt):
        with ph.item("doc-1"):
            raise KeyboardInterrupt
    snap = run.snapshot().find("p")
    assert (snap["failed"], snap["done"], snap["in_flight"]) == (0, 0, 0)
    assert run.snapshot().data["recent"][0]["status"] == "cancelled"
    run.finish()


def test_ctrl_c_stops_thread_map_without_running_its_read_ahead() -> None:
    started = []
    first = threading.Event()

    def slow(i: int) -> int:
        started.append(i)
        first.set()
        time.sleep(0.2)
        return i

    def interrupt() -> None:
        first.wait(10)
        _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    with milepost.Run("r", display="none") as run:
        with pytest.raises(KeyboardInterrupt):
            milepost.thread_map(slow, range(200), workers=2, description="m")
        assert run.snapshot().find("m")["state"] == "cancelled"
        count = len(started)
    time.sleep(0.5)  # anything still queued would start now
    assert len(started) == count <= 4, "only the items already running finish"


def test_an_observer_without_interval_or_base_class_is_fine() -> None:
    got = []

    class Duck:
        def on_event(self, event):
            got.append(event.kind)

        def on_snapshot(self, snapshot):
            got.append("snapshot")

        def close(self):
            got.append("close")

    with milepost.Run("r", display="none", observers=[Duck()]) as run:
        run.phase("p").advance()
    assert got[0] == "run_started" and got[-2:] == ["snapshot", "close"]


@pytest.mark.parametrize("bad", [-1, 0, float("nan"), float("inf"), True, "5"])
def test_bad_intervals_are_named(bad) -> None:
    with pytest.raises(InvalidValueError, match="interval must be a positive number of seconds"):
        milepost.Run("r", display="none", interval=bad)

    class Obs(milepost.BaseObserver):
        interval = bad

    with pytest.raises(InvalidValueError, match="Obs.interval"):
        milepost.Run("r", display="none", observers=[Obs()])


@pytest.mark.parametrize("bad", [float("nan"), 0, -5, 50])
def test_bad_refresh_rates_are_named(bad) -> None:
    with pytest.raises(InvalidValueError, match="refresh_hz must be a number in"):
        milepost.Run("r", display="none", refresh_hz=bad)


def test_a_run_ended_from_inside_an_observer_does_not_hang() -> None:
    class Stopper(milepost.BaseObserver):
        def __init__(self, run_box):
            self.run_box = run_box

        def on_event(self, event):
            if event.kind == "log":
                self.run_box[0].finish("cancelled")

    box: list = []
    run = milepost.Run("r", display="none", observers=[Stopper(box)])
    box.append(run)
    run.start()
    run.log("stop now")
    for _ in range(100):  # bounded wait for the dispatcher thread to act
        if run.snapshot().root["state"] != "running":
            break
        time.sleep(0.05)
    assert run.snapshot().root["state"] == "cancelled"
    assert milepost.current_run() is None
    run.finish()  # idempotent


def test_event_text_is_clipped_like_the_snapshot(clock, event_log) -> None:
    events = event_log.events
    with milepost.Run("r", display="none", clock=clock, observers=[event_log]) as run:
        run.phase("p").fail("n" * 10_000, "e" * 1_000_000)
        run.log("m" * 1_000_000, source="s" * 10_000)
    failed = next(e for e in events if e.kind == "item_failed")
    log = next(e for e in events if e.kind == "log")
    assert len(failed.item) <= 257 and len(failed.error) <= 2001
    assert len(log.message) <= 2001 and len(log.source) <= 257


def test_default_workers_follow_the_cpu_count(monkeypatch) -> None:
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    names = set()

    def who(_):
        names.add(threading.current_thread().name)
        time.sleep(0.01)

    milepost.thread_map(who, range(40), display="none")
    assert 1 < len(names) <= 7
