"""The run's resources where people watch it from outside: `milepost monitor` (Textual's pilot)
attached to a job in another process, and the dashboard page in Chromium, each with a worker
process burning a core until the test has seen what it needs."""

from __future__ import annotations

import multiprocessing as mp
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Tuple

import pytest

import milepost
from live_jobs import published
from resources_helpers import burn

JOB = textwrap.dedent(
    """
    import multiprocessing as mp, sys, milepost
    sys.path.insert(0, TESTS)
    from resources_helpers import burn
    from concurrent.futures import ProcessPoolExecutor
    with milepost.Run("usage", display="none", resources={"interval": 0.2}) as run:
        print("started", run.id, flush=True)
        with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            pool.submit(burn, run, STOP).result()
    """
)


def _start(stop: Path) -> Tuple[subprocess.Popen, str]:
    code = JOB.replace("TESTS", repr(str(Path(__file__).parent))).replace("STOP", repr(str(stop)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("started"), line + (proc.stderr.read() if proc.stderr else "")
    published(line.split()[1], alive=proc.poll)  # a quarter second after its start
    return proc, line.split()[1]


def test_the_monitor_shows_the_run_s_cpu_and_memory_and_each_worker_s(tmp_path) -> None:
    pytest.importorskip("textual")
    from milepost.live.reader import find_run
    from milepost.monitor.app import MonitorApp
    from monitor_pilot import drive, screen_text, until

    stop = tmp_path / "stop"
    proc, run_id = _start(stop)
    app = MonitorApp(find_run(run_id))
    seen = {}

    async def body(pilot) -> None:
        running = r"CPU \d+% \(\d+% of \d+ cores\) · RSS [\d.]+ [kMG]B \(peak [\d.]+ [kMG]B\) · read "
        await until(pilot, lambda: re.search(running, screen_text(app)), what="the run's figures")
        lane = r"pid \d+  burn   0 done · 0 failed   \d+% · [\d.]+ MB"
        seen["running"] = await until(pilot, lambda: re.search(lane, screen_text(app)) and screen_text(app), 15)
        stop.touch()
        # The run's figures and its end are drawn by two updates: wait for both.
        ended = r"peak RSS [\d.]+ [kMG]B · CPU time [\d.]+s"

        def both() -> object:
            text = screen_text(app)
            return re.search(ended, text) and "Run ended completed" in text and text

        seen["ended"] = await until(pilot, both, 15)

    try:
        drive(app, body)
    finally:
        stop.touch()
        proc.communicate(timeout=60)
    assert "open files" in seen["running"]
    assert "Run ended completed" in seen["ended"]


def test_the_dashboard_charts_cpu_and_memory_beside_throughput(tmp_path) -> None:
    pytest.importorskip("starlette")
    from playwright.sync_api import expect, sync_playwright

    from milepost import dashboard
    from test_dashboard_page import chromium

    dashboard.stop()
    server = dashboard.start(port=0)
    stop = tmp_path / "stop"
    try:
        with milepost.Run("usage-page", display="none", dashboard={"port": 0}, resources={"interval": 0.2}) as run:
            with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
                job = pool.submit(burn, run, str(stop))
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
                    try:
                        page = browser.new_page(viewport={"width": 1280, "height": 900})
                        page.goto(server.url, wait_until="domcontentloaded")
                        expect(page.locator("#run-name")).to_have_text("usage-page", timeout=15_000)
                        expect(page.locator("#run-usage")).to_have_text(
                            re.compile(r"^\d+% · [\d.]+ [kMG]B$"), timeout=15_000
                        )
                        expect(page.locator("#run-usage-sub")).to_contain_text("peak ")
                        # Lines (two points at least) on both charts, beside throughput's.
                        expect(page.locator("#chart-cpu path.line")).to_have_count(1, timeout=15_000)
                        expect(page.locator("#chart-rss path.line")).to_have_count(1, timeout=15_000)
                        expect(page.locator("#chart-rate path.line")).to_have_count(1, timeout=15_000)
                        assert page.text_content("#chart-cpu-title") == "CPU (% of one core)"
                        # The worker's lane carries its own figures.
                        expect(page.locator("#lanes .lane-usage")).to_have_text(
                            re.compile(r"^CPU \d+% · RSS [\d.]+ MB$"), timeout=15_000
                        )
                        page.screenshot(path=str(_artifacts() / "dashboard-resources.png"))
                        # Under the run's header, the charts sit in one row: throughput, CPU and memory, cost.
                        boxes = [
                            page.locator(f"#{i}").bounding_box() for i in ("chart-rate", "chart-cpu", "chart-cost")
                        ]
                        assert all(b is not None for b in boxes)
                        assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
                    finally:
                        browser.close()
                stop.touch()
                job.result()
    finally:
        stop.touch()
        dashboard.stop()


def _artifacts() -> Path:
    path = Path(__file__).parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path
