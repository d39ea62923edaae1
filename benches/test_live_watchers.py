"""Group "live": a job with ~10 µs items watched by 5 `milepost monitor`s (each on a terminal
of its own) and 20 SSE streams of `milepost serve`, against nobody watching, alternating rounds
in fresh processes (median of paired rounds). Everything is on loopback, bounded and stopped."""

from __future__ import annotations

import json
import os
import pty
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Tuple

import pytest

pytestmark = pytest.mark.benchmark(group="live")

CHILD = Path(__file__).with_name("child_live.py")


def _serve() -> Tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "milepost", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+)", line)
        if found:
            return proc, int(found.group(1))
    proc.kill()
    raise AssertionError("milepost serve did not say where it listens")


def _monitor(run_id: str) -> Tuple[int, int]:
    """`milepost monitor` on a pseudo-terminal of its own: (pid, the terminal's fd)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
        os.execve(sys.executable, [sys.executable, "-m", "milepost", "monitor", run_id], env)
    return pid, fd


def _streams(port: int, run_id: str, n: int) -> List[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"GET /api/runs/{run_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        s.setblocking(False)
        socks.append(s)
    return socks


def _drain(fds: List[object], stop: threading.Event, seen: List[int]) -> None:
    """Reads every terminal and stream, counting bytes: one thread, so that on a two-core
    machine the load generator itself weighs little beside what it drives."""
    sel = selectors.DefaultSelector()
    for i, f in enumerate(fds):
        sel.register(f, selectors.EVENT_READ, i)  # type: ignore[arg-type]
    deadline = time.monotonic() + 300
    while not stop.is_set() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            try:
                f = key.fileobj
                data = f.recv(65536) if isinstance(f, socket.socket) else os.read(f, 65536)  # type: ignore[arg-type]
            except (BlockingIOError, OSError):
                continue
            seen[key.data] += len(data)
    sel.close()


def _round(monitors: int, streams: int, seconds: float, port: int) -> float:
    with subprocess.Popen(
        [sys.executable, str(CHILD), str(seconds), "300"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as job:
        assert job.stdin is not None and job.stdout is not None
        run_id = job.stdout.readline().strip()
        time.sleep(0.5)  # published, and found by the server
        terms = [_monitor(run_id) for _ in range(monitors)]
        socks = _streams(port, run_id, streams)
        stop = threading.Event()
        seen = [0] * (monitors + streams)
        reader = threading.Thread(target=_drain, args=([fd for _, fd in terms] + socks, stop, seen), daemon=True)
        reader.start()
        try:
            time.sleep(2.0 if monitors else 0.1)  # the monitors are up and drawing
            job.stdin.write("go\n")
            job.stdin.flush()
            result = json.loads(job.stdout.readline())
            job.stdin.write("end\n")
            job.stdin.flush()
            job.wait(timeout=60)
        finally:
            stop.set()
            reader.join(10)
            for s in socks:
                s.close()
            for pid, fd in terms:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
                os.close(fd)
        assert all(n > 0 for n in seen), "every monitor drew and every stream got data"
        return float(result["items_per_second"])


def test_five_monitors_and_twenty_streams_barely_slow_the_job(benchmark) -> None:
    pytest.importorskip("textual")
    monitors, streams = 5, 20
    seconds, rounds = (1.0, 1) if benchmark.disabled else (20.0, 3)
    server, port = _serve()
    alone: List[float] = []
    watched: List[float] = []

    def ab() -> None:
        for r in range(rounds):
            order = [((0, 0), alone), ((monitors, streams), watched)]
            for (m, s), out in order if r % 2 == 0 else reversed(order):
                out.append(_round(m, s, seconds, port))

    try:
        benchmark.pedantic(ab, rounds=1, iterations=1)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    slowdowns = [(a / w - 1) * 100 for a, w in zip(alone, watched, strict=True)]
    benchmark.extra_info["report"] = {
        "monitors": monitors,
        "SSE streams": streams,
        "seconds a round": seconds,
        "rounds": rounds,
        "items/s, nobody watching (median)": round(statistics.median(alone)),
        "items/s, watched (median)": round(statistics.median(watched)),
        "slowdown per round (%)": " ".join(f"{x:.2f}" for x in slowdowns),
        "slowdown, median of rounds (%)": round(statistics.median(slowdowns), 2),
    }
