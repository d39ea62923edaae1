"""Fault rounds: a job killed with SIGKILL at random moments and resumed, again and again.

Every round: the database passes `PRAGMA integrity_check`; the resumed run starts from exactly
the items recorded done (never more, never fewer); no item recorded done is ever lost or
recorded twice. At the end: exact final counts."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Dict, List, Tuple

ITEM_JOB = textwrap.dedent(
    """
    import sys, time, milepost
    n = int(sys.argv[1])
    with milepost.Run("rounds", resume=True, display="none") as run:
        with run.phase("p", total=n) as ph:
            print("start", ph.done, flush=True)
            for name in ph.pending(f"item-{i}" for i in range(n)):
                with ph.item(name):
                    time.sleep(0.0001)
    print("final", run.snapshot().find("p")["done"], flush=True)
    """
)

POOL_JOB = textwrap.dedent(
    """
    import sys, time, milepost

    def work(name):
        time.sleep(0.001)
        return name

    if __name__ == "__main__":
        n = int(sys.argv[1])
        names = [f"item-{i}" for i in range(n)]
        with milepost.Run("pool-rounds", resume=True, display="none") as run:
            with run.phase("p") as ph:
                todo = list(ph.pending(names))
                print("start", ph.done, flush=True)
                milepost.process_map(work, todo, workers=2, chunksize=20, task=ph)
        node = run.snapshot().find("p")
        print("final", node["done"], node["total"], flush=True)
    """
)


def _rows(db_path: Path) -> Tuple[str, List[Tuple[str, int]]]:
    db = sqlite3.connect(str(db_path))
    try:
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        rows = db.execute("SELECT name, count(*) FROM items WHERE status = 'done' GROUP BY name").fetchall()
        return check, rows
    finally:
        db.close()


def _rounds(
    tmp_path: Path, argv: List[str], n: int, rounds: int, seed: int, window: Tuple[float, float] = (0.05, 0.6)
) -> Dict[str, int]:
    """Kills the job `rounds` times at random moments, checking the database after each kill
    and the resumed counts at each start; returns the first line of every start."""
    rng = random.Random(seed)
    env = {**os.environ, "MILEPOST_HOME": str(tmp_path)}
    db_path = tmp_path / "runs.db"
    recorded: Dict[str, int] = {}
    for r in range(rounds):
        before = _rows(db_path)[1] if db_path.exists() else []
        proc = subprocess.Popen([*argv, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        start = proc.stdout.readline().split()
        assert start and start[0] == "start", (
            f"round {r}: the job did not start ({proc.stderr.read() if proc.stderr else ''})"
        )
        assert int(start[1]) == sum(c for _, c in before), f"round {r}: resumed at {start[1]}, rows say {len(before)}"
        time.sleep(rng.uniform(*window))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        check, rows = _rows(db_path)
        assert check == "ok", f"round {r}: {check}"
        twice = [name for name, count in rows if count > 1]
        assert not twice, f"round {r}: items recorded done twice: {twice[:5]}"
        lost = set(recorded) - {name for name, _ in rows}
        assert not lost, f"round {r}: items recorded done were lost: {sorted(lost)[:5]}"
        recorded = dict(rows)
    return recorded


def test_twenty_kill_and_resume_rounds_of_an_item_job_end_exact(tmp_path) -> None:
    n = 100_000
    recorded = _rounds(tmp_path, [sys.executable, "-c", ITEM_JOB], n, rounds=20, seed=9)
    assert 0 < len(recorded) < n, "the kills landed mid-run"
    env = {**os.environ, "MILEPOST_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", ITEM_JOB, str(n)], capture_output=True, text=True, env=env, timeout=300, check=True
    ).stdout.split()
    assert out == ["start", str(len(recorded)), "final", str(n)]
    check, rows = _rows(tmp_path / "runs.db")
    assert check == "ok" and len(rows) == n and all(count == 1 for _, count in rows)


def test_kill_and_resume_rounds_of_a_process_pool_end_exact(tmp_path) -> None:
    n = 20_000
    script = tmp_path / "pool_job.py"
    script.write_text(POOL_JOB)
    # Kills late enough that chunks come back even on a busy machine (a pool's rows arrive
    # with its chunks' results).
    recorded = _rounds(tmp_path, [sys.executable, str(script)], n, rounds=8, seed=10, window=(0.3, 1.2))
    assert 0 < len(recorded) < n
    env = {**os.environ, "MILEPOST_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, str(script), str(n)], capture_output=True, text=True, env=env, timeout=300, check=True
    ).stdout.split()
    assert out == ["start", str(len(recorded)), "final", str(n), str(n)]
    check, rows = _rows(tmp_path / "runs.db")
    assert check == "ok" and len(rows) == n and all(count == 1 for _, count in rows)
