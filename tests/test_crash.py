"""Crash safety: a job killed with SIGKILL at random moments, 20 times. Each time the history
database passes SQLite's integrity check, the snapshot file is whole JSON, and every item the
job reported done at least twice the flush interval before the kill is in the database."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

CHILD = textwrap.dedent(
    """
    import sys, time, milepost
    snap = milepost.JsonSnapshotFile(sys.argv[1], interval=0.05)
    with milepost.Run("crash", display="none", observers=[snap]) as run:
        ph = run.phase("p")
        i = 0
        while True:
            with ph.item(f"item-{i}") as item:
                item.metric("bytes", 100)
            print(f"{i} {time.time()}", flush=True)  # reported done
            i += 1
            if i % 50 == 0:
                time.sleep(0.001)
    """
)

FLUSH_INTERVAL = 0.5  # the store's default


def test_sigkill_at_random_moments_loses_nothing_reported(tmp_path) -> None:
    rng = random.Random(20261121)
    for trial in range(20):
        home = tmp_path / f"t{trial}"
        snap = home / ".progress.json"
        home.mkdir()
        env = {**os.environ, "MILEPOST_HOME": str(home)}
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(snap)], stdout=subprocess.PIPE, text=True, env=env)
        # Wait for the first report, then let the job run a random while.
        first = proc.stdout.readline()
        assert first, "the job started"
        time.sleep(rng.uniform(0.2, 1.5))
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        reports = [line.split() for line in (first + rest).splitlines() if line.strip()]
        # The kill can cut the last report short (seen once in CI under load); any other line
        # that is not "index time" is output that does not belong on the job's stdout.
        assert all(len(r) == 2 for r in reports[:-1]), f"trial {trial}: {[r for r in reports if len(r) != 2]}"
        reports = [r for r in reports if len(r) == 2]
        old_enough = {f"item-{i}" for i, t in reports if float(t) < killed_at - 2 * FLUSH_INTERVAL}
        db = sqlite3.connect(str(home / "runs.db"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"trial {trial}"
        stored = {row[0] for row in db.execute("SELECT name FROM items WHERE status = 'done'")}
        missing = old_enough - stored
        assert not missing, f"trial {trial}: {len(missing)} items reported done before the flush interval are lost"
        assert db.execute("SELECT status FROM runs").fetchone()[0] == "running", "the run was never finished"
        if snap.exists():
            data = json.loads(snap.read_text())
            assert data["schema"] == 1 and data["name"] == "crash"
        assert len(old_enough) > 0 or trial > 0
        db.close()


KILLED = textwrap.dedent(
    """
    import sys, time, milepost
    with milepost.Run("killed", display="none") as run:
        with run.phase("p", total=1000) as ph:
            for i in range(120):
                with ph.item(f"item-{i}"):
                    pass
            ph.advance(30)  # counted, with no item row
            print("ready", flush=True)
            time.sleep(60)
    """
)


def test_show_of_a_crashed_run_says_what_a_resume_will_skip(tmp_path) -> None:
    """Found trying it as a user: after a kill -9, `milepost show` gave the counts of the run's
    last snapshot and `milepost runs` those of its last live one, and neither is what a resume
    goes by: the item rows. `show` now says how many items the history holds done."""
    env = {**os.environ, "MILEPOST_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        db = tmp_path / "runs.db"
        deadline = time.monotonic() + 30
        # The snapshot with the 30 counted (a second at most) and the rows (half a second).
        while True:
            with contextlib.closing(sqlite3.connect(str(db))) as c:
                done = c.execute("SELECT done FROM runs").fetchone()
                rows = c.execute("SELECT coalesce(sum(done), 0) FROM item_chunks").fetchone()[0]
            if done == (150,) and rows == 120:
                break
            assert time.monotonic() < deadline, (done, rows)
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    out = subprocess.run(
        [sys.executable, "-m", "milepost", "show", "killed"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()[:2]
    assert ": crashed," in first and "150/1,000 processed" in first
    assert second.startswith("  the history holds 120 items done, one by one: those are what a resume"), second
