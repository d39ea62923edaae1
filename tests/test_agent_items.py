"""Agent loops: an item's own progress, its checks and its artifacts, kept in the history and
listed by `milepost show`, published live for an item in flight and shown by the monitor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

import milepost
from live_jobs import published
from milepost.live.reader import find_run
from milepost.monitor.render import in_flight
from milepost.monitor.view import View
from milepost.persistence import History
from milepost.text import event_line


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "milepost", *args], capture_output=True, text=True, timeout=60, env={**os.environ}
    )


def _agent_job() -> milepost.Run:
    with milepost.Run("agent", display="none") as run:
        with run.phase("fix") as ph:
            with ph.item("issue-1") as item:
                for i in range(1, 4):
                    item.progress(i, of=20)
                item.check("tests pass", False)
                item.check("tests pass", True)  # checked again: the last verdict counts
                item.check("lint clean", False)
                item.artifact("src/a.py", kind="modified")
                item.artifact(Path("src/b.py"))
            with ph.item("issue-2"):
                pass  # reported nothing: no section
    return run


def test_reports_are_kept_in_the_history_and_listed_by_show() -> None:
    run = _agent_job()
    with History.open() as history:
        reports = history.run(run.id)["reports"]
    assert reports == [
        {
            "phase_display": "fix",
            "name": "issue-1",
            "status": "done",
            "progress": [3, 20],
            "checks": [("tests pass", True), ("lint clean", False)],
            "artifacts": [("modified", "src/a.py"), ("created", "src/b.py")],
        }
    ]
    show = _cli("show", run.id)
    assert show.returncode == 0, show.stderr
    section = show.stdout.split("items' reports:")[1].splitlines()
    assert section[1:6] == [
        "  fix: issue-1 (done): iteration 3/20, checks 1/2",
        "    ✓ tests pass",
        "    ✗ lint clean",
        "    modified src/a.py",
        "    created src/b.py",
    ]
    assert "issue-2" not in show.stdout
    shown = json.loads(_cli("show", run.id, "--json").stdout)
    assert shown["reports"][0]["checks"] == [["tests pass", True], ["lint clean", False]]


def test_a_failed_item_keeps_what_it_reported() -> None:
    with milepost.Run("agent-fails", display="none") as run:
        with pytest.raises(ValueError):
            with run.item("task") as item:
                item.progress(5, of=5)
                item.check("solved", False)
                raise ValueError("gave up")
    with History.open() as history:
        (report,) = history.run(run.id)["reports"]
    assert (report["phase_display"], report["status"], report["progress"]) == ("", "failed", [5, 5])


def test_observers_get_one_item_details_event_a_reporting_item(event_log) -> None:
    with milepost.Run("agent-events", display="none", history=False, observers=[event_log]) as run:
        with run.phase("fix") as ph:
            with ph.item("issue-1") as item:
                item.progress(2, of=5)
                item.check("tests pass", True)
                item.artifact("a.py", kind="created")
            with ph.item("issue-2"):
                pass
    (event,) = [e for e in event_log.events if isinstance(e, milepost.ItemDetails)]
    assert (event.item, event.status, event.path) == ("issue-1", "done", ("agent-events", "fix"))
    assert (event.progress, event.checks, event.artifacts) == ([2, 5], [["tests pass", True]], [["created", "a.py"]])
    assert event_line(event.to_dict()) == "reported issue-1: iteration 2/5, checks 1/1, 1 file"


def report_many(n: int) -> int:
    """A process worker's item: its report is longer than one worker record holds when `n` is."""
    item = milepost.current_item()
    item.progress(2, of=4)
    for k in range(n):
        item.check(f"criterion {k} " + "x" * 30, k % 2 == 0)
    return n


def test_a_process_workers_report_reaches_the_history_with_what_fits() -> None:
    with milepost.Run("agent-procs", display="none") as run:
        milepost.process_map(report_many, [1, 60], workers=2, description="p")
    with History.open() as history:
        reports = {r["name"]: r for r in history.run(run.id)["reports"]}
    assert reports["1"]["progress"] == [2, 4] and reports["1"]["checks"] == [("criterion 0 " + "x" * 30, True)]
    kept = reports["60"]["checks"]
    assert 0 < len(kept) < 60, "the first checks that fit one record are kept"
    assert kept[0] == ("criterion 0 " + "x" * 30, True)


def _until(check, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


def test_an_item_in_flight_is_published_and_the_monitor_shows_it() -> None:
    reported, release = threading.Event(), threading.Event()

    def job() -> None:
        with milepost.Run("agent-live", display="none") as run:
            runs.append(run)
            with run.item("issue-7") as item:
                item.progress(3, of=20)
                item.check("tests pass", True)
                item.check("types", True)
                item.check("docs", False)
                reported.set()
                release.wait(30)

    runs: list = []
    worker = threading.Thread(target=job)
    worker.start()
    try:
        assert reported.wait(30)
        live = published(runs[0].id)
        _until(lambda: "issue-7" in live.read().reports)
        state = live.read()
        assert state.reports["issue-7"] == {"progress": [3, 20], "checks_ok": 2, "checks": 3, "artifacts": 0}
        console = Console(width=100, record=True)
        console.print(in_flight(View(live, state, time.time()), 100))
        assert "issue-7   iteration 3/20 · checks 2/3" in console.export_text()
    finally:
        release.set()
        worker.join(30)
    assert find_run(runs[0].id).read().reports == {}, "an ended item is no longer published"


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda item: item.progress(-1, of=3), "-1"),
        (lambda item: item.progress(4, of=3), "3"),
        (lambda item: item.progress(0, of=0), "0"),
        (lambda item: item.progress(1.5, of=3), "1.5"),
        (lambda item: item.progress(True, of=3), "True"),
        (lambda item: item.check("", True), "''"),
        (lambda item: item.check(3, True), "3"),
        (lambda item: item.check("tests", "yes"), "'yes'"),
        (lambda item: item.artifact("a.py", kind="deleted"), "'deleted'"),
        (lambda item: item.artifact(42), "42"),
    ],
)
def test_bad_input_is_named(call, named) -> None:
    with milepost.Run("agent-bad", display="none", history=False) as run:
        with run.item("x") as item:
            with pytest.raises(milepost.InvalidValueError, match=named.replace(".", r"\.")):
                call(item)


def test_reporting_after_the_item_ended_is_refused() -> None:
    with milepost.Run("agent-late", display="none", history=False) as run:
        with run.item("x") as item:
            item.progress(1, of=2)
        with pytest.raises(milepost.InvalidValueError, match="after it ended"):
            item.check("late", True)
        with pytest.raises(milepost.InvalidValueError, match="after it ended"):
            item.artifact("late.txt")
