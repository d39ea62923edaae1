"""Group "dashboard": 50 SSE clients watching a job against nobody watching it, the job in a
separate process, alternating rounds; the job's throughput is compared (median of paired
rounds). Clients and loops are bounded; everything is on loopback and stopped at the end."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import List

import httpx
import pytest

pytestmark = pytest.mark.benchmark(group="dashboard")

CHILD = Path(__file__).with_name("child_dashboard.py")


def _round(clients: int, seconds: float) -> float:
    with subprocess.Popen([sys.executable, str(CHILD), str(seconds), "300"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        return _watch(proc, clients, seconds)


def _watch(proc: subprocess.Popen, clients: int, seconds: float) -> float:
    assert proc.stdin is not None and proc.stdout is not None
    port, run_id = proc.stdout.readline().split()
    stop = threading.Event()
    received: List[int] = []

    def watch() -> None:
        n = 0
        try:
            with httpx.stream("GET", f"http://127.0.0.1:{port}/api/runs/{run_id}/events", timeout=seconds + 30) as r:
                for line in r.iter_lines():
                    if line.startswith("event: snapshot"):
                        n += 1
                    if stop.is_set():
                        break
        except httpx.HTTPError:
            pass
        received.append(n)

    threads = [threading.Thread(target=watch, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    result = json.loads(proc.stdout.readline())
    stop.set()
    proc.wait(timeout=60)
    for t in threads:
        t.join(10)
    if clients:
        assert len(received) == clients and min(received) > 0, "every client got snapshots"
    return float(result["items_per_second"])


def test_fifty_sse_clients_barely_slow_the_job(benchmark) -> None:
    clients, seconds, rounds = (5, 1.0, 1) if benchmark.disabled else (50, 30.0, 3)
    alone: List[float] = []
    watched: List[float] = []

    def ab() -> None:
        for r in range(rounds):
            order = ((0, alone), (clients, watched)) if r % 2 == 0 else ((clients, watched), (0, alone))
            for n, out in order:
                out.append(_round(n, seconds))

    benchmark.pedantic(ab, rounds=1, iterations=1)
    slowdowns = [(a / w - 1) * 100 for a, w in zip(alone, watched)]
    benchmark.extra_info["report"] = {
        "SSE clients": clients,
        "seconds a round": seconds,
        "rounds": rounds,
        "items/s, nobody watching (median)": round(statistics.median(alone)),
        "items/s, watched (median)": round(statistics.median(watched)),
        "slowdown, median of rounds (%)": round(statistics.median(slowdowns), 2),
    }
