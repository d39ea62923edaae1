"""The dashboard page in a real browser (Debian's Chromium, driven by playwright), under the
page's own Content-Security-Policy (no bypass): the final state after the job's process exits,
failures that happen after the page loaded, and the page mounted under a prefix in another
app. Every wait is bounded; every server, thread and child process is stopped."""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List

import pytest
from playwright.sync_api import Page, expect, sync_playwright

import milepost
from milepost import dashboard
from test_dashboard_end import child_job

NO_CHROMIUM = "Debian's chromium is needed: apt-get install chromium; `bash .ci/run` installs it"


def chromium() -> str:
    """Debian's Chromium (never a browser downloaded by playwright)."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(NO_CHROMIUM, pytrace=False)
    return path


@contextmanager
def browser_page() -> Iterator[tuple[Page, List[str]]]:
    """A page, and the console errors it logs (a policy violation shows there)."""
    errors: List[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("dialog", lambda d: d.accept())
            yield page, errors
        finally:
            browser.close()


def _policy_errors(errors: List[str]) -> List[str]:
    return [e for e in errors if "Content Security Policy" in e]


def test_the_page_shows_the_end_after_the_job_exits() -> None:
    with browser_page() as (page, errors), child_job("short", n=60) as job:
        page.goto(job.base + "/", wait_until="domcontentloaded")
        expect(page.locator("#run-name")).to_have_text("child-job", timeout=15_000)
        expect(page.locator("#conn")).to_have_text("live", timeout=15_000)
        job.go()
        assert job.proc.wait(30) == 0
        expect(page.locator("#run-state")).to_have_text("completed", timeout=15_000)
        expect(page.locator("#run-processed")).to_have_text("60 / 60")
        expect(page.locator("#run-done")).to_have_text("51")
        expect(page.locator("#run-failed")).to_have_text("9")
        expect(page.locator("#conn")).to_contain_text("finished")
        time.sleep(1.5)  # the page notices the server has gone: the final state stays
        expect(page.locator("#run-state")).to_have_text("completed")
        expect(page.locator("#conn")).not_to_contain_text("reconnecting")
    assert _policy_errors(errors) == []


def test_the_page_shows_cancelled_after_the_job_exits() -> None:
    with browser_page() as (page, errors), child_job("cancel", n=100_000) as job:
        page.goto(job.base + "/", wait_until="domcontentloaded")
        expect(page.locator("#run-name")).to_have_text("child-job", timeout=15_000)
        job.go()
        expect(page.locator("#cancel")).to_be_visible(timeout=15_000)
        page.click("#cancel")
        assert job.proc.wait(30) == 0
        expect(page.locator("#run-state")).to_have_text("cancelled", timeout=15_000)
        expect(page.locator("#cancel")).to_have_count(0)
        expect(page.locator("#conn")).to_contain_text("finished")
        expect(page.locator("#main")).not_to_contain_text("Cancelling")
    assert _policy_errors(errors) == []


@pytest.fixture
def phased_job() -> Iterator[Dict[str, Any]]:
    """A run that logs and fails one item, then waits for `go` to log and fail another."""
    dashboard.stop()
    state: Dict[str, Any] = {"go": threading.Event(), "ready": threading.Event(), "stop": threading.Event()}

    def job() -> None:
        with milepost.Run("logs-live", display="none", dashboard={"port": 0}) as run:
            ph = run.phase("map", total=10)
            ph.log("before the page", level="warning", source="early")
            ph.fail("item-early", "early failure")
            state["run"] = run
            state["ready"].set()
            if state["go"].wait(30):
                ph.fail("item-late", "late failure")
                ph.log("after the page", level="warning", source="late")
            state["stop"].wait(30)

    thread = threading.Thread(target=job, daemon=True)
    thread.start()
    assert state["ready"].wait(20)
    yield state
    state["go"].set()
    state["stop"].set()
    thread.join(30)
    dashboard.stop()


def test_failures_after_the_page_loaded_show_in_the_log_pane_with_their_path(phased_job) -> None:
    server = dashboard.current()
    assert server is not None
    with browser_page() as (page, errors):
        page.goto(server.url, wait_until="domcontentloaded")
        early = page.locator("#log-list .log", has_text="early failure")
        expect(early).to_have_count(1, timeout=15_000)
        expect(early.locator(".log-path")).to_have_text("map")
        expect(page.locator("#runs li.active .run-progress")).to_contain_text("1/10")
        phased_job["go"].set()
        late = page.locator("#log-list .log", has_text="late failure")
        expect(late).to_have_count(1, timeout=15_000)
        expect(late).to_contain_text("item-late")
        expect(late.locator(".log-path")).to_have_text("map")
        line = page.locator("#log-list .log", has_text="after the page")
        expect(line).to_have_count(1, timeout=15_000)
        expect(line.locator(".log-path")).to_have_text("map")
        expect(page.locator("#log-list .log", has_text="before the page").locator(".log-path")).to_have_text("map")
    assert _policy_errors(errors) == []


def test_the_page_works_mounted_under_a_prefix(phased_job) -> None:
    """`Mount("/progress", create_app())` in another app: the page's requests stay under it."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/progress", app=dashboard.create_app())])
    server = uvicorn.Server(uvicorn.Config(outer, host="127.0.0.1", port=0, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with browser_page() as (page, errors):
            page.goto(f"http://127.0.0.1:{port}/progress/", wait_until="domcontentloaded")
            expect(page.locator("#run-name")).to_have_text("logs-live", timeout=15_000)
            expect(page.locator("#log-list .log", has_text="early failure")).to_have_count(1, timeout=15_000)
            expect(page.locator("#banner")).to_be_hidden()
        assert _policy_errors(errors) == []
    finally:
        server.should_exit = True
        thread.join(15)
