"""Starting and ending runs starts and joins no thread of its own (issue 16, set-up): runs not
drawn natively share one sampling thread, their own observers one delivery thread, the runs
writing one history file one writer. Many runs back to back, in parallel threads and in a
forked child, each keep exact counts, lines and history rows."""

from __future__ import annotations

import io
import os
import sqlite3
import sys
import threading

import pytest

import milepost
from milepost.persistence import default_path


def _threads() -> int:
    """Every thread of this process, native ones included."""
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts native threads through /proc")
def test_hundreds_of_short_runs_start_no_thread_each_and_keep_everything() -> None:
    for _ in track_runs(5):  # the shared threads exist from here on
        pass
    before = _threads()
    out = io.StringIO()
    for i in range(200):
        for _ in milepost.track(range(3), description=f"bar{i}", file=out):
            pass
    for i in range(50):
        with milepost.Run(f"kept-{i}", display="none", resources=False) as run:
            run.phase("p").advance(i)
    after = _threads()
    assert after <= before + 2, (before, after)
    lines = out.getvalue().splitlines()
    assert len(lines) == 200 and all(f"bar{i} · completed" in line and "3/3" in line for i, line in enumerate(lines))
    db = sqlite3.connect(str(default_path()))
    kept = dict(db.execute("SELECT name, done FROM runs WHERE name LIKE 'kept-%' AND status = 'completed'"))
    assert kept == {f"kept-{i}": i for i in range(50)}


def track_runs(n: int):
    for _ in range(n):
        yield from milepost.track(range(1), display="none")


def test_runs_in_parallel_threads_share_the_history_writer_and_lose_nothing() -> None:
    errors: list = []

    def job(t: int) -> None:
        try:
            for i in range(25):
                with milepost.Run(f"par-{t}-{i}", display="none", resources=False) as run:
                    with run.phase("p") as ph:
                        for j in range(4):
                            with ph.item(f"{t}-{i}-{j}"):
                                pass
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=job, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not any(t.is_alive() for t in threads), errors
    db = sqlite3.connect(str(default_path()))
    runs = db.execute("SELECT count(*), sum(done) FROM runs WHERE name LIKE 'par-%' AND status = 'completed'")
    assert runs.fetchone() == (100, 400)
    assert db.execute("SELECT count(*) FROM items WHERE name LIKE '%-%-%' AND status = 'done'").fetchone()[0] == 400


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_starts_its_own_shared_threads() -> None:
    """The parent's delivery, sampling and writer threads are not in a forked child: its runs
    start their own, and the parent's go on."""
    with milepost.Run("parent-before", display="none"):
        pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            out = io.StringIO()
            for _ in milepost.track(range(5), description="in-child", file=out):
                pass
            with milepost.Run("child-run", display="none") as run:
                run.phase("p").advance(7)
            db = sqlite3.connect(str(default_path()))
            row = db.execute("SELECT status, done FROM runs WHERE id = ?", (run.id,)).fetchone()
            ok = "in-child · completed" in out.getvalue() and row == ("completed", 7)
            os.write(write, b"ok" if ok else repr((out.getvalue(), row)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    said = os.read(read, 4096)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0 and said == b"ok", said
    with milepost.Run("parent-after", display="none") as run:
        run.phase("p").advance(2)
    db = sqlite3.connect(str(default_path()))
    assert db.execute("SELECT done FROM runs WHERE id = ?", (run.id,)).fetchone() == (2,)
