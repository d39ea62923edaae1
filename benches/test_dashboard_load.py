"""Group "dashboard": 50 SSE clients watching a job against nobody watching it, the job in a
separate process, alternating rounds; the job's throughput is compared (median of paired
rounds). Clients and loops are bounded; everything is on loopback and stopped at the end."""

from __future__ import annotations

import json
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest

pytestmark = pytest.mark.benchmark(group="dashboard")

CHILD = Path(__file__).with_name("child_dashboard.py")


def _round(clients: int, seconds: float) -> float:
    with subprocess.Popen(
        [sys.executable, str(CHILD), str(seconds), "300"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        return _watch(proc, clients, seconds)


def _watch(proc: subprocess.Popen, clients: int, seconds: float) -> float:
    """Connects `clients` SSE streams, starts the job, and reads the streams until it ends. The
    clients are raw sockets read by one thread that only counts frames: on a two-core machine
    a heavier load generator would itself slow the job, which is not what is measured."""
    assert proc.stdin is not None and proc.stdout is not None
    port, run_id = proc.stdout.readline().split()
    stop = threading.Event()
    counts = [0] * clients
    socks = []
    for _ in range(clients):
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        s.sendall(f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        s.setblocking(False)
        socks.append(s)

    def read() -> None:
        sel = selectors.DefaultSelector()
        for i, s in enumerate(socks):
            sel.register(s, selectors.EVENT_READ, i)
        deadline = time.monotonic() + seconds + 60
        while not stop.is_set() and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                counts[key.data] += data.count(b"event: snapshot")
        sel.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    result = json.loads(proc.stdout.readline())
    stop.set()
    reader.join(10)
    for s in socks:
        s.close()
    proc.wait(timeout=60)
    if clients:
        assert min(counts) > 0, "every client got snapshots"
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
