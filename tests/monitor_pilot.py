"""Helpers for the monitor's tests: jobs started in their own process, the app driven by
Textual's pilot, and the text on its screen."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Tuple

from milepost.monitor.app import MonitorApp

JOBS = str(Path(__file__).parent / "live_jobs.py")


def start_job(*args: str) -> Tuple[subprocess.Popen, str]:
    """A job of `live_jobs.py` and its run id, once it is published."""
    proc = subprocess.Popen([sys.executable, JOBS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("started"), line + (proc.stderr.read() if proc.stderr else "")
    return proc, line.split()[1]


def stop_job(proc: subprocess.Popen) -> str:
    """Its output, once it ended (killed when it takes over a minute)."""
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return out


def drive(app: MonitorApp, body: Callable[[Any], Awaitable[None]], size: Tuple[int, int] = (120, 40)) -> None:
    """Runs `app` headless at `size` and `body(pilot)` against it."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await body(pilot)

    asyncio.run(main())


async def until(pilot: Any, predicate: Callable[[], Any], seconds: float = 10.0, what: str = "") -> Any:
    """Waits (the app running meanwhile) until `predicate()` is true: its value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"not within {seconds} s: {what}\n{screen_text(pilot.app)}")


def screen_text(app: MonitorApp) -> str:
    """What the terminal shows, as text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
