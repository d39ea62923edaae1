"""The dashboard page in a real browser (Debian's Chromium, driven by playwright) against a
live run: the numbers rise, the log filters work, hostile names stay text, Cancel ends the run.
A screenshot is kept in tests/artifacts/."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Callable, Dict

import pytest
from playwright.sync_api import expect, sync_playwright

import milepost
from milepost import dashboard
from test_dashboard_page import chromium

ARTIFACTS = Path(__file__).parent / "artifacts"


def _until(check: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    """Polls `check` (bounded: `seconds`) until it holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"waited {seconds}s for: {what}"
        time.sleep(0.1)


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
        milepost.current_item().stream(f"drafting doc {x}\nsecond line <b>not bold</b>")
        milepost.current_item().progress(2, of=5)  # what an agent loop reports of itself
        milepost.current_item().check("<i>parsed</i>", True)
        time.sleep(0.05)
        milepost.current_item().metric("cost_usd", 0.001)  # at the end, as a model call's usage comes
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
                milepost.thread_map(work, range(5000), workers=3, description="map", unit="doc", return_exceptions=True)
            except milepost.Cancelled:
                state["cancelled"] = True
        state["state"] = run.snapshot().root["state"]

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    assert started.wait(20)
    yield server, state, thread
    run = state.get("run")
    if run is not None and not run.finished:
        run.cancel("test teardown")
    thread.join(30)
    dashboard.stop()


def test_the_page_follows_a_live_run_and_cancels_it(live_job) -> None:
    server, state, thread = live_job
    run = state["run"]
    dialogs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            # Under the page's own policy (no bypass): the probes run in playwright's own world.
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
            page.goto(server.url, wait_until="domcontentloaded")
            expect(page.locator("#run-name")).to_contain_text("nightly", timeout=15_000)
            # The hostile name is text on the page, and nothing ran from it.
            assert page.text_content("#run-name") == "nightly <script>alert(1)</script>"
            assert not dialogs
            # The numbers rise while the job advances.
            first = _number(page.text_content("#run-done") or "")
            _until(lambda: _number(page.text_content("#run-done") or "") > first + 5, "the done count rises")
            # What it spent, per item, and where it is heading: 5,000 items at $0.001.
            expect(page.locator("#run-cost-per-item")).to_have_text("$0.00100/item", timeout=15_000)
            expect(page.locator("#run-projection")).to_have_text("$5.0000")
            assert page.text_content("#run-projection-range") == "", "items that all cost the same: no spread"
            # What items stream, on their lane (text, never markup).
            tail = page.locator("#lanes .lane-tail:visible").first
            expect(tail).to_contain_text("second line <b>not bold</b>", timeout=15_000)
            assert re.fullmatch(r"drafting doc \d+↵second line <b>not bold</b>", tail.text_content() or "")
            # What items report of themselves, on their lane.
            report = page.locator("#lanes .lane-report:visible").first
            expect(report).to_have_text("iteration 2/5 · checks 1/1", timeout=15_000)
            assert page.locator("#phases .phase").count() >= 2
            assert page.locator("#lanes .lane").count() >= 1
            expect(page.locator("#failures .failure").first).to_be_visible(timeout=15_000)
            assert "bad record" in (page.text_content("#failures") or "")
            # The log filter: warnings and worse only, then one source only.
            expect(page.locator("#logs .log").first).to_be_visible(timeout=15_000)
            page.select_option("#log-level", "warning")
            rows = page.locator("#logs .log")

            # One read of the rows per check: the list is replaced when the filtered answer comes.
            def warnings_only() -> bool:
                texts = rows.all_text_contents()
                return (
                    any("slow upstream" in t for t in texts)
                    and not any("starting the map" in t for t in texts)
                    and not any(re.search(r"\binfo\b", t, re.I) for t in texts)
                )

            _until(warnings_only, "only warnings and worse")
            page.select_option("#log-source", "fetcher")
            _until(
                lambda: rows.count() > 0 and all("fetcher" in t for t in rows.all_text_contents()),
                "only the fetcher's lines",
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=False)
            # Cancel, with its confirmation.
            page.click("#cancel")
            thread.join(30)
            assert dialogs and "Cancel run" in dialogs[-1]
            assert state.get("cancelled") and state["state"] == "cancelled"
            expect(page.locator("#run-state")).to_contain_text("cancel", timeout=15_000)
            snap = run.snapshot()
            assert 0 < snap.find("map")["done"] < 5000
        finally:
            browser.close()


def test_a_past_runs_phases_give_their_rate_in_their_unit() -> None:
    """The page gave every phase of a past run in it/s: the history keeps a phase's unit now."""
    with milepost.Run("past units", display="none") as run:
        with run.phase("load", total=30, unit="doc") as ph:
            for _ in range(30):
                ph.advance()
                time.sleep(0.001)
    dashboard.stop()
    server = dashboard.start(port=0)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(f"{server.url}#run={run.id}", wait_until="domcontentloaded")
                row = page.locator("#phases .phase").first
                expect(row).to_contain_text("load", timeout=15_000)
                expect(row).to_contain_text("doc/s", timeout=15_000)
            finally:
                browser.close()
    finally:
        dashboard.stop()
