"""`milepost serve` shows the live runs of the user's other processes (read from the live
directory) beside the history: real `milepost serve` and job processes (tests/live_jobs.py),
real HTTP, SSE and Prometheus clients, and a real Chromium for Cancel. Every wait is bounded;
every server and job started here is stopped."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import httpx
import pytest
from jsonschema import Draft202012Validator
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

import milepost
from milepost import dashboard
from test_dashboard_page import browser_page

JOBS = str(Path(__file__).parent / "live_jobs.py")


class Proc:
    """A child process whose output is read by threads: reads never block a test, and a child
    that writes much never blocks on a full pipe."""

    def __init__(self, *argv: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
        )
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.out: List[str] = []
        self.err: List[str] = []
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stdout, self.out, True), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, self.err, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, pipe: Any, into: List[str], queued: bool) -> None:
        for line in pipe:
            into.append(line)
            if queued:
                self.lines.put(line)

    def line(self, seconds: float = 30.0) -> str:
        try:
            return self.lines.get(timeout=seconds)
        except queue.Empty:
            raise AssertionError(f"no line within {seconds} s; stderr: {''.join(self.err)[-2000:]}") from None

    def wait(self, seconds: float = 60.0) -> int:
        return self.popen.wait(seconds)

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Ends the process (if still there) and closes its pipes."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(30)
        for reader in self._readers:
            reader.join(10)
        for pipe in (self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                pipe.close()


@contextmanager
def job(*args: str) -> Iterator[Tuple[Proc, str]]:
    """A job of tests/live_jobs.py and its run id; killed at the end if still there."""
    proc = Proc(JOBS, *args)
    try:
        line = proc.line()
        assert line.startswith("started"), line + "".join(proc.err)
        yield proc, line.split()[1]
    finally:
        proc.stop()


@pytest.fixture
def serve() -> Iterator[str]:
    """`milepost serve --port 0` in its own process: its base URL (no trailing slash)."""
    proc = Proc("-m", "milepost", "serve", "--port", "0")
    try:
        line = proc.line()
        assert line.startswith("milepost dashboard: http://127.0.0.1:"), line + "".join(proc.err)
        yield line.split(": ", 1)[1].strip().rstrip("/")
    finally:
        proc.stop(signal.SIGTERM)
    assert proc.popen.returncode == 0


def until(check: Callable[[], Any], what: str, seconds: float = 15.0, step: float = 0.05) -> Any:
    """`check()`'s first true value, polled (bounded: `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {seconds} s for: {what}"
        time.sleep(step)


def row(base: str, run_id: str) -> Optional[Dict[str, Any]]:
    runs = httpx.get(base + "/api/runs", timeout=10).json()["runs"]
    mine = [r for r in runs if r["id"] == run_id]
    assert len(mine) <= 1, "a run is listed once"
    return mine[0] if mine else None


def metrics(base: str, run_id: str) -> Dict[Tuple[str, str], float]:
    """The run's samples: (name, the label that tells them apart) -> value."""
    text = httpx.get(base + "/metrics", timeout=10).text
    out: Dict[Tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("run") == run_id:
                key = s.labels.get("state") or s.labels.get("status") or s.labels.get("phase", "")
                out[(s.name, key)] = s.value
    return out


def sse(url: str, limit: int, seconds: float) -> Iterator[Tuple[str, str]]:
    """(event, data) of an SSE stream: at most `limit` of them, for `seconds` at most."""
    deadline = time.monotonic() + seconds
    with httpx.stream("GET", url, timeout=httpx.Timeout(seconds, connect=5)) as response:
        assert response.status_code == 200, response.read()
        kind, n = "message", 0
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                yield kind, line[6:]
                n += 1
                if n >= limit or kind == "end":
                    return
            if time.monotonic() > deadline:
                return


def spec_check(base: str, path: str, answer: Any, status: str = "200", method: str = "get") -> None:
    """`answer` matches the schema the OpenAPI description gives it."""
    spec = httpx.get(base + "/openapi.json", timeout=10).json()
    content = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
    errors = list(Draft202012Validator({**content["schema"], "components": spec["components"]}).iter_errors(answer))
    assert errors == [], [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_a_job_of_another_process_is_shown_live_with_rising_counts(serve) -> None:
    with job("steady", "100000", "0.01") as (proc, run_id):
        listed = until(lambda: (r := row(serve, run_id)) and r["done"] > 5 and r, "the run listed, counting")
        assert listed["live"] is True and listed["status"] == "running" and listed["name"] == "steady"
        later = until(lambda: (r := row(serve, run_id)) and r["done"] > listed["done"] + 10 and r, "rising counts")
        assert later["live"] and later["ended_at"] is None
        # The SSE stream: rising snapshots, and the run's own events (log lines) with ids.
        seen: List[int] = []
        kinds = set()
        for kind, data in sse(f"{serve}/api/runs/{run_id}/events", limit=400, seconds=10):
            kinds.add(kind)
            if kind == "snapshot":
                seen.append(json.loads(data)["root"]["done"])
                if len(seen) >= 4:
                    break
        assert len(seen) >= 4 and seen == sorted(seen) and seen[-1] > seen[0], seen
        assert {"run_started", "phase_started"} <= kinds, kinds
        logs = httpx.get(f"{serve}/api/runs/{run_id}/logs", params={"level": "warning"}, timeout=10).json()["logs"]
        assert logs and all(entry["source"] == "job" for entry in logs)
        # /metrics: running, with its counts.
        samples = until(lambda: (m := metrics(serve, run_id)) and ("milepost_items", "done") in m and m, "metrics")
        assert samples[("milepost_run_running", "")] == 1.0
        assert samples[("milepost_run_state", "running")] == 1.0 and samples[("milepost_run_state", "crashed")] == 0
        assert samples[("milepost_items", "done")] > 5
        answer = httpx.get(f"{serve}/api/runs/{run_id}", timeout=10).json()
        assert answer["live"] is True and answer["state"] == "running" and answer["snapshot"]["name"] == "steady"
        spec_check(serve, "/api/runs/{run_id}", answer)
        spec_check(serve, "/api/runs", httpx.get(serve + "/api/runs", timeout=10).json())
        assert proc.popen.poll() is None


def test_a_killed_job_is_shown_crashed_within_two_seconds(serve) -> None:
    with job("steady", "100000", "0.01") as (proc, run_id):
        until(lambda: (r := row(serve, run_id)) and r["done"] > 5, "the run counting")
        proc.stop(signal.SIGKILL)
        t0 = time.monotonic()
        crashed = until(lambda: (r := row(serve, run_id)) and r["status"] == "crashed" and r, "crashed", seconds=2)
        samples = until(lambda: metrics(serve, run_id).get(("milepost_run_state", "crashed")) == 1.0, "crashed", 2)
        assert time.monotonic() - t0 < 2.0
    samples = metrics(serve, run_id)
    assert samples[("milepost_run_running", "")] == 0.0 and samples[("milepost_run_state", "running")] == 0.0
    assert samples[("milepost_items", "done")] == crashed["done"] > 5, "its last published counts stay"
    assert crashed["live"] is False and crashed["ended_at"] is not None
    answer = httpx.get(f"{serve}/api/runs/{run_id}", timeout=10).json()
    assert (answer["live"], answer["state"], answer["snapshot"]["root"]["done"]) == (False, "crashed", crashed["done"])
    spec_check(serve, "/api/runs/{run_id}", answer)
    # A stream of it says why it stopped, then ends.
    kinds = [kind for kind, _ in sse(f"{serve}/api/runs/{run_id}/events", limit=2000, seconds=10)]
    assert kinds[-2:] == ["run_crashed", "end"] or kinds[-3:] == ["run_crashed", "snapshot", "end"], kinds[-5:]
    refused = httpx.post(f"{serve}/api/runs/{run_id}/cancel", headers={"Origin": serve}, timeout=10)
    assert refused.status_code == 409 and "crashed" in refused.json()["error"]


def test_a_job_that_exits_right_after_its_run_is_shown_with_its_end(serve) -> None:
    with job("quick", "1234") as (proc, run_id):
        assert proc.wait() == 0
    done = until(lambda: (r := row(serve, run_id)) and r["status"] == "completed" and r, "the end shown", seconds=5)
    assert (done["live"], done["done"], done["total"]) == (False, 1234, 1234)
    # The history can list the run before the server's feed (five looks a second) has read its
    # end: the metrics are asked for once the feed has it.
    samples = until(
        lambda: (m := metrics(serve, run_id)).get(("milepost_run_state", "completed")) == 1.0 and m,
        "the end in the metrics",
        seconds=5,
    )
    assert samples[("milepost_run_state", "completed")] == 1.0 and samples[("milepost_run_running", "")] == 0.0
    assert samples[("milepost_items", "done")] == 1234.0
    # The run is in the history too: its record answers, and it is listed once.
    answer = httpx.get(f"{serve}/api/runs/{run_id}", timeout=10).json()
    assert answer["live"] is False and answer["run"]["status"] == "completed" and answer["run"]["done"] == 1234


def test_cancel_from_the_page_reaches_the_job_within_a_second(serve) -> None:
    with job("steady", "100000", "0.01") as (proc, run_id), browser_page() as (page, errors):
        page.goto(f"{serve}/#run={run_id}", wait_until="domcontentloaded")
        expect(page.locator("#run-name")).to_have_text("steady", timeout=15_000)
        expect(page.locator("#conn")).to_have_text("live", timeout=15_000)
        first = int((page.text_content("#run-done") or "0").replace(",", "") or 0)
        until(lambda: int((page.text_content("#run-done") or "0").replace(",", "")) > first + 5, "the page counts")
        t0 = time.monotonic()
        page.click("#cancel")
        expect(page.locator("#cancel-msg")).to_contain_text("cancel requested", timeout=1_000)
        assert proc.line(5).strip() == "ended cancelled"
        assert time.monotonic() - t0 < 1.0, "the job ended within a second of the page's Cancel"
        expect(page.locator("#run-state")).to_have_text("cancelled", timeout=15_000)
        assert not [e for e in errors if "Content Security Policy" in e]
    assert until(lambda: (r := row(serve, run_id)) and r["status"] == "cancelled", "cancelled listed", seconds=5)


def test_retry_from_the_api_runs_exactly_the_failed_items_again(serve, tmp_path) -> None:
    calls = tmp_path / "calls"
    with job("threads", "40", str(calls)) as (proc, run_id):
        until(lambda: (r := row(serve, run_id)) and r["failed"] == 4, "the four failures", seconds=30)
        url = f"{serve}/api/runs/{run_id}/retry"
        assert httpx.post(url, headers={"Origin": "http://evil.example"}, timeout=10).status_code == 403
        assert httpx.post(url, timeout=10).status_code == 403, "a bare request cannot steer a run"
        answer = httpx.post(url, headers={"Origin": serve}, timeout=10)
        assert answer.status_code == 202 and answer.json() == {"message": "4 failed items will run again"}
        spec_check(serve, "/api/runs/{run_id}/retry", answer.json(), "202", "post")
        Path(str(calls) + ".retried").touch()
        assert proc.wait() == 0
    assert "ended completed" in "".join(proc.out)
    seen = calls.read_text().split()
    assert sorted(int(x) for x in set(seen) if seen.count(x) > 1) == [3, 13, 23, 33]
    final = until(lambda: (r := row(serve, run_id)) and r["status"] == "completed" and r, "the end", seconds=5)
    assert (final["done"], final["failed"], final["retried"]) == (40, 4, 4)


def test_retry_from_the_page_is_answered_on_the_page(serve, tmp_path) -> None:
    calls = tmp_path / "calls"
    with job("threads", "40", str(calls)) as (proc, run_id), browser_page() as (page, _):
        page.goto(f"{serve}/#run={run_id}", wait_until="domcontentloaded")
        expect(page.locator("#run-failed")).to_have_text("4", timeout=30_000)
        page.click("#retry")  # offered while the run is live and has failures
        expect(page.locator("#cancel-msg")).to_have_text("4 failed items will run again", timeout=5_000)
        Path(str(calls) + ".retried").touch()
        assert proc.wait() == 0
        expect(page.locator("#run-state")).to_have_text("completed", timeout=15_000)
        expect(page.locator("#retry")).to_have_count(0)
    seen = calls.read_text().split()
    assert sorted(int(x) for x in set(seen) if seen.count(x) > 1) == [3, 13, 23, 33]


def test_bad_commands_are_refused_clearly(serve) -> None:
    port = serve.rsplit(":", 1)[1]
    nothing = httpx.post(f"{serve}/api/runs/no-such-run/cancel", headers={"Origin": serve}, timeout=10)
    assert nothing.status_code == 404 and "no run 'no-such-run' on this machine" in nothing.json()["error"]
    spec_check(serve, "/api/runs/{run_id}/cancel", nothing.json(), "404", "post")
    with job("quick", "5") as (proc, run_id):
        assert proc.wait() == 0
    until(lambda: (r := row(serve, run_id)) and r["status"] == "completed", "the end", seconds=5)
    for kind in ("cancel", "retry"):
        ended = httpx.post(f"{serve}/api/runs/{run_id}/{kind}", headers={"Origin": serve}, timeout=10)
        assert ended.status_code == 409 and "has ended (completed)" in ended.json()["error"], ended.text
    with job("steady", "100000", "0.01") as (proc, live_id):
        until(lambda: row(serve, live_id), "the run listed")
        for host in (f"attacker.example:{port}", "127.0.0.1"):
            for kind in ("cancel", "retry"):
                r = httpx.post(
                    f"{serve}/api/runs/{live_id}/{kind}", headers={"Host": host, "Origin": f"http://{host}"}, timeout=10
                )
                assert r.status_code == 400 and host in r.json()["error"]
            for path in ("/api/runs", "/metrics", f"/api/runs/{live_id}/events"):
                assert httpx.get(serve + path, headers={"Host": host}, timeout=10).status_code == 400
        foreign = httpx.post(f"{serve}/api/runs/{live_id}/cancel", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        assert row(serve, live_id)["status"] == "running", "nothing refused changed the run"


def test_a_run_of_the_server_process_is_shown_once() -> None:
    """A run of the server's own process is in the live directory too: it is shown once, from
    its own channel (as `Run(dashboard=...)` shows it), and Retry reaches it through its live
    channel."""
    dashboard.stop()
    server = dashboard.start(port=0, live=True)
    base = f"http://127.0.0.1:{server.port}"
    try:
        with milepost.Run("in-process", display="none", dashboard={"port": 0}) as run:
            with run.phase("p", total=10) as ph:
                ph.advance(3)
                until(lambda: (r := row(base, run.id)) and r["done"] == 3, "listed", seconds=5)
                time.sleep(0.5)  # a few looks of the live feed at the run's directory
                assert sum(1 for r in httpx.get(base + "/api/runs").json()["runs"] if r["id"] == run.id) == 1
                answer = httpx.post(f"{base}/api/runs/{run.id}/retry", headers={"Origin": base}, timeout=10)
                assert answer.status_code == 202 and "no failed items" in answer.json()["message"]
                ph.advance(7)
        final = until(lambda: (r := row(base, run.id)) and r["status"] == "completed" and r, "the end", seconds=5)
        assert final["done"] == 10
        lines = httpx.get(base + "/metrics").text.splitlines()
        assert sum(1 for line in lines if line.startswith("milepost_run_running{") and run.id in line) == 1
    finally:
        dashboard.stop()
