"""The dashboard page in a real browser (Debian's Chromium, driven by playwright) against a
live run: the numbers rise, the log filters work, hostile names stay text, Cancel ends the run.
A screenshot is kept in tests/artifacts/."""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path
from typing import Dict

import pytest
from playwright.sync_api import sync_playwright

import milepost
from milepost import dashboard

ARTIFACTS = Path(__file__).parent / "artifacts"


def _number(text: str) -> int:
    digits = re.sub(r"[^0-9]", "", text)
    return int(digits) if digits else 0


@pytest.fixture
def live_job():
    dashboard.stop()
    server = dashboard.start(port=0)
    state: Dict[str, object] = {}
    started = threading.Event()

    def work(x: int) -> int:
        time.sleep(0.05)
        if x % 40 == 7:
            raise ValueError(f"bad record {x}")
        return x

    def job() -> None:
        with milepost.Run("nightly <script>alert(1)</script>", display="none", dashboard={"port": 0}) as run:
            state["run"] = run
            with run.phase("setup", total=3) as setup:
                setup.advance(3)
            run.log("starting the map", source="planner")
            run.log("slow upstream", level="warning", source="fetcher")
            run.log("retry budget low", level="error", source="fetcher")
            started.set()
            try:
                milepost.thread_map(work, range(5000), workers=3, description="map", unit="doc",
                                    return_exceptions=True)
            except milepost.Cancelled:
                state["cancelled"] = True
        state["state"] = run.snapshot().root["state"]

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    assert started.wait(20)
    yield server, state, thread
    run = state.get("run")
    if run is not None and not run._finished:
        run.cancel("test teardown")
    thread.join(30)
    dashboard.stop()


def test_the_page_follows_a_live_run_and_cancels_it(live_job) -> None:
    server, state, thread = live_job
    run = state["run"]
    dialogs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            # The page's own policy forbids eval; the test's probes are evaluated, so they run in
            # a context that bypasses it (the policy itself is tested in test_dashboard.py).
            context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
            page.goto(server.url, wait_until="domcontentloaded")
            page.wait_for_function("document.querySelector('#run-name') && "
                                   "document.querySelector('#run-name').textContent.includes('nightly')",
                                   timeout=15_000)
            # The hostile name is text on the page, and nothing ran from it.
            assert page.text_content("#run-name") == "nightly <script>alert(1)</script>"
            assert not dialogs
            # The numbers rise while the job advances.
            first = _number(page.text_content("#run-done") or "")
            page.wait_for_function(
                f"(() => {{ const t = document.querySelector('#run-done').textContent.replace(/[^0-9]/g, '');"
                f" return parseInt(t || '0') > {first} + 5; }})()", timeout=15_000)
            assert page.locator("#phases .phase").count() >= 2
            assert page.locator("#lanes .lane").count() >= 1
            page.wait_for_selector("#failures .failure", timeout=15_000)
            assert "bad record" in page.text_content("#failures")
            # The log filter: warnings and worse only, then one source only.
            page.wait_for_selector("#logs .log", timeout=15_000)
            page.select_option("#log-level", "warning")
            page.wait_for_function(
                "[...document.querySelectorAll('#logs .log')].length > 0 && "
                "[...document.querySelectorAll('#logs .log')].every(r => !/\\binfo\\b/i.test(r.textContent))",
                timeout=10_000)
            texts = page.locator("#logs .log").all_text_contents()
            assert any("slow upstream" in t for t in texts)
            assert not any("starting the map" in t for t in texts)
            page.select_option("#log-source", "fetcher")
            page.wait_for_function(
                "[...document.querySelectorAll('#logs .log')].length > 0 && "
                "[...document.querySelectorAll('#logs .log')].every(r => r.textContent.includes('fetcher'))",
                timeout=10_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=False)
            # Cancel, with its confirmation.
            page.click("#cancel")
            thread.join(30)
            assert dialogs and "Cancel run" in dialogs[-1]
            assert state.get("cancelled") and state["state"] == "cancelled"
            page.wait_for_function(
                "document.querySelector('#run-state').textContent.toLowerCase().includes('cancel')", timeout=15_000)
            snap = run.snapshot()
            assert 0 < snap.find("map")["done"] < 5000
        finally:
            browser.close()
