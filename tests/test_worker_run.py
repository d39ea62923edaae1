"""The run as worker code sees it: `current_run()` and `task.run` in a worker process offer
the run's API (phases, loops and pools added to it, lanes, its state), spawned or forked."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor

import pytest

import milepost
from procs_helpers import use_the_current_run


def _nodes(snap: milepost.Snapshot) -> dict:
    return {n["name"]: n for _, n in snap.nodes()}


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_current_run_in_a_pool_worker_is_a_run(method, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MILEPOST_SHM_DIR", str(tmp_path))
    with milepost.Run("wr", display="none", history=False) as run:
        with run.phase("work") as ph:
            with ProcessPoolExecutor(1, mp_context=mp.get_context(method)) as pool:
                kind, run_id, name, history, cancelled, finished = pool.submit(use_the_current_run, ph, 4).result()
        snap = run.snapshot()
    assert (kind, run_id, name, history, cancelled, finished) == ("run", run.id, "wr", None, False, False)
    nodes = _nodes(snap)
    assert nodes["tracked-in-worker"]["done"] == 4
    assert nodes["worker-phase"]["done"] == 2
    assert nodes["threads-in-worker"]["done"] == 3


def _forked_child(queue) -> None:
    run = milepost.current_run()
    try:
        with run.phase("in-child", total=3) as ph:
            ph.advance(3)
        for _ in milepost.track(range(5), desc="child-loop", run=run):
            pass
        queue.put((type(run).__name__, run.history_path, run.kind))
    except Exception as e:  # the parent's assertion shows it
        queue.put(repr(e))


def test_a_forked_child_keeps_the_run_it_inherited(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MILEPOST_SHM_DIR", str(tmp_path / "shm"))
    (tmp_path / "shm").mkdir()
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    with milepost.Run("forked", display="none", history=tmp_path / "runs.db") as run:
        child = ctx.Process(target=_forked_child, args=(queue,))
        child.start()
        got = queue.get(timeout=30)
        child.join(30)
        snap = run.snapshot()
        assert run.history_path == tmp_path / "runs.db"
    assert got == ("Run", None, "run")
    nodes = _nodes(snap)
    assert nodes["in-child"]["done"] == 3
    assert nodes["child-loop"]["done"] == 5


def test_cancel_from_a_worker_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MILEPOST_SHM_DIR", str(tmp_path))
    with milepost.Run("wc", display="none", history=False) as run:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            error = pool.submit(_cancel_in_worker, run).result()
    assert "in the process that started it" in error


def _cancel_in_worker(task: milepost.Task) -> str:
    try:
        task.run.cancel()
    except milepost.MilepostError as e:
        return str(e)
    return "no error"
