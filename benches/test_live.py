"""Group "live": the live channel. What a publish costs next to the alternatives it was chosen
over (a SQLite row, a Unix socket to five clients), measured in the same run; and how long an
`advance()` takes to reach a reader of the live files (median and p95)."""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import statistics
import threading
import time
from typing import Any, Callable, Dict, List

import pytest

import milepost
from milepost.live import commands
from milepost.live.place import LiveError
from milepost.live.reader import LiveRun, find_run

pytestmark = pytest.mark.benchmark(group="live")


def _published(run_id: str) -> LiveRun:
    """The run once it is published (a quarter second after its start)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return find_run(run_id)
        except LiveError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _snapshot_text() -> str:
    """A snapshot of a run with three phases, lanes and metrics: what a publish writes."""
    with milepost.Run("bench", display="none", history=False) as run:
        for p in range(3):
            ph = run.phase(f"phase-{p}", total=1000)
            with run.lane(f"w{p}"), ph.item(f"doc-{p}"):
                ph.metric("tokens", 5)
            ph.advance(300)
        return run.snapshot().json()


def _per_call(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def test_a_publish_next_to_the_alternatives(benchmark, tmp_path) -> None:
    n = 20 if benchmark.disabled else 3000
    text = _snapshot_text()
    target = tmp_path / "snapshot.json"
    db = sqlite3.connect(str(tmp_path / "live.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE live (id TEXT PRIMARY KEY, snapshot TEXT)")
    db.execute("INSERT INTO live VALUES ('r', '')")
    db.commit()

    def row() -> None:
        db.execute("UPDATE live SET snapshot = ? WHERE id = 'r'", (text,))
        db.commit()

    pairs = [socket.socketpair() for _ in range(5)]
    stop = threading.Event()

    def drain() -> None:  # the five clients read everything, as attached monitors would
        for _, b in pairs:
            b.setblocking(False)
        while not stop.is_set():
            for _, b in pairs:
                try:
                    while b.recv(1 << 20):
                        pass
                except BlockingIOError:
                    pass
            time.sleep(0.001)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    framed = len(text).to_bytes(4, "big") + text.encode()
    costs: Dict[str, float] = {}

    def measure() -> None:
        costs["file (us)"] = _per_call(lambda: commands.write_json(target, None, text, private_tmp=True), n)
        costs["sqlite row (us)"] = _per_call(row, n)
        costs["unix socket, 5 clients (us)"] = _per_call(lambda: [a.sendall(framed) for a, _ in pairs], n)

    try:
        benchmark.pedantic(measure, rounds=1, iterations=1)
    finally:
        stop.set()
        reader.join(5)
        db.close()
        for a, b in pairs:
            a.close()
            b.close()
    assert json.loads(target.read_text())["run_id"], "the file holds the whole snapshot"
    benchmark.extra_info["report"] = {
        "snapshot bytes": len(text),
        **{k: round(v, 1) for k, v in costs.items()},
        "file: share of a core at 4 publishes/s (%)": round(costs["file (us)"] * 4 / 1e4, 3),
    }


def test_update_to_reader_latency(benchmark, tmp_path, monkeypatch) -> None:
    """A reader polling the live files twenty times a second, as `milepost monitor` does."""
    monkeypatch.setenv("MILEPOST_LIVE_DIR", str(tmp_path / "live"))
    samples = 5 if benchmark.disabled else 80
    poll = 0.05
    latencies: List[float] = []
    rng = random.Random(1)

    def measure() -> None:
        with milepost.Run("latency", display="none", history=tmp_path / "runs.db") as run:
            ph = run.phase("p")
            path = _published(run.id).directory / "snapshot.json"
            deadline = time.monotonic() + 5
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            for i in range(samples):
                time.sleep(rng.uniform(0.05, 0.3))
                t0 = time.monotonic()
                ph.advance()
                seen_mtime = None
                give_up = t0 + 5
                while time.monotonic() < give_up:
                    mtime = os.stat(path).st_mtime_ns
                    if mtime != seen_mtime:
                        seen_mtime = mtime
                        if json.loads(path.read_text())["snapshot"]["root"]["done"] > i:
                            break
                    time.sleep(poll)
                latencies.append(time.monotonic() - t0)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    ordered = sorted(latencies)
    assert len(ordered) == samples and ordered[-1] < 5, "every update reached the reader"
    benchmark.extra_info["report"] = {
        "updates": samples,
        "reader polls per second": round(1 / poll),
        "median (ms)": round(statistics.median(ordered) * 1000),
        "p95 (ms)": round(ordered[int(len(ordered) * 0.95) - 1] * 1000),
    }


def test_update_to_monitor_screen_latency(benchmark) -> None:
    """From an `advance()` in a job's process to the count on an attached `milepost monitor`
    (its Textual app headless, in this process), median and p95."""
    pytest.importorskip("textual")
    import asyncio
    import subprocess
    import sys
    from pathlib import Path

    from milepost.monitor.app import MonitorApp
    from milepost.monitor.run_screen import RunScreen

    n = 4 if benchmark.disabled else 60
    child = Path(__file__).with_name("child_ticks.py")
    proc = subprocess.Popen(
        [sys.executable, str(child), str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    run_id = proc.stdout.readline().split()[1]
    seen: Dict[int, float] = {}

    def shown(app: MonitorApp) -> int:
        screen = app.screen
        return int(screen.view.root.get("done", 0)) if isinstance(screen, RunScreen) and screen.view else -1

    async def watch() -> None:
        app = MonitorApp(_published(run_id))
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 30
            while shown(app) < 0 and time.monotonic() < deadline:
                await pilot.pause(0.01)
            proc.stdin.write("go\n")
            proc.stdin.flush()
            deadline = time.monotonic() + n * 0.4 + 30
            while shown(app) < n and time.monotonic() < deadline:
                done = shown(app)
                if done > 0 and done not in seen:
                    seen[done] = time.time()  # the screen was drawn from this view
                await pilot.pause(0.005)

    try:
        benchmark.pedantic(lambda: asyncio.run(watch()), rounds=1, iterations=1)
        counted = [float(proc.stdout.readline()) for _ in range(n)]
        proc.stdin.write("end\n")
        proc.stdin.flush()
    finally:
        proc.communicate(timeout=60)
    # A count seen by a later snapshot than its own (two advances in one quarter second) is
    # measured from its own advance all the same.
    latencies = sorted(seen[k] - counted[k - 1] for k in seen if 0 < k <= n)
    assert len(latencies) >= n // 2, "the monitor followed the count"
    benchmark.extra_info["report"] = {
        "updates": len(latencies),
        "median (ms)": round(statistics.median(latencies) * 1000),
        "p95 (ms)": round(latencies[max(0, int(len(latencies) * 0.95) - 1)] * 1000),
    }
