"""Resume takes over exactly what the history recorded: items from their rows, other counts
from the run's own checkpoint; history paths are unambiguous; item names are bounded.

Jobs run in real subprocesses against a real SQLite file and are killed with real signals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import milepost
from milepost.persistence import SCHEMA_VERSION, default_path

ITEM_JOB = textwrap.dedent(
    """
    import sys, time, milepost
    n = int(sys.argv[1])
    with milepost.Run("exact", resume=True, display="none") as run:
        with run.phase("p", total=n) as ph:
            print("start", ph.done, ph.skipped, flush=True)
            for i in ph.pending(range(n)):
                with ph.item(str(i)):
                    time.sleep(0.0004)
    print("final", run.snapshot().find("p")["done"], flush=True)
    """
)


def _env(home: Path) -> dict:
    return {**os.environ, "MILEPOST_HOME": str(home)}


def _done_rows(home: Path) -> int:
    db = sqlite3.connect(str(home / "runs.db"))
    try:
        return int(db.execute("SELECT count(*) FROM items WHERE status = 'done'").fetchone()[0])
    finally:
        db.close()


def _start_and_kill(code: str, home: Path, after: float, *args: str, sig: int = signal.SIGKILL) -> str:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(home)
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("start"), first + proc.stderr.read() if proc.stderr else first
    time.sleep(after)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    return first + out


def test_a_killed_item_job_resumes_with_counts_equal_to_its_rows(tmp_path) -> None:
    """Issue 9, item 1: a phase resumed from a count saved a moment apart from the rows it
    skips lost the items in between (completed 2,000/5,000)."""
    _start_and_kill(ITEM_JOB, tmp_path, 1.2, "5000")
    recorded = _done_rows(tmp_path)
    assert 0 < recorded < 5000, "killed mid-run"
    out = subprocess.run(
        [sys.executable, "-c", ITEM_JOB, "5000"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
        check=True,
    ).stdout.split("\n")
    assert out[0] == f"start {recorded} 0", "the resumed phase starts from exactly the items recorded done"
    assert out[1] == "final 5000"
    assert _done_rows(tmp_path) == 5000


POOL_JOB = textwrap.dedent(
    """
    import sys, time, milepost

    def score(path):
        time.sleep(0.005)
        return len(path)

    if __name__ == "__main__":
        paths = [f"doc-{i:04d}" for i in range(1000)]
        with milepost.Run("score-corpus", resume=True, display="none") as run:
            with run.phase("score") as ph:
                todo = list(ph.pending(paths))
                print("start", ph.done, len(todo), flush=True)
                milepost.process_map(score, todo, workers=2, task=ph, return_exceptions=True)
            node = run.snapshot().find("score")
            print("final", node["done"], node["total"], flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_the_readme_pool_resume_ends_at_exactly_the_items(tmp_path, sig) -> None:
    """Issue 9, item 2: the README's "Process pools resume too" example ended 1,055/500 after
    Ctrl-C and 862/750 after SIGKILL."""
    script = tmp_path / "score.py"
    script.write_text(POOL_JOB)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path)
    )
    assert proc.stdout is not None and proc.stdout.readline().startswith("start 0 1000")
    time.sleep(1.5)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    recorded = _done_rows(tmp_path)
    assert 0 < recorded < 1000
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=_env(tmp_path), timeout=120, check=True
    ).stdout.split("\n")
    assert out[0] == f"start {recorded} {1000 - recorded}"
    assert out[1] == "final 1000 1000"
    # Found trying it as a user: the killed attempt's workers were still listed as busy in the
    # completed run.
    with contextlib.closing(sqlite3.connect(str(tmp_path / "runs.db"))) as db:
        states = [r[0] for r in db.execute("SELECT state FROM workers")]
    assert len(states) >= 4 and not {"busy", "idle", "stalled"} & set(states), states


def test_a_resumed_run_killed_at_once_keeps_its_counts_in_the_history(tmp_path) -> None:
    """Issue 9, item 3: the resumed run's first row reset the history's count to 0."""
    code = textwrap.dedent(
        """
        import os, signal, sys, milepost
        stop = sys.argv[1] == "stop"
        with milepost.Run("again", resume=True, display="none") as run:
            with run.phase("p", total=500) as ph:
                print("start", ph.done, flush=True)
                if not stop:
                    os.kill(os.getpid(), signal.SIGKILL)  # killed within its first moment
                for i in ph.pending(range(500)):
                    with ph.item(str(i)):
                        if i == 300:
                            raise KeyboardInterrupt
        """
    )
    first = subprocess.run(
        [sys.executable, "-c", code, "stop"], capture_output=True, text=True, env=_env(tmp_path), timeout=60
    )
    assert first.returncode != 0 and "KeyboardInterrupt" in first.stderr
    second = subprocess.run(
        [sys.executable, "-c", code, "kill"], capture_output=True, text=True, env=_env(tmp_path), timeout=60
    )
    assert second.returncode == -signal.SIGKILL and second.stdout == "start 300\n"
    db = sqlite3.connect(str(tmp_path / "runs.db"))
    status, done, resumed = db.execute("SELECT status, done, resumed FROM runs").fetchone()
    assert (status, done, resumed) == ("running", 300, 1), "the history still shows what was done"


def test_repeated_and_slashed_names_keep_their_own_history_rows() -> None:
    """Issue 9, item 5: two phases of one name, or a phase `x/y` beside step `y` of phase
    `x`, wrote one history row (10 and 5 done left one row with 5)."""
    with milepost.Run("paths", display="none") as run:
        with run.phase("x") as a:
            a.advance(10)
        with run.phase("x") as b:
            b.advance(5)
        with run.phase("x/y") as slashed:
            slashed.advance(3)
        with run.phase("x") as c, c.step("y") as step:
            step.advance(4)
        with run.phase("a#2") as hashed:
            hashed.advance(2)
    db = sqlite3.connect(str(default_path()))
    rows = dict(db.execute("SELECT path, done FROM phases WHERE run_id = ?", (run.id,)).fetchall())
    assert rows == {"x": 10, "x#2": 5, "x%2Fy": 3, "x#3": 4, "x#3/y": 4, "a%232": 2}
    paths = [n["path"] for _, n in run.snapshot().nodes()]
    assert paths == ["x", "x#2", "x%2Fy", "x#3", "x#3/y", "a%232"], "the snapshot names them the same way"


def test_repeated_names_resume_into_their_own_phase() -> None:
    def job(stop: bool) -> None:
        with milepost.Run("twins", display="none", resume=True) as run:
            for n in range(2):
                with run.phase("load", total=10) as ph:
                    for i in ph.pending(range(10)):
                        with ph.item(f"{n}-{i}"):
                            if stop and n == 1 and i == 4:
                                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job(stop=True)
    with milepost.Run("twins", display="none", resume=True) as run:
        first = run.phase("load", total=10)
        second = run.phase("load", total=10)
        assert (first.done, second.done) == (10, 4)


def test_item_names_are_stored_bounded_and_still_resume(tmp_path) -> None:
    """Issue 9, item 6: a 1,000,000-character name was stored whole."""
    long_a, long_b = "a" * 1_000_000 + "1", "a" * 1_000_000 + "2"
    with pytest.raises(KeyboardInterrupt):
        with milepost.Run("long", display="none") as run:
            with run.phase("p") as ph:
                for name in (long_a, long_b, "short"):
                    with ph.item(name):
                        if name == "short":
                            raise KeyboardInterrupt
    db = sqlite3.connect(str(default_path()))
    lengths = [n for (n,) in db.execute("SELECT length(name) FROM items WHERE run_id = ?", (run.id,))]
    assert lengths == [256, 256], "the 256 characters the README promises"
    with milepost.Run("long", display="none", resume=True) as again:
        with again.phase("p") as ph:
            assert list(ph.pending([long_a, long_b, "short"])) == ["short"], "long names are told apart"
            assert ph.done == 2


LOOP_AND_POOL_JOB = textwrap.dedent(
    """
    import os, sys, milepost

    def work(x):
        return x

    def crash_at_6(x):
        if x == 6 and sys.argv[1] == "crash":
            os._exit(1)
        return x

    if __name__ == "__main__":
        with milepost.Run("made-phases", resume=True, display="none") as run:
            for x in milepost.track(range(10), description="loop"):
                pass
            milepost.process_map(work, range(10), workers=2, description="procs")
            milepost.thread_map(crash_at_6, range(10), workers=1, description="threads")
        snap = run.snapshot()
        print(*[f"{n}={snap.find(n)['done']}/{snap.find(n)['total']}" for n in ("loop", "procs", "threads")])
    """
)


def test_loops_and_pools_that_make_their_phase_count_what_they_run_in_a_resumed_run(tmp_path) -> None:
    """A loop or a pool making its own phase runs every item it is given again: in a resumed
    run it counts them now, never on top of what the history had (found in review: 16/10)."""
    script = tmp_path / "job.py"
    script.write_text(LOOP_AND_POOL_JOB)
    crashed = subprocess.run(
        [sys.executable, str(script), "crash"], capture_output=True, text=True, env=_env(tmp_path), timeout=120
    )
    assert crashed.returncode == 1
    out = subprocess.run(
        [sys.executable, str(script), "again"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
        check=True,
    ).stdout.split()
    assert out == ["loop=10/10", "procs=10/10", "threads=10/10"]


def test_undecodable_names_are_recognized_on_resume() -> None:
    names = ["ok", "bad\udcff\udcfe", "nul\x00name", "also\ud800bad"]

    def job(stop: bool) -> milepost.Run:
        with milepost.Run("surrogates", display="none", resume=True) as run:
            with run.phase("p", total=len(names)) as ph:
                for name in ph.pending(names):
                    with ph.item(name):
                        if stop and name == names[-1]:
                            raise KeyboardInterrupt
        return run

    with pytest.raises(KeyboardInterrupt):
        job(stop=True)
    run = job(stop=False)
    assert run.snapshot().find("p")["done"] == 4, "the three names done before are skipped and counted once"
    db = sqlite3.connect(str(default_path()))
    assert db.execute("SELECT count(*) FROM items WHERE status = 'done'").fetchone()[0] == 4


def test_a_version_1_history_migrates_with_exact_resume_counts(tmp_path) -> None:
    from milepost.persistence.schema import _V1, _script

    path = tmp_path / "old.db"
    db = sqlite3.connect(str(path))
    _script(db, _V1)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO runs (id, name, status, started_at, done) VALUES ('r', 'old', 'cancelled', 0, 12)")
    # `_` and case are no wildcards: `loadXdata/s` and `Load_data/s` are not steps of `load_data`.
    for p, done in (("load_data", 5), ("loadXdata", 3), ("loadXdata/s", 3), ("Load_data", 4), ("Load_data/s", 4)):
        db.execute(
            "INSERT INTO phases (run_id, path, name, kind, status, done) VALUES ('r', ?, ?, 'phase', 'cancelled', ?)",
            (p, p, done),
        )
    db.executemany(
        "INSERT INTO items (run_id, phase, name, status) VALUES ('r', 'load_data', ?, 'done')", [("a",), ("b",)]
    )
    db.commit()
    db.close()
    with milepost.Run("old", display="none", history=path, resume="r") as run:
        assert run.phase("load_data").done == 5, "2 from its rows, 3 counted otherwise"
        other = run.phase("loadXdata")
        assert (other.done, other.step("s").done) == (0, 3), "a parent's own count leaves its steps' out"
    assert sqlite3.connect(str(path)).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_item_rows_start_when_the_items_started(method) -> None:
    """Found while testing Ctrl-C: rows from forked workers had start times off by the
    worker's monotonic clock (hours in the future)."""
    import multiprocessing

    sys.path.insert(0, os.path.dirname(__file__))
    import procs_helpers as helpers

    before = time.time()
    with milepost.Run(f"starts-{method}", display="none") as run:
        milepost.process_map(helpers.slow, range(8), workers=2, mp_context=multiprocessing.get_context(method))
    after = time.time()
    db = sqlite3.connect(str(default_path()))
    starts = [t for (t,) in db.execute("SELECT started_at FROM items WHERE run_id = ?", (run.id,))]
    assert len(starts) == 8 and all(before <= t <= after for t in starts), (before, starts, after)


def test_a_resumed_runs_duration_adds_up_its_attempts() -> None:
    """Found by a newcomer: a run resumed twice showed only its last attempt's duration."""
    for attempt in range(3):
        with pytest.raises(KeyboardInterrupt) if attempt < 2 else contextlib.nullcontext():
            with milepost.Run("long", display="none", resume=True) as run:
                time.sleep(0.3)
                if attempt < 2:
                    raise KeyboardInterrupt
    db = sqlite3.connect(str(default_path()))
    elapsed, resumed = db.execute("SELECT elapsed, resumed FROM runs WHERE id = ?", (run.id,)).fetchone()
    assert resumed == 2 and elapsed >= 0.85, elapsed


def _pending_in_child(ph: milepost.Task, queue) -> None:
    queue.put(list(ph.pending(range(10))))


def test_pending_in_a_forked_child_of_a_resumed_run_skips_what_was_done() -> None:
    import multiprocessing as mp

    with pytest.raises(KeyboardInterrupt):
        with milepost.Run("forked-resume", display="none") as run:
            with run.phase("p", total=10) as ph:
                for i in range(10):
                    with ph.item(str(i)):
                        if i == 6:
                            raise KeyboardInterrupt
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    with milepost.Run("forked-resume", display="none", resume=True) as run:
        with run.phase("p", total=10) as ph:
            child = ctx.Process(target=_pending_in_child, args=(ph, queue))
            child.start()
            in_child = queue.get(timeout=30)
            child.join(30)
            assert in_child == list(ph.pending(range(10))) == [6, 7, 8, 9]


def test_a_run_still_running_elsewhere_is_not_resumed_until_its_process_is_gone(tmp_path) -> None:
    """Found trying it as a user: a second process that resumed a run while the first was
    still at it ran the same items, and the history held 2,263 of them twice. The resume is
    refused while the run's process is alive; once it is gone, the run resumes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ITEM_JOB, "1000000"], stdout=subprocess.PIPE, text=True, env=_env(tmp_path)
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("start")
        with pytest.raises(milepost.MilepostError, match=r"run 'exact' \(\w+\) is still running in process \d+"):
            milepost.Run("exact", resume=True, display="none", history=tmp_path / "runs.db")
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    with milepost.Run("exact", resume=True, display="none", history=tmp_path / "runs.db") as run:
        pass
    with contextlib.closing(sqlite3.connect(str(tmp_path / "runs.db"))) as db:
        assert db.execute("SELECT id, resumed, status FROM runs").fetchall() == [(run.id, 1, "completed")]


def test_a_run_whose_pid_a_later_process_took_is_crashed_and_resumes(tmp_path) -> None:
    """The history keeps a run's pid, not its process's start: a process that started after
    the run only reuses the number (this test's process stands in for it)."""
    db_path = tmp_path / "runs.db"
    with milepost.Run("reused", display="none", history=db_path) as run:
        pass
    with contextlib.closing(sqlite3.connect(str(db_path))) as db, db:
        db.execute("UPDATE runs SET status = 'running', pid = ?, started_at = 1e9 WHERE id = ?", (os.getpid(), run.id))
    out = subprocess.run(
        [sys.executable, "-m", "milepost", "history", "--db", str(db_path), "--json"], capture_output=True, text=True
    )
    assert [r["status"] for r in json.loads(out.stdout)] == ["crashed"], out.stderr
    with milepost.Run("reused", resume=True, display="none", history=db_path) as again:
        pass
    assert again.id == run.id


RESUMER = textwrap.dedent(
    """
    import sys, time, milepost
    time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # both start at the same moment
    try:
        with milepost.Run("exact", resume=True, display="none") as run:
            print("resumed", run.id, flush=True)
            with run.phase("p", total=400) as ph:
                for i in ph.pending(range(400)):
                    with ph.item(str(i)):
                        time.sleep(0.005)
    except milepost.MilepostError as e:
        print("refused", e, flush=True)
    """
)


def test_two_processes_resuming_a_run_at_once_do_not_both_take_it(tmp_path) -> None:
    """Found trying it as a user: two processes that resumed a crashed run at the same moment
    both went ahead (each found it crashed before either had written its row), and the history
    held 227 of its 300 items twice. A resume claims the run in one transaction that checks it
    first."""
    first = subprocess.Popen(
        [sys.executable, "-c", RESUMER, "0"], stdout=subprocess.PIPE, text=True, env=_env(tmp_path)
    )
    assert first.stdout is not None and first.stdout.readline().startswith("resumed")
    time.sleep(0.5)  # about 100 of its 400 items
    first.kill()
    first.communicate(timeout=60)
    at = str(time.time() + 1.5)
    procs = [
        subprocess.Popen([sys.executable, "-c", RESUMER, at], stdout=subprocess.PIPE, text=True, env=_env(tmp_path))
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert sorted(o.split()[0] for o in outs) == ["refused", "refused", "resumed"], outs
    assert all("is still running in process" in o for o in outs if o.startswith("refused")), outs
    with contextlib.closing(sqlite3.connect(str(tmp_path / "runs.db"))) as db:
        n, names = db.execute("SELECT count(*), count(DISTINCT name) FROM items WHERE status = 'done'").fetchone()
    assert n == names == 400, "each item recorded once"


def test_a_run_made_to_resume_and_never_started_does_not_keep_this_process_from_it(tmp_path) -> None:
    db = tmp_path / "runs.db"
    with pytest.raises(KeyboardInterrupt):
        with milepost.Run("again", display="none", history=db) as first:
            raise KeyboardInterrupt
    forgot = milepost.Run("again", resume=True, display="none", history=db)  # made, never entered
    with milepost.Run("again", resume=True, display="none", history=db) as run:
        assert run.id == first.id == forgot.id
        with pytest.raises(milepost.MilepostError, match="still running in this process"):
            milepost.Run("again", resume=True, display="none", history=db)


def test_a_resume_that_ends_before_making_its_phases_keeps_the_runs_counts(tmp_path) -> None:
    """Found trying it as a user: a resumed run that ended before it made its phases again
    wrote 0 done over the run's counts (its phase's row still said 51/300)."""
    _start_and_kill(ITEM_JOB, tmp_path, 1.5, "1000000")  # past its first snapshot written (1 s)
    db_path = tmp_path / "runs.db"
    with pytest.raises(SystemExit):
        with milepost.Run("exact", resume=True, display="none", history=db_path):
            raise SystemExit(1)
    with contextlib.closing(sqlite3.connect(str(db_path))) as db:
        run_done, status = db.execute("SELECT done, status FROM runs").fetchone()
        (phase_done,) = db.execute("SELECT done FROM phases WHERE path = 'p'").fetchone()
    assert status == "failed" and run_done == phase_done > 0, (run_done, phase_done)
