"""The dashboard at a run's end, in a real browser (Debian's Chromium, driven by playwright):
every part of the page shows the final state, the HISTORY table and the runs list included,
whether the job's process exits at once (taking its server with it) or lingers. And a forked
child (a pool's worker) never holds the dashboard's port. Every wait is bounded; every child
process and server is stopped."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
from contextlib import contextmanager
from typing import Any, Iterator, List

import httpx
from playwright.sync_api import expect

import milepost
from milepost import dashboard
from test_dashboard_end import Child
from test_dashboard_page import _policy_errors, browser_page

#: A job with its history kept (in $MILEPOST_HOME) and the dashboard on port 0: prints
#: "PORT RUN_ID", waits for a line on stdin, processes `n` items (every 7th fails), then leaves
#: `with Run`; with "linger" it waits for another line before exiting.
CHILD = r"""
import sys, time
import milepost
from milepost import dashboard

mode, n = sys.argv[1], int(sys.argv[2])
with milepost.Run("polish-end", display="none", dashboard={"port": 0}) as run:
    print(dashboard.current().port, run.id, flush=True)
    sys.stdin.readline()
    ph = run.phase("map", total=n)
    for i in range(n):
        if i % 7 == 3:
            ph.fail(f"item-{i}", "bad")
        else:
            ph.advance()
        time.sleep(0.01)
if mode == "linger":
    print("ended", flush=True)
    sys.stdin.readline()
"""


@contextmanager
def job(mode: str, n: int) -> Iterator[Child]:
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
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def _check_final(page, n: int, done: int, failed: int) -> None:
    """The header, the HISTORY table's row of the run and the runs list all say it ended."""
    expect(page.locator("#run-state")).to_have_text("completed", timeout=15_000)
    expect(page.locator("#run-processed")).to_have_text(f"{n} / {n}")
    row = page.locator("#history-rows tr.current")
    expect(row).to_have_count(1, timeout=15_000)
    expect(row.locator(".badge")).to_have_text("completed", timeout=15_000)
    cells = row.locator("td")
    expect(cells.nth(2)).not_to_have_text("live")
    expect(cells.nth(3)).to_have_text(str(done))
    expect(cells.nth(4)).to_have_text(str(failed))
    side = page.locator("#runs li.active")
    expect(side.locator(".badge")).to_have_text("completed")
    expect(side.locator(".run-progress")).to_contain_text(f"{n}/{n}")
    expect(side.locator(".live-dot")).to_be_hidden()


def test_the_history_table_shows_the_end_after_the_job_exits() -> None:
    with browser_page() as (page, errors), job("exit", 60) as child:
        page.goto(child.base + "/", wait_until="domcontentloaded")
        expect(page.locator("#conn")).to_have_text("live", timeout=15_000)
        row = page.locator("#history-rows tr.current")
        expect(row.locator(".badge")).to_have_text("running", timeout=15_000)
        expect(row.locator("td").nth(2)).to_have_text("live")
        child.go()
        assert child.proc.wait(30) == 0
        _check_final(page, 60, 51, 9)
        expect(page.locator("#conn")).to_contain_text("finished")
    assert _policy_errors(errors) == []


def test_the_history_table_is_asked_for_again_while_the_server_lingers() -> None:
    with browser_page() as (page, errors), job("linger", 60) as child:
        page.goto(child.base + "/", wait_until="domcontentloaded")
        expect(page.locator("#conn")).to_have_text("live", timeout=15_000)
        expect(page.locator("#history-rows tr.current .badge")).to_have_text("running", timeout=15_000)
        requests: list = []
        page.on("request", lambda r: requests.append(r.url))
        child.go()
        assert child.proc.stdout is not None and child.proc.stdout.readline().strip() == "ended"
        _check_final(page, 60, 51, 9)
        # Both panels come from the server again, not only from the final snapshot.
        expect(page.locator("#history-rows tr.current td").nth(2)).not_to_have_text("live")
        page.wait_for_timeout(2_000)
        assert any("name=polish-end" in u for u in requests), requests
        assert any(u.endswith("api/runs?limit=50&offset=0") for u in requests), requests
        child.go()
    assert _policy_errors(errors) == []


def _listening_inode(port: int) -> int:
    """The inode of the socket listening on 127.0.0.1:`port` (from /proc/net/tcp)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":  # LISTEN
                return int(fields[9])
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def fds_of_socket(inode: int) -> List[int]:
    """This process's file descriptors open on the socket `inode`."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == f"socket:[{inode}]":
                held.append(int(fd))
        except OSError:
            pass  # the directory's own descriptor, gone by now
    return held


def _forked_child(inode: int, found: Any, leave: Any) -> None:
    found.put(fds_of_socket(inode))
    leave.wait(30)


def test_forked_children_never_hold_the_dashboard_port() -> None:
    dashboard.stop()
    server = dashboard.start("127.0.0.1", 0)
    port = server.port
    inode = _listening_inode(port)
    assert fds_of_socket(inode), "the parent listens"
    ctx = multiprocessing.get_context("fork")
    found, leave = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=_forked_child, args=(inode, found, leave))
    child.start()
    try:
        assert found.get(timeout=30) == [], "the child holds the dashboard's listening socket"
        # A pool's workers too (process_map forks them here).
        with milepost.Run("fork-port", display="none", history=False) as run:
            held = milepost.process_map(fds_of_socket, [inode] * 4, workers=2, mp_context=ctx, task=run.phase("p"))
        assert held == [[]] * 4
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).text == "ok", "the parent still serves"
        # Stopped in the parent, the port is free while the child lives.
        dashboard.stop()
        assert child.is_alive()
        socket.create_server(("127.0.0.1", port)).close()
    finally:
        leave.set()
        child.join(30)
        dashboard.stop()
