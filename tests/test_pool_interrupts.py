"""Pools under Ctrl-C and SIGKILL, in real processes: Ctrl-C behaves like Cancel and returns
within about one item's time; a second Ctrl-C stops the workers; workers of a killed parent
exit; finished pool items show in the snapshot."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List

import milepost

sys.path.insert(0, os.path.dirname(__file__))
import procs_helpers as helpers  # noqa: E402 - importable by spawned workers from tests/

PROCESS_JOB = textwrap.dedent(
    """
    import multiprocessing, os, sys, time, milepost

    def work(x):
        time.sleep(float(sys.argv[1]))
        return x

    if __name__ == "__main__":
        with milepost.Run("interrupted", display="none") as run:
            try:
                milepost.process_map(work, range(2000), workers=2, chunksize=250)
            except KeyboardInterrupt:
                print("interrupted", time.time(), flush=True)
                raise
    """
)


def _start(script: Path, home: Path, *args: str) -> subprocess.Popen:
    # A session of its own: Ctrl-C reaches the whole process group, workers included, as a
    # terminal sends it.
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MILEPOST_HOME": str(home)},
        start_new_session=True,
    )


def _rows_started_after(home: Path, t: float) -> int:
    db = sqlite3.connect(str(home / "runs.db"))
    try:
        return int(db.execute("SELECT count(*) FROM items WHERE started_at > ?", (t,)).fetchone()[0])
    finally:
        db.close()


def test_ctrl_c_in_process_map_returns_within_about_an_item(tmp_path) -> None:
    """Issue 9, item 11: Ctrl-C took 12.7 s to over 20 s (a chunk of 250 items x 50 ms), and
    about 980 items started after it."""
    script = tmp_path / "job.py"
    script.write_text(PROCESS_JOB)
    proc = _start(script, tmp_path, "0.05")
    time.sleep(2.0)
    sent = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    exited = time.time()
    assert "interrupted" in out, err
    interrupted = float(out.split()[1])
    assert interrupted - sent < 1.0, f"process_map returned {interrupted - sent:.2f} s after Ctrl-C"
    assert exited - sent < 3.0, f"the process took {exited - sent:.2f} s to exit"
    assert _rows_started_after(tmp_path, sent + 0.05) <= 2, "no new item starts after Ctrl-C"
    db = sqlite3.connect(str(tmp_path / "runs.db"))
    assert db.execute("SELECT status FROM runs").fetchone()[0] == "cancelled"


def test_a_second_ctrl_c_stops_the_workers_at_once(tmp_path) -> None:
    script = tmp_path / "job.py"
    script.write_text(PROCESS_JOB)
    proc = _start(script, tmp_path, "20")
    time.sleep(2.0)
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.5)
    sent = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert time.time() - sent < 5.0
    assert "Exception in thread" not in err and "InvalidStateError" not in err, err
    assert not [pid for pid in workers if _alive(pid)], "the workers are gone"
    db = sqlite3.connect(str(tmp_path / "runs.db"))
    status, failed = db.execute("SELECT status, failed FROM runs").fetchone()
    assert (status, failed) == ("cancelled", 0), "items stopped by Ctrl-C are not failures"


def test_ctrl_c_in_thread_map_returns_at_once(tmp_path) -> None:
    """Issue 9, item 12: Ctrl-C waited for the items in flight (5 s with 5 s items)."""
    script = tmp_path / "threads.py"
    script.write_text(
        textwrap.dedent(
            """
        import time, milepost
        with milepost.Run("threads", display="none") as run:
            try:
                milepost.thread_map(lambda x: time.sleep(3), range(100), workers=4)
            except KeyboardInterrupt:
                print("interrupted", time.time(), flush=True)
        """
        )
    )
    proc = _start(script, tmp_path)
    time.sleep(1.0)
    sent = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert "interrupted" in out, err
    assert float(out.split()[1]) - sent < 0.5, "thread_map returned at once"


def test_workers_of_a_parent_killed_with_sigkill_exit(tmp_path) -> None:
    """Issue 9, item 16: pool workers kept running for minutes after their parent died."""
    script = tmp_path / "job.py"
    script.write_text(PROCESS_JOB)
    proc = _start(script, tmp_path, "0.05")
    time.sleep(2.0)
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.time() + 2.5
    while time.time() < deadline and [pid for pid in workers if _alive(pid)]:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # do not leave them behind, whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert not left, "workers exit within about 2 s of their parent's death"
    proc.communicate(timeout=10)


def test_finished_pool_items_show_in_the_snapshot(clock=None) -> None:
    """Issue 9, item 15: successful process_map items never appeared in `recent` (0 of 300)."""
    with milepost.Run("recent", display="none") as run:
        milepost.process_map(
            helpers.square_or_fail, range(300), workers=2, chunksize=10, description="map", return_exceptions=True
        )
    recent = run.snapshot().data["recent"]
    done = [r for r in recent if r["status"] == "done"]
    assert len(done) >= 20, recent
    assert all(r["node"] == "map" and r["lane"].startswith("pid ") and r["duration"] is not None for r in done)
    assert {r["name"] for r in done} <= {str(i) for i in range(300)}


def _children(pid: int) -> List[int]:
    deadline = time.time() + 10
    found: List[int] = []
    while time.time() < deadline:
        found = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        if len(found) >= 2:
            break
        time.sleep(0.05)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_programs_started_by_pool_items_get_ctrl_c_as_usual(tmp_path) -> None:
    """Pool workers leave Ctrl-C to the parent without ignoring it: a program an item starts
    gets the default disposition (found in review: `SigIgn` was inherited)."""
    with milepost.Run("children", display="none", history=False):
        masks = milepost.process_map(helpers.child_sigint_ignored, range(2), workers=2)
    assert masks == [False, False]


def test_the_run_goes_on_after_a_ctrl_c_in_a_pool_is_caught(tmp_path) -> None:
    script = tmp_path / "caught.py"
    script.write_text(
        textwrap.dedent(
            """
        import sys, time, milepost

        def work(x):
            time.sleep(0.05)
            return x

        if __name__ == "__main__":
            with milepost.Run("caught", display="none") as run:
                try:
                    milepost.process_map(work, range(2000), workers=2, chunksize=50)
                except KeyboardInterrupt:
                    print("interrupted", flush=True)
                after = sum(1 for _ in milepost.track(range(5), description="after"))
                more = milepost.thread_map(abs, range(-3, 0), workers=2, description="more")
            print(after, more, run.snapshot().root["state"], flush=True)
        """
        )
    )
    proc = _start(script, tmp_path)
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert out.splitlines() == ["interrupted", "5 [3, 2, 1] completed"], err
