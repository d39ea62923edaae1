"""Worker processes at their edges: forks under load, forks of forks, slot reuse, long texts,
deep trees, metric limits, stalls, ordering, a full shared-memory filesystem."""

from __future__ import annotations

import copy
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

import milepost
import milepost.persistence
from procs_helpers import (
    busy_in_one_item,
    long_failure,
    long_step_names,
    many_metrics,
    nested_steps,
    open_step_forever,
    slow,
    square_or_fail,
)

FORK = mp.get_context("fork")


@pytest.fixture(autouse=True)
def shm_dir(tmp_path, monkeypatch):
    d = tmp_path / "shm"
    d.mkdir()
    monkeypatch.setenv("MILEPOST_SHM_DIR", str(d))
    return d


def test_forks_while_other_threads_snapshot_never_hang() -> None:
    with milepost.Run("forks", display="none") as run:
        run.phase("p").advance()
        stop = threading.Event()

        def snapshots():
            while not stop.is_set():
                run.snapshot()

        threads = [threading.Thread(target=snapshots) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for _ in range(200):
                pid = os.fork()
                if pid == 0:
                    os._exit(0)
                deadline = time.monotonic() + 10
                while os.waitpid(pid, os.WNOHANG) == (0, 0):
                    if time.monotonic() > deadline:
                        os.kill(pid, signal.SIGKILL)
                        os.waitpid(pid, 0)
                        pytest.fail("a forked child hung after fork")
                    time.sleep(0.001)
        finally:
            stop.set()
            for t in threads:
                t.join()


def test_a_forked_child_exiting_normally_leaves_the_parents_segment(shm_dir) -> None:
    code = (
        "import os, sys, milepost\n"
        "run = milepost.Run('f', display='none').start()\n"
        "ph = run.phase('p')\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ph.advance(5)\n"
        "    sys.exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print(len(os.listdir(os.environ['MILEPOST_SHM_DIR'])), run.snapshot().find('p')['done'])\n"
        "run.finish()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "5"]
    assert "panicked" not in proc.stderr


def test_methods_bound_before_a_fork_and_runs_not_yet_started_count_in_children() -> None:
    run = milepost.Run("bound", display="none")  # not started yet
    phase = run.phase("p")
    advance = phase.advance
    bar = milepost.track(total=1000, desc="bar", run=run)

    def child():
        for _ in range(50):
            advance()
            bar.update()

    procs = [FORK.Process(target=child) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    with run:
        snap = run.snapshot()
    assert snap.find("p")["done"] == 150
    assert snap.find("bar")["done"] == 150


def test_many_short_lived_workers_reuse_slots_and_exit_cleanly() -> None:
    with milepost.Run("many", display="none") as run:
        phase = run.phase("p")

        def child():
            phase.advance(10)

        for _ in range(140):
            p = FORK.Process(target=child)
            p.start()
            p.join(30)
            assert p.exitcode == 0
        snap = run.snapshot()
    assert snap.find("p")["done"] == 1400
    states = {lane["state"] for lane in snap.data["lanes"]}
    assert states == {"finished"}


def test_long_worker_texts_arrive_clipped_never_lost(event_log) -> None:
    got = event_log.events
    with milepost.Run("long", display="none", observers=[event_log]) as run:
        phase = run.phase("p")
        p = FORK.Process(target=long_failure, args=(phase,))
        p.start()
        p.join(30)
        snap = run.snapshot()
    failure = snap.data["failures"][0]
    assert failure["name"] == "long-one" and failure["error"].startswith("EEEE") and failure["error"].endswith("…")
    kinds = [e.kind for e in got]
    assert "item_failed" in kinds and "log" in kinds
    assert kinds.index("log") < kinds.index("run_finished"), "worker events come before the run's end"
    assert snap.data["worker_events_dropped"] == 0


def test_steps_workers_nest_keep_their_parents() -> None:
    with milepost.Run("tree", display="none") as run:
        phase = run.phase("work")
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            pool.submit(nested_steps, phase).result()
        snap = run.snapshot()
    work = snap.find("work")
    assert [c["name"] for c in work["children"]] == ["outer"]
    assert [c["name"] for c in work["children"][0]["children"]] == ["inner"]
    assert work["done"] == 1


def test_a_worker_past_the_metric_limit_gets_the_error() -> None:
    with milepost.Run("metrics", display="none") as run:
        phase = run.phase("p")
        for i in range(20):
            phase.metric(f"parent-metric-{i}", 1)
        with ProcessPoolExecutor(1, mp_context=FORK) as pool:
            message = pool.submit(many_metrics, phase, 20).result()
        snap = run.snapshot()
    assert "a run holds at most 32 metric names" in message
    assert len(snap.find("p")["metrics"]) == 32


def test_a_worker_that_keeps_counting_is_not_stalled() -> None:
    with milepost.Run("busy", display="none", stall_after=0.5) as run:
        phase = run.phase("p")
        p = FORK.Process(target=busy_in_one_item, args=(phase, 2.0))
        p.start()
        seen = set()
        deadline = time.monotonic() + 1.8
        while time.monotonic() < deadline:
            seen |= {lane["state"] for lane in run.snapshot().data["lanes"] if lane["name"].startswith("pid ")}
            time.sleep(0.1)
        p.join(30)
    assert "busy" in seen and "stalled" not in seen


def test_steps_workers_leave_open_end_with_the_run() -> None:
    with milepost.Run("open", display="none") as run:
        phase = run.phase("p")
        p = FORK.Process(target=open_step_forever, args=(phase,))
        p.start()
        p.join(30)
    states = {n["name"]: n["state"] for _, n in run.snapshot().nodes()}
    assert states == {"p": "completed", "never-closed": "completed"}


def test_long_step_names_from_workers_are_reused() -> None:
    with milepost.Run("names", display="none") as run:
        phase = run.phase("p")
        with ProcessPoolExecutor(2, mp_context=FORK) as pool:
            list(pool.map(long_step_names, [phase] * 300, [1] * 300))
        snap = run.snapshot()
    steps = snap.find("p")["children"]
    assert len(steps) == 1 and steps[0]["done"] == 300


def test_a_task_copied_in_the_parent_stays_the_parents() -> None:
    with milepost.Run("copy", display="none") as run:
        phase = run.phase("p")
        run.share()
        clone = copy.deepcopy({"task": phase})["task"]
        assert clone is phase
        assert milepost.current_run() is run
        milepost.process_map(slow, range(4), workers=2, mp_context=FORK)


def test_a_full_shared_memory_filesystem_is_an_error_not_a_crash(tmp_path, monkeypatch) -> None:
    mount = tmp_path / "tiny-shm"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(f"this test needs to mount a small tmpfs (root): {proc.stderr.strip()}")
    monkeypatch.setenv("MILEPOST_SHM_DIR", str(mount))
    try:
        with milepost.Run("full", display="none") as run:
            out = milepost.process_map(slow, range(6), workers=2, mp_context=FORK, return_exceptions=True)
            run.phase("after").advance()
        errors = [o for o in out if isinstance(o, BaseException)]
        assert errors and all("no room for this worker" in str(e) for e in errors)
        assert run.snapshot().find("after")["done"] == 1, "the parent goes on"
        assert os.listdir(mount) == []
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)  # lazy: a mapping may still be open


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_resumed_run_skips_what_the_process_pool_finished(method) -> None:
    """process_map writes a history row (in the parent) for every item whose result came back,
    so pending() in a resumed run leaves out exactly those."""
    from procs_helpers import die_on_13, square_or_fail

    ctx = mp.get_context(method)
    with milepost.Run("pool-resume", display="none") as first:
        with first.phase("map") as ph:
            out = milepost.process_map(
                die_on_13, range(40), workers=2, chunksize=4, task=ph, return_exceptions=True, mp_context=ctx
            )
        with first.phase("score") as ph:
            milepost.process_map(square_or_fail, range(30), workers=2, task=ph, return_exceptions=True, mp_context=ctx)
    came_back = {i for i, o in enumerate(out) if not isinstance(o, BaseException)}
    assert came_back and len(came_back) < 40, "the worker's death lost some items"
    db = sqlite3.connect(str(milepost.persistence.default_path()))
    rows = db.execute(
        "SELECT name, status, duration, error, metrics FROM items WHERE run_id = ? AND phase = 'score'", (first.id,)
    ).fetchall()
    failed = {name: error for name, status, _, error, _ in rows if status == "failed"}
    assert failed == {"7": "ValueError: bad 7"}
    assert len(rows) == 30 and all(d is not None and d >= 0 for _, _, d, _, _ in rows)
    assert all(json.loads(m) == {"tokens": 10, "cost_usd": 0.5} for *_, m in rows), "each item's own metrics"

    with milepost.Run("pool-resume", display="none", resume=first.id) as again:
        left = list(again.phase("map").pending(range(40)))
        rescored = list(again.phase("score").pending(range(30)))
    assert set(left) == set(range(40)) - came_back
    assert rescored == [7], "only the failed item is pending"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_thread_pool_inside_a_process_pool_worker(method) -> None:
    from procs_helpers import threads_inside

    with milepost.Run("nested-pools", display="none", history=False) as run:
        out = milepost.process_map(
            threads_inside, [3, 4, 5], workers=2, description="outer", mp_context=mp.get_context(method)
        )
        snap = run.snapshot()
    assert out == [6, 10, 15]
    assert snap.find("outer")["done"] == 3
    assert snap.find("inner")["done"] == 12, "every inner item counted, from every worker"


@pytest.mark.parametrize("workers, chunksize", [(0, None), (None, 0), (0, 0)])
def test_zero_workers_or_chunksize_mean_the_default(workers, chunksize) -> None:
    with milepost.Run("zeros", display="none", history=False) as run:
        out = milepost.process_map(abs, range(-20, 0), workers=workers, chunksize=chunksize)
    assert out == list(range(20, 0, -1))
    assert run.snapshot().find("abs")["done"] == 20


@pytest.mark.parametrize("bad", [-1, 1.5, "2"])
def test_bad_worker_counts_are_named(bad) -> None:
    with pytest.raises(milepost.InvalidValueError, match=repr(bad)):
        milepost.process_map(abs, range(3), workers=bad, display="none")


def test_a_pools_failures_reach_observers_before_its_phase_ends(event_log) -> None:
    """Found trying it as a user: with `display="json"`, a pool's last failures came after its
    phase's end, after the next phase too, and `milepost replay` put them under that phase."""
    with milepost.Run("order", display="none", observers=[event_log]) as run:
        with run.phase("map", total=400) as ph:
            out = milepost.process_map(
                square_or_fail, range(400), task=ph, workers=2, mp_context=FORK, return_exceptions=True
            )
        with run.phase("after") as after:
            after.advance()
    kinds = [(type(e).__name__, e.path[1:]) for e in event_log.events]
    failed = [i for i, (kind, path) in enumerate(kinds) if kind == "ItemFailed"]
    assert len(failed) == sum(isinstance(v, Exception) for v in out) > 0
    assert max(failed) < kinds.index(("PhaseFinished", ("map",))), kinds


def test_a_function_workers_cannot_load_is_refused_before_anything_is_made() -> None:
    with milepost.Run("lambda", display="none", history=False) as run:
        with pytest.raises(milepost.InvalidValueError, match=r"fn must be picklable .* <function .*<lambda>"):
            milepost.process_map(lambda x: x, range(10), workers=2, mp_context=FORK)
    assert run.snapshot().root["children"] == [] and run.snapshot().root["state"] == "completed"


def test_an_item_that_cannot_be_sent_to_a_worker_raises_and_hangs_nothing() -> None:
    """Found trying it as a user: a `process_map` whose chunk could not be pickled hung for
    good in the executor's shutdown (CPython issue 116685): its error is raised now."""
    code = textwrap.dedent(
        """
        import threading, milepost
        from procs_helpers import slow
        with milepost.Run("unpicklable", display="none", history=False):
            try:
                milepost.process_map(slow, [1, 2, threading.Lock(), 4], workers=2, chunksize=1)
            except TypeError as e:
                print("raised:", e)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.path.dirname(__file__)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "raised: cannot pickle '_thread.lock' object"


def test_mp_context_takes_a_start_methods_name_and_refuses_anything_else() -> None:
    """Found trying it as a user: `mp_context="spawn"` failed with an AttributeError and left
    a completed phase of no items."""
    with milepost.Run("contexts", display="none", history=False) as run:
        assert milepost.process_map(slow, [1, 2], workers=1, mp_context="fork") == [1, 2]
        for bad in ("teleport", 42):
            with pytest.raises(milepost.InvalidValueError, match=rf"mp_context must be .*, got {bad!r}"):
                milepost.process_map(slow, [1, 2], workers=1, mp_context=bad)
    assert [c["name"] for c in run.snapshot().root["children"]] == ["slow"], "no phase for a refused pool"
