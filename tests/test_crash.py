"""Crash safety: a job killed with SIGKILL at random moments, 20 times. Each time the history
database passes SQLite's integrity check, the snapshot file is whole JSON, and every item the
job reported done at least twice the flush interval before the kill is in the database."""

from __future__ import annotations

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
