"""A job killed with SIGKILL while `milepost monitor` and `milepost serve` watch it: both show
`crashed` within 2 s of the kill, with its last counts (real job, real server process, the
monitor's Textual app driven by its pilot)."""

from __future__ import annotations

import signal
import time

import httpx

from milepost.live.reader import find_run
from milepost.monitor.app import MonitorApp
from milepost.monitor.run_screen import RunScreen
from monitor_pilot import drive, screen_text, start_job, stop_job, until
from test_dashboard_live import row, serve  # noqa: F401 - `serve` is the fixture

__all__ = ["serve"]


def test_a_killed_job_is_crashed_on_the_monitor_and_the_dashboard_within_two_seconds(serve) -> None:  # noqa: F811
    proc, run_id = start_job("steady", "100000", "0.01")
    app = MonitorApp(find_run(run_id))
    timings = {}

    async def body(pilot) -> None:
        await until(
            pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.view and "running" in screen_text(app)
        )
        await until(pilot, lambda: (row(serve, run_id) or {}).get("status") == "running", what="serve shows it")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        t0 = time.monotonic()
        await until(pilot, lambda: "Run ended crashed" in screen_text(app), seconds=2, what="the monitor")
        timings["monitor"] = time.monotonic() - t0
        await until(pilot, lambda: (row(serve, run_id) or {}).get("status") == "crashed", seconds=2, what="serve")
        timings["serve"] = time.monotonic() - t0

    try:
        drive(app, body)
    finally:
        stop_job(proc)
    assert timings["monitor"] < 2 and timings["serve"] < 2, timings
    listed = row(serve, run_id)
    assert listed is not None and listed["status"] == "crashed"
    metrics = httpx.get(serve + "/metrics", timeout=10).text
    assert f'milepost_run_state{{name="steady",run="{run_id}",state="crashed"}} 1.0' in metrics
