"""Observers: events in order, snapshots on schedule, failures isolated, files atomic."""

from __future__ import annotations

import dataclasses
import json
import logging

import milepost
from milepost import dispatch


class Recorder(milepost.BaseObserver):
    def __init__(self, interval=None):
        self.interval = interval
        self.events = []
        self.snapshots = []
        self.closed = 0

    def on_event(self, event):
        self.events.append(event)

    def on_snapshot(self, snapshot):
        self.snapshots.append(snapshot)

    def close(self):
        self.closed += 1


def test_lifecycle_events_arrive_typed_and_in_order(clock) -> None:
    rec = Recorder()
    with milepost.Run("life", display="none", clock=clock, observers=[rec]) as run:
        with run.phase("map", total=1) as ph:
            with ph.step("inner"):
                ph.fail("doc", ValueError("bad"))
                ph.retry("doc")
        run.log("hello", level="WARNING", source="me")
    kinds = [e.kind for e in rec.events]
    assert kinds == [
        "run_started",
        "phase_started",
        "step_started",
        "item_failed",
        "item_retried",
        "step_finished",
        "phase_finished",
        "log",
        "run_finished",
    ]
    assert isinstance(rec.events[3], milepost.ItemFailed) and rec.events[3].error == "ValueError: bad"
    assert rec.events[2].path == ("life", "map", "inner")
    assert rec.events[7].level == "warning" and rec.events[7].source == "me"
    assert all(e.run_id == run.id and e.timestamp > 0 for e in rec.events)
    assert rec.events[-1].state == "completed"
    assert rec.closed == 1
    assert rec.snapshots[-1].root["state"] == "completed", "the final snapshot comes after the end"


def test_observer_is_protocol_compatible() -> None:
    assert isinstance(Recorder(), milepost.Observer)


def test_snapshots_follow_the_interval(clock) -> None:
    rec = Recorder(interval=5.0)
    with milepost.Run("sched", display="none", clock=clock, observers=[rec]) as run:
        ph = run.phase("p")
        for _ in range(20):
            clock.advance(1.0)
            ph.advance()
            run.poll()
    # At 0 s (start), 5, 10, 15, 20 s, and the final one.
    assert len(rec.snapshots) == 6
    assert [s.root["done"] for s in rec.snapshots][-1] == 20


def test_a_failing_observer_is_reported_once_and_never_breaks_the_job(clock, caplog) -> None:
    class Broken(milepost.BaseObserver):
        interval = 0.5

        def on_event(self, event):
            raise RuntimeError("observer bug")

        def on_snapshot(self, snapshot):
            raise OSError("disk gone")

    rec = Recorder()
    with caplog.at_level(logging.ERROR, logger="milepost"):
        with milepost.Run("robust", display="none", clock=clock, observers=[Broken(), rec]) as run:
            ph = run.phase("p")
            for _ in range(10):
                clock.advance(1)
                ph.advance()
                run.poll()
    reports = [r for r in caplog.records if "observer" in r.getMessage()]
    assert len(reports) == 1 and "observer bug" in reports[0].getMessage()
    assert rec.snapshots[-1].root["done"] == 10, "the other observer saw everything"
    assert run.observer_failures > 10


def test_event_queue_is_bounded_and_counts_drops(clock, monkeypatch) -> None:
    monkeypatch.setattr(dispatch, "MAX_QUEUED_EVENTS", 5)
    rec = Recorder()
    with milepost.Run("flood", display="none", clock=clock, observers=[rec]) as run:
        ph = run.phase("p")
        for i in range(20):
            ph.fail(f"x{i}", "e")
        assert run.events_dropped == 21 - 5  # phase_started and 20 failures, 5 kept
        assert run.snapshot().data["events_dropped"] == 16
        snap = run.snapshot()
    assert snap.find("p")["failed"] == 20, "counts never depend on the event queue"


def test_json_snapshot_file_is_written_atomically_and_at_the_end(tmp_path, clock) -> None:
    path = tmp_path / ".progress.json"
    with milepost.Run("file", display="none", clock=clock, snapshot_file=path) as run:
        ph = run.phase("p", total=4)
        ph.advance(2)
        clock.advance(3)
        run.poll()
        mid = json.loads(path.read_text())
        assert mid["root"]["children"][0]["done"] == 2 and mid["schema"] == milepost.SCHEMA_VERSION
        ph.advance(2)
    final = json.loads(path.read_text())
    assert final["root"]["state"] == "completed" and final["root"]["done"] == 4
    assert [p.name for p in tmp_path.iterdir()] == [".progress.json"], "no temporary files left"


def test_snapshot_file_write_failure_warns_once(tmp_path, clock, caplog) -> None:
    # A directory where the file should be makes every replace fail, as a full disk would.
    target = tmp_path / "snap.json"
    target.mkdir()
    (target / "keep").write_text("x")
    with caplog.at_level(logging.WARNING, logger="milepost"):
        with milepost.Run("full", display="none", clock=clock, snapshot_file=target) as run:
            ph = run.phase("p")
            for _ in range(5):
                clock.advance(3)
                ph.advance()
                run.poll()
    assert run.snapshot().root["done"] == 5
    assert len([r for r in caplog.records if "cannot write" in r.getMessage()]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap.json"], "temporary files cleaned up"


def test_logging_observer_gives_structured_extra(clock, caplog) -> None:
    logger = logging.getLogger("test.milepost")
    with caplog.at_level(logging.INFO, logger="test.milepost"):
        with milepost.Run(
            "logs", display="none", clock=clock, observers=[milepost.LoggingObserver(logger, interval=None)]
        ) as run:
            run.phase("p").fail("doc-1", "boom")
    failed = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert failed[0].milepost["event"] == "item_failed" and failed[0].milepost["item"] == "doc-1"
    final = caplog.records[-1]
    assert final.milepost["failed"] == 1 and final.milepost["run_id"] == run.id


def test_console_summary_prints_phases_and_failures(clock) -> None:
    import io

    out = io.StringIO()
    with milepost.Run("sum", display="none", clock=clock, observers=[milepost.ConsoleSummary(out)]) as run:
        with run.phase("map", total=2) as ph:
            ph.advance()
            ph.fail("doc-9", "bad")
    text = out.getvalue()
    assert text.startswith("summary: sum › map · completed")
    assert "map: 2/2" in text and "failed doc-9: bad" in text


def test_observers_run_on_the_dispatcher_thread_not_the_callers() -> None:
    import threading

    seen = threading.Event()
    threads = set()

    class Where(milepost.BaseObserver):
        interval = 0.05

        def on_event(self, event):
            threads.add(threading.current_thread().name)
            if event.kind == "log":
                seen.set()

        def on_snapshot(self, snapshot):
            threads.add(threading.current_thread().name)

        def close(self):
            threads.add(threading.current_thread().name)

    with milepost.Run("bg", display="none", observers=[Where()]) as run:
        run.phase("p").advance()
        run.log("x")
        assert seen.wait(10), "the dispatcher thread delivers events within its tick"
    milepost.dispatch._wait_for_user_observers()
    # The start, every event and snapshot, the final delivery and close: never the caller's.
    assert threads == {"milepost-observers"}


def test_snapshots_from_many_threads_while_events_drop_count_each_drop_once(clock, monkeypatch) -> None:
    import sys
    import threading
    import time

    monkeypatch.setattr(dispatch, "MAX_QUEUED_EVENTS", 5)
    sys.setswitchinterval(1e-6)  # threads switch between any two bytecodes: races show
    counted = dispatch.Delivery.dropped.fget

    def slow_to_read(delivery):  # widens the window between reading the count and noting it
        value = counted(delivery)
        time.sleep(0.0005)
        return value

    monkeypatch.setattr(dispatch.Delivery, "dropped", property(slow_to_read))
    errors = []
    with milepost.Run("race", display="none", clock=clock, observers=[Recorder()], history=False) as run:
        ph = run.phase("p")
        go = threading.Barrier(6)
        failed = [0]

        def snapshots() -> None:
            go.wait()
            try:
                for _ in range(300):
                    run.snapshot()
            except Exception as e:  # reported below
                errors.append(e)

        def drops() -> None:
            go.wait()
            while any(t.is_alive() for t in threads[:5]):  # events drop while snapshots are taken
                ph.fail(f"x{failed[0]}", "e")
                failed[0] += 1

        threads = [threading.Thread(target=snapshots) for _ in range(5)] + [threading.Thread(target=drops)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join(60)
        finally:
            sys.setswitchinterval(0.005)
        dropped = run.events_dropped
        final = run.snapshot().data["events_dropped"]
    assert errors == []
    assert dropped == final == failed[0] + 1 - 5  # phase_started and the failures, 5 kept


def test_a_failing_snapshot_never_stops_the_delivery(caplog) -> None:
    import threading

    seen = threading.Event()

    class Last(milepost.BaseObserver):
        interval = 0.02

        def on_event(self, event):
            if event.kind == "log":
                seen.set()

    run = milepost.Run("snapfail", display="none", observers=[Last()], history=False)

    def broken():
        raise RuntimeError("no snapshot now")

    with caplog.at_level(logging.ERROR, logger="milepost"):
        run._delivery.user._snapshot = broken  # noqa: SLF001 - the fault injected
        with run:
            run.phase("p").advance()
            run.log("after")
            assert seen.wait(10), "events still arrive after snapshots failed"
    assert run.state == "completed"
    assert sum("taking a snapshot failed" in r.getMessage() for r in caplog.records) == 1


def test_an_events_dict_has_every_field_in_order_and_is_a_copy(clock) -> None:
    rec = Recorder()
    with milepost.Run("dicts", observers=[rec], display="none", clock=clock, history=False) as run:
        with run.phase("map", total=2) as ph:
            with ph.item("a") as item:
                item.progress(1, of=2)
                item.check("ok", True)
            ph.fail("b", "boom")
        run.log("hello", source="me")
    kinds = set()
    for event in rec.events:
        d = event.to_dict()
        fields = [f.name for f in dataclasses.fields(event)]
        assert list(d) == ["event", *fields] and d["event"] == event.kind
        assert d["path"] == list(event.path) and isinstance(d["path"], list)
        assert {k: v for k, v in d.items() if k not in ("event", "path")} == {
            f: getattr(event, f) for f in fields if f != "path"
        }
        json.dumps(d)  # JSON-ready
        kinds.add(event.kind)
        if event.kind == "item_details":
            d["checks"][0][1] = False  # changing the dict changes no event
            d["progress"].append(9)
            assert event.checks[0][1] is True and event.progress == [1, 2]
            assert event.to_dict()["checks"][0][1] is True
    assert {"run_started", "phase_started", "item_details", "item_failed", "log", "run_finished"} <= kinds
