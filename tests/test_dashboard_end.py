"""The end of a run reaches every viewer, even when the job's process exits right after its
`with Run(...)` block: the job runs in a child process (so that its exit is real), and SSE,
WebSocket and Prometheus clients on loopback watch it. Every loop is bounded in count and
time; every child is stopped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator, List, Optional, Tuple

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

#: A job with the dashboard on port 0: prints "PORT RUN_ID", waits for a line on stdin, then
#: works in the way argv[1] says, and leaves `with Run` straight into the interpreter's exit.
CHILD = r"""
import sys, time
import milepost
from milepost import dashboard

mode, n = sys.argv[1], int(sys.argv[2])
with milepost.Run("child-job", display="none", history=False, dashboard={"port": 0}) as run:
    print(dashboard.current().port, run.id, flush=True)
    sys.stdin.readline()
    ph = run.phase("map", total=n)
    if mode == "logs":           # ~200 lifecycle events a second until done or cancelled
        for i in range(n):
            if run.cancelled:
                break
            run.log(f"line {i}", source="loop")
            if i % 10 == 3:
                ph.fail(f"item-{i}", "bad")
            else:
                ph.advance()
            time.sleep(0.005)
    elif mode == "cancel":       # works until the dashboard's Cancel
        try:
            milepost.thread_map(lambda x: time.sleep(0.02), range(n), workers=2, description="work")
        except milepost.Cancelled:
            pass
    else:                        # a short job
        for i in range(n):
            if i % 7 == 3:
                ph.fail(f"item-{i}", f"bad value {i}")
            else:
                ph.advance()
            time.sleep(0.01)
if mode == "linger":
    print("ended", flush=True)
    sys.stdin.readline()
"""


class Child:
    """The child job's process, its dashboard's port and its run's id."""

    def __init__(self, proc: subprocess.Popen, port: int, run_id: str) -> None:
        self.proc = proc
        self.port = port
        self.run_id = run_id
        self.base = f"http://127.0.0.1:{port}"

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()


@contextmanager
def child_job(mode: str = "short", n: int = 60, timeout: float = 60.0) -> Iterator[Child]:
    """Starts the child job; at the end waits for it (bounded) and kills it if it lingers."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().split()
            assert len(line) == 2, f"the child did not start: {proc.stderr.read() if proc.stderr else ''}"
            yield Child(proc, int(line[0]), line[1])
        finally:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def raw_sse(port: int, run_id: str, prefix: str = "") -> socket.socket:
    """An SSE request on a raw socket (read it with `read_to_eof`); `prefix`: where the app is mounted."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        f"GET {prefix}/api/runs/{run_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return s


def read_to_eof(s: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection, at most `seconds` long."""
    deadline = time.monotonic() + seconds
    chunks: List[bytes] = []
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not data:
            break
        chunks.append(data)
    s.close()
    return b"".join(chunks)


def sse_events(raw: bytes) -> List[Tuple[str, str]]:
    """`(event, data)` of each complete SSE frame in a (chunked) HTTP response body."""
    body = raw.split(b"\r\n\r\n", 1)[-1].decode("utf-8", "replace")
    out: List[Tuple[str, str]] = []
    for frame in body.split("\n\n"):
        kind: Optional[str] = None
        data = ""
        for line in frame.splitlines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if kind:
            out.append((kind, data))
    return out


def test_every_stream_gets_the_end_before_the_process_exits() -> None:
    with child_job("short", n=60) as job:
        streams = [raw_sse(job.port, job.run_id) for _ in range(3)]
        messages = []
        with connect(f"ws://127.0.0.1:{job.port}/ws?run={job.run_id}", open_timeout=10) as ws:
            time.sleep(0.3)
            job.go()
            raws = [read_to_eof(s, 30) for s in streams]
            try:
                for _ in range(2000):
                    messages.append(json.loads(ws.recv(timeout=30)))
                    if messages[-1]["type"] == "end":
                        break
            except ConnectionClosed:
                pass  # cut off: the asserts below say what is missing
        assert job.proc.wait(30) == 0
    for raw in raws:
        got = sse_events(raw)
        kinds = [k for k, _ in got]
        assert "run_finished" in kinds and kinds[-1] == "end", kinds[-5:]
        final = json.loads([d for k, d in got if k == "snapshot"][-1])
        assert final["root"]["state"] == "completed" and final["root"]["processed"] == 60
    types = [m["type"] for m in messages]
    assert "run_finished" in types and types[-1:] == ["end"], types[-5:]
    final = [m["data"] for m in messages if m["type"] == "snapshot"][-1]
    assert final["root"]["state"] == "completed" and final["root"]["processed"] == 60


def test_prometheus_sees_the_final_counts_once_the_run_has_ended() -> None:
    with child_job("linger", n=30) as job:
        job.go()
        assert job.proc.stdout is not None and job.proc.stdout.readline().strip() == "ended"
        text = httpx.get(job.base + "/metrics", timeout=10).text
        job.go()  # lets the child exit
    families = {f.name: f for f in text_string_to_metric_families(text)}
    running = [s.value for s in families["milepost_run_running"].samples if s.labels["run"] == job.run_id]
    assert running == [0.0]
    done = [
        s.value
        for s in families["milepost_items"].samples
        if s.labels == {"run": job.run_id, "phase": "", "status": "done"}
    ]
    assert done == [30.0 - 4]  # items 3, 10, 17 and 24 failed
