"""Many SSE clients on a busy run: 300 raw-socket streams on a job that makes ~200 lifecycle
events a second, some clients vanishing (reset) and some stuck (never reading). The server
must keep answering, notice the dead streams, bound what each stream holds, and write nothing
on the job's stderr. The job is a child process (its stderr captured); every loop here is
bounded in count and time, and every socket and process is closed."""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from typing import Dict, List

import httpx
from prometheus_client.parser import text_string_to_metric_families

from test_dashboard_end import child_job, raw_sse

CLIENTS = 300


def _reader(socks: List[socket.socket], reading: Dict[int, bool], stop: threading.Event, counts: List[int]) -> None:
    """Reads (and drops) what the readable clients get; `reading[i]` False: client i is stuck."""
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.1):
            i = key.data
            if not reading.get(i, False):
                sel.unregister(key.fileobj)
                continue
            try:
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            except (BlockingIOError, OSError):
                continue
            if not data:
                sel.unregister(key.fileobj)
            counts[i] += len(data)
    sel.close()


def _streams_open(base: str) -> float:
    text = httpx.get(base + "/metrics", timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return sum(s.value for s in families["milepost_dashboard_streams"].samples)


def _reset(s: socket.socket) -> None:
    """Closes with a reset, as a killed client would."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def test_three_hundred_sse_clients_on_a_busy_run() -> None:
    with child_job("logs", n=4000, timeout=30) as job:
        socks = [raw_sse(job.port, job.run_id) for _ in range(CLIENTS)]
        reading = {i: True for i in range(CLIENTS)}
        counts = [0] * CLIENTS
        stop = threading.Event()
        reader = threading.Thread(target=_reader, args=(socks, reading, stop, counts), daemon=True)
        reader.start()
        job.go()
        waits: List[float] = []
        try:
            for tick in range(16):  # 8 s of load, /healthz asked twice a second
                if tick == 4:
                    for i in range(0, 100):
                        reading[i] = False  # stuck: connected, never reading again
                    for i in range(100, 200):
                        _reset(socks[i])  # gone: killed mid-stream
                t = time.monotonic()
                assert httpx.get(job.base + "/healthz", timeout=10).status_code == 200
                waits.append(time.monotonic() - t)
                time.sleep(max(0.0, 0.5 - waits[-1]))
            readers = counts[200:]
            assert min(readers) > 0, "every reading client got its stream"
            stop.set()
            reader.join(10)
            for i, s in enumerate(socks):
                if not 100 <= i < 200:
                    _reset(s)
            # The server notices every dead stream, the stuck ones included.
            left = -1.0
            for _ in range(40):
                left = _streams_open(job.base)
                if left == 0:
                    break
                time.sleep(0.25)
            assert left == 0, f"{left} streams still open after every client went"
            assert max(waits) < 2.0, f"/healthz took up to {max(waits):.1f}s under load"
        finally:
            stop.set()
            for s in socks:
                s.close()
            httpx.post(f"{job.base}/api/runs/{job.run_id}/cancel", headers={"Origin": job.base}, timeout=10)
        assert job.proc.wait(30) == 0
        assert job.proc.stderr is not None
        err = [line for line in job.proc.stderr.read().splitlines() if line.strip()]
    assert [line for line in err if not line.startswith("milepost dashboard: http://")] == [], err[:5]
