"""Helpers for the monitor's tests: jobs started in their own process, the app driven by
Textual's pilot, and the text on its screen."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Tuple

from live_jobs import start_job
from milepost.monitor.app import MonitorApp

__all__ = ["drive", "screen_text", "start_job", "stop_job", "until"]

JOBS = str(Path(__file__).parent / "live_jobs.py")


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
