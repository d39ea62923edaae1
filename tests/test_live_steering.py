"""Steering a live run from outside, at the edges: a retry after a cancel runs nothing, a
failure behind a slow item can be retried at once, a skip is taken by one item only, hostile
files in the command directory are left alone, and a killed job nobody reaped is `crashed`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import milepost
from live_jobs import published
from milepost.live.reader import find_run

JOBS = str(Path(__file__).parent / "live_jobs.py")


def _until(check, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.01)


def test_a_retry_after_a_cancel_runs_nothing_and_counts_nothing() -> None:
    answers = []

    def fn(i: int) -> int:
        if i == 1:
            raise ValueError("bad 1")
        if i == 2:
            _until(lambda: run.snapshot().root["failed"] == 1)
            run.cancel("enough")
            answers.append(published(run.id).send("retry"))
        return i

    with pytest.raises(milepost.Cancelled):
        with milepost.Run("retry-after-cancel", display="none") as run:
            milepost.thread_map(fn, range(3), workers=3, return_exceptions=True, description="pool")
    assert answers == ["no failed items to run again in the run's running pools"]
    node = run.snapshot().find("pool")
    assert (node["total"], node["retried"], node["failed"]) == (3, 0, 1)


def test_a_failure_behind_a_slow_item_can_be_run_again_at_once() -> None:
    answers = []
    calls = {3: 0}

    def fn(i: int) -> int:
        if i == 0:  # the first result waits while item 3 fails and is retried
            _until(lambda: run.snapshot().root["failed"] == 1)
            answers.append(published(run.id).send("retry"))
        if i == 3:
            calls[3] += 1
            if calls[3] == 1:
                raise ValueError("flaky")
        return i

    with milepost.Run("retry-early", display="none") as run:
        out = milepost.thread_map(fn, range(4), workers=4, return_exceptions=True, description="pool")
    assert answers == ["1 failed item will run again"]
    assert out == [0, 1, 2, 3] and calls[3] == 2
    node = run.snapshot().find("pool")
    assert (node["done"], node["failed"], node["retried"], node["total"]) == (4, 1, 1, 5)


def test_a_skip_is_taken_by_one_item_only() -> None:
    seen = []
    with milepost.Run("skip-once", display="none") as run:
        live = published(run.id)
        with run.phase("p") as ph:
            assert "skip asked for 'a'" in live.send("skip", "a")
            for name in ("a", "a", "b"):
                with ph.item(name) as item:
                    seen.append(item.skip_requested)
                    seen.append(item.skip_requested)  # asked twice, the same answer
                    if item.skip_requested:
                        item.skip()
        assert ph.skipped == 1 and ph.done == 2
    assert seen == [True, True, False, False, False, False]


def test_hostile_files_in_the_command_directory_are_left_alone() -> None:
    with milepost.Run("hostile", display="none") as run:
        live = published(run.id)
        commands = live.directory / "commands"
        commands.mkdir(mode=0o700, exist_ok=True)  # made by the first to write there (a sender)
        os.mkfifo(commands / "0-fifo.json")  # a pipe would block whoever opened it
        (commands / "1-link.json").symlink_to("/dev/zero")  # a link to an endless file
        (commands / "2-garbage.json").write_text("{not json")
        (commands / "3-huge.json").write_bytes(b"[" * 10_000_000)
        assert live.send("retry") == "no failed items to run again in the run's running pools"
        _until(lambda: sorted(os.listdir(commands)) == [])
        run.phase("p").advance()
    assert find_run(run.id).read().state == "completed"


def test_a_weird_meta_value_never_stops_publishing() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

    with milepost.Run("meta", display="none") as run:
        run.meta["model"] = Unprintable()
        run.meta["n"] = 3
        with run.phase("p") as ph:
            ph.advance(5)
    state = find_run(run.id).read()
    assert state.state == "completed" and state.meta == {"model": "<Unprintable>", "n": 3}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process states from /proc")
def test_a_killed_job_nobody_reaped_is_crashed() -> None:
    proc = subprocess.Popen(
        [sys.executable, JOBS, "steady", "100000", "0.01"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        run = published(proc.stdout.readline().split()[1])
        _until(lambda: run.read().root.get("done", 0) > 3)
        os.kill(proc.pid, signal.SIGKILL)
        # Not reaped yet: the process is a zombie, its pid still taken.
        _until(lambda: run.read().state == "crashed", seconds=2)
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_a_command_sent_while_the_run_thinks_is_answered_by_a_thread(tmp_path) -> None:
    """Two clients at once get their own answers."""
    with milepost.Run("two-clients", display="none") as run:
        live = published(run.id)
        answers = []
        clients = [threading.Thread(target=lambda: answers.append(live.send("retry"))) for _ in range(2)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(10)
        run.phase("p").advance()
    assert answers == ["no failed items to run again in the run's running pools"] * 2
