"""`milepost monitor` attached to real jobs running in other processes, driven by Textual's
pilot: it follows the run, steers it, shows its logs, and says how it ended."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import monitor_fixtures as fixture
from milepost.live.place import live_dir
from milepost.live.reader import find_run
from milepost.monitor.app import MonitorApp
from milepost.monitor.dialogs import ConfirmCancel
from milepost.monitor.logs import LogScreen
from milepost.monitor.run_screen import RunScreen
from monitor_pilot import drive, screen_text, start_job, stop_job, until


def _done(app: MonitorApp) -> int:
    screen = app.screen
    assert isinstance(screen, RunScreen) and screen.view is not None
    return int(screen.view.root.get("done", 0))


def test_the_numbers_on_screen_rise_as_the_job_goes_on() -> None:
    proc, run_id = start_job("steady", "100000", "0.01")
    app = MonitorApp(find_run(run_id))
    seen = {}

    async def body(pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.view and _done(app) > 5)
        first = _done(app)
        text = screen_text(app)
        for expected in ("steady", "● running", "live_jobs.py steady", "test-model", "provider local", "work", "ETA"):
            assert expected in text, expected
        await until(pilot, lambda: _done(app) > first + 50, what="the count rises")
        await until(pilot, lambda: f"{_done(app):,}/100,000" in screen_text(app), what="the screen shows it")
        await pilot.pause(2.0)
        seen["latencies"] = list(app.screen.latencies)
        seen["text"] = screen_text(app)

    try:
        drive(app, body)
    finally:
        proc.send_signal(signal.SIGTERM)
        stop_job(proc)
    assert "token-" in seen["text"], "the streamed output of the item in flight"
    assert "tokens 3" in seen["text"], "a finished item's own metrics, from the history"
    latencies = seen["latencies"]
    assert len(latencies) >= 8, "four snapshots a second are drawn"
    # How fast is measured in benches/test_live.py (timed assertions do not belong in tests).


def test_cancel_asks_first_and_the_job_ends_cancelled_with_its_history_saved() -> None:
    proc, run_id = start_job("steady", "100000", "0.01")
    run = find_run(run_id)
    app = MonitorApp(run)

    async def body(pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.view and _done(app) > 3)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmCancel), what="the question")
        assert "Cancel run steady" in screen_text(app)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.pause(0.5)
        assert run.read().state == "running", "no: nothing was sent"
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfirmCancel))
        await pilot.press("y")
        await until(pilot, lambda: "cancel requested" in screen_text(app), what="the run's answer")
        await until(pilot, lambda: "Run ended cancelled" in screen_text(app), what="the end")
        await pilot.press("c")  # the run has ended: no question, its answer
        await until(pilot, lambda: "has ended (cancelled): nothing changed" in screen_text(app))
        assert isinstance(app.screen, RunScreen)

    try:
        drive(app, body)
    finally:
        out = stop_job(proc)
    assert "ended cancelled" in out
    db = sqlite3.connect(str(run.history))
    try:
        assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == "cancelled"
    finally:
        db.close()


def test_retry_shows_the_runs_answer_and_the_end_says_how_it_ended(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    proc, run_id = start_job("threads", "40", str(calls))
    app = MonitorApp(find_run(run_id))

    async def body(pilot) -> None:
        # Items 3, 13, 23, 33 fail the first time; item 39 waits for the retry.
        screen = await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen)
        await until(pilot, lambda: screen.view and screen.view.root.get("failed") == 4, seconds=30)
        await until(pilot, lambda: "ValueError: flaky 33" in screen_text(app), what="the failures")
        assert "Failures · 4" in screen_text(app)
        await pilot.press("r")
        await until(pilot, lambda: "retry: 4 failed items will run again" in screen_text(app), what="the answer")
        Path(str(calls) + ".retried").touch()
        await until(pilot, lambda: "Run ended completed" in screen_text(app), seconds=30, what="the end")
        await pilot.pause(1.0)
        assert "✓ completed" in screen_text(app), "and it stays on screen"

    try:
        drive(app, body)
    finally:
        Path(str(calls) + ".retried").touch()
        out = stop_job(proc)
    assert "ended completed" in out


def test_the_log_view_filters_by_level_and_by_source() -> None:
    proc, run_id = start_job("chatty", "100000", "0.01")
    app = MonitorApp(find_run(run_id))

    async def body(pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.view and _done(app) > 12)
        await pilot.press("l")
        logs = await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen)
        await until(pilot, lambda: {r["level"] for r in logs.shown} == {"info", "warning", "error"}, what="all")
        assert "[loader] loaded" in screen_text(app) and "[llm] slow answer" in screen_text(app)
        await pilot.press("v", "v")  # info and worse, then warning and worse
        assert logs.level == "warning" and logs.shown
        assert {r["level"] for r in logs.shown} == {"warning", "error"}
        assert "loaded" not in screen_text(app) and "slow answer" in screen_text(app)
        await pilot.press("v", "v")  # error, then everything again
        assert logs.level is None
        await pilot.press("s")  # the first source: llm (sorted: llm, loader, work)
        assert logs.source == "llm" and {r["source"] for r in logs.shown} == {"llm"}
        await pilot.pause(0.5)  # new lines come in filtered
        assert {r["source"] for r in logs.shown} == {"llm"} and "loaded" not in screen_text(app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))

    try:
        drive(app, body)
    finally:
        proc.send_signal(signal.SIGTERM)
        stop_job(proc)


def test_a_killed_job_shows_crashed_within_two_seconds() -> None:
    proc, run_id = start_job("steady", "100000", "0.01")
    app = MonitorApp(find_run(run_id))

    async def body(pilot) -> None:
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.view and _done(app) > 3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        t0 = time.monotonic()
        await until(pilot, lambda: "Run ended crashed" in screen_text(app), seconds=2, what="crashed")
        assert time.monotonic() - t0 < 2
        text = screen_text(app)
        assert "‼ crashed" in text
        assert "● running" not in text, "nothing of a crashed run is shown running"
        assert "nothing: the run is over" in text, "nor in flight"
        assert "In flight ·" not in text, "nor counted in flight in the panel's title"

    try:
        drive(app, body)
    finally:
        stop_job(proc)


def test_it_redraws_for_the_new_size_when_the_terminal_is_resized(tmp_path: Path) -> None:
    fixture.publish(live_dir(), tmp_path / "runs.db")
    app = MonitorApp(find_run(fixture.RUN_ID), clock=lambda: fixture.CLOCK)

    async def body(pilot) -> None:
        wide = await until(pilot, lambda: isinstance(app.screen, RunScreen) and screen_text(app))
        summarize = next(line for line in wide.splitlines() if "summarize █" in line)
        assert "52%" in summarize and "ETA 7m21s" in summarize, "wide: a phase is one line"
        await pilot.resize_terminal(60, 30)
        await until(pilot, lambda: max(len(line) for line in screen_text(app).splitlines()) <= 60)
        narrow = screen_text(app).splitlines()
        at = next(i for i, line in enumerate(narrow) if "summarize" in line and "618/1,200" in line)
        assert "52%" in narrow[at + 1] and "ETA 7m21s (6m28s–8m50s)" in narrow[at + 2], "narrow: three lines"
        await pilot.resize_terminal(120, 40)
        await until(pilot, lambda: any("summarize" in line and "ETA" in line for line in screen_text(app).splitlines()))

    drive(app, body)


def test_without_a_run_it_lists_them_and_attaches_to_the_one_picked(tmp_path: Path) -> None:
    fixture.publish(live_dir(), tmp_path / "runs.db")
    app = MonitorApp(None, clock=lambda: fixture.CLOCK)

    async def body(pilot) -> None:
        await until(pilot, lambda: "summarize-docs" in screen_text(app), what="the list")
        assert "● running" in screen_text(app) and fixture.RUN_ID in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and "In flight · 3" in screen_text(app))

    drive(app, body)


def test_items_of_a_few_milliseconds_show_their_milliseconds() -> None:
    """Found trying it as a user: the newest items of a job of 2-10 ms items all read 0.0s."""
    from milepost.monitor.looks import item_duration

    assert [item_duration(s) for s in (0.0042, 0.0099, 0.05, 0.999, 1.5, None)] == [
        "4.2ms",
        "9.9ms",
        "50ms",
        "999ms",
        "1.5s",
        "–",
    ]
