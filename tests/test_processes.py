"""Worker processes: lossless counts through shared memory, lanes, deaths, events, cleanup."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import milepost
from procs_helpers import (
    LINGER,
    count_into,
    die_on_13,
    flood,
    hold_item,
    linger_at_exit,
    nested_work,
    slow,
    square_or_fail,
    start_item_then_die,
)

METHODS = ["fork", "spawn", "forkserver"]


@pytest.fixture(autouse=True)
def shm_dir(tmp_path, monkeypatch) -> Path:
    """Each test gets its own segment directory, so leftovers are visible."""
    d = tmp_path / "shm"
    d.mkdir()
    monkeypatch.setenv("MILEPOST_SHM_DIR", str(d))
    return d


def _wait_for(predicate, seconds: float = 5.0) -> bool:
    """Polls `predicate` every 50 ms, at most `seconds`: a bounded wait, not a timing test."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("method", METHODS)
def test_process_map_counts_every_item_exactly(method, shm_dir) -> None:
    with milepost.Run("pm", display="none") as run:
        out = milepost.process_map(
            square_or_fail,
            range(300),
            workers=2,
            description="map",
            chunksize=7,
            return_exceptions=True,
            mp_context=mp.get_context(method),
        )
        snap = run.snapshot()
    assert [o for o in out if not isinstance(o, Exception)] == [x * x for x in range(300) if x % 25 != 7]
    assert [str(o) for o in out if isinstance(o, Exception)] == [f"bad {x}" for x in range(300) if x % 25 == 7]
    m = snap.find("map")
    assert (m["done"], m["failed"], m["total"], m["in_flight"], m["state"]) == (288, 12, 300, 0, "completed")
    assert m["metrics"] == {"tokens": 3000, "cost_usd": 150.0}
    assert m["mean_item_seconds"] is not None
    failures = {f["name"]: f["error"] for f in snap.data["failures"]}
    assert failures["157"] == "ValueError: bad 157"
    lanes = [lane for lane in snap.data["lanes"] if lane["name"].startswith("pid ")]
    assert 1 <= len(lanes) <= 2 and all(lane["state"] == "finished" for lane in lanes)
    assert sum(lane["done"] + lane["failed"] for lane in lanes) == 300
    assert list(shm_dir.iterdir()) == [], "no segment left behind"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see a process reaped")
def test_a_pool_returns_once_its_workers_left_the_run_not_once_they_are_gone() -> None:
    """A pool whose chunks all came back returns once its workers have marked their slots on
    their way out, every lane finished; their processes end and are reaped meanwhile, by the
    executor (a worker's teardown after its last chunk took 4 to 6 ms of the job's time)."""
    with milepost.Run("pm", display="none", history=False) as run:
        t = time.monotonic()
        out = milepost.process_map(linger_at_exit, range(16), workers=2, chunksize=2, mp_context=mp.get_context("fork"))
        took = time.monotonic() - t
        lanes = [lane for lane in run.snapshot().data["lanes"] if lane["name"].startswith("pid ")]
    assert out == [x * 2 for x in range(16)]
    assert lanes and all(lane["state"] == "finished" for lane in lanes)
    # Before, the pool waited for every worker's exit handlers: LINGER seconds at least.
    assert took < LINGER - 1.0, f"the pool waited {took:.2f} s for its workers to end"
    pids = [int(lane["name"].split()[1]) for lane in lanes]
    deadline = time.monotonic() + LINGER + 10.0
    while any(os.path.exists(f"/proc/{pid}") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # a zombie keeps its /proc entry until it is reaped
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids), "every worker ended and was reaped"


def test_a_pool_with_a_worker_that_never_counted_waits_for_its_processes() -> None:
    """A worker that took no chunk holds no slot, and may be a process still starting (under
    spawn, one that has yet to attach to the run's segment, which the run removes as it ends):
    the pool cannot tell it left, so it waits for every process to end, as before."""
    ctx = mp.get_context("fork")  # both workers start at once; one takes the only chunk
    with milepost.Run("pm", display="none", history=False):
        out = milepost.process_map(linger_at_exit, range(2), workers=2, chunksize=2, mp_context=ctx)
        assert mp.active_children() == [], "every worker process ended and was reaped"
    assert out == [0, 2]


@pytest.mark.parametrize("retries", [0, 1])
def test_an_items_error_carries_its_workers_traceback(retries) -> None:
    """As `concurrent.futures` does: the exception the pool raises (or returns) has the
    worker's traceback as its cause, down to the line of the job's function that raised (the
    native loop without retries, the Python one with them)."""
    ctx = mp.get_context("fork")
    with pytest.raises(ValueError, match="bad 7") as raised:
        milepost.process_map(square_or_fail, range(10), workers=2, chunksize=5, retries=retries, mp_context=ctx)
    out = milepost.process_map(
        square_or_fail, range(10), workers=2, chunksize=5, retries=retries, return_exceptions=True, mp_context=ctx
    )
    for error in (raised.value, out[7]):
        cause = error.__cause__
        assert type(cause).__name__ == "RemoteTraceback", cause
        assert "in square_or_fail" in str(cause) and 'raise ValueError(f"bad {x}")' in str(cause)


def test_a_task_counts_what_its_pools_workers_did() -> None:
    """`task.done` and its kin, read after a pool (or while it runs), hold what the worker
    processes counted for the task, as its snapshot does: they held only the parent's own."""
    with milepost.Run("pm", display="none") as run:
        phase = run.phase("map", total=310)
        phase.advance(10)  # the parent's own
        milepost.process_map(
            square_or_fail, range(300), workers=2, task=phase, return_exceptions=True, mp_context=mp.get_context("fork")
        )
        got = (phase.done, phase.failed, phase.skipped, phase.in_flight)
        assert got == (298, 12, 0, 0)
        node = run.snapshot().find("map")
        assert got == (node["done"], node["failed"], node["skipped"], node["in_flight"])
    assert (phase.done, phase.failed) == (298, 12), "and after the run"


def test_process_map_raises_the_first_error_by_default() -> None:
    with milepost.Run("pm", display="none"):
        with pytest.raises(ValueError, match="bad 7"):
            milepost.process_map(square_or_fail, range(30), workers=2, mp_context=mp.get_context("fork"))


def test_as_completed_yields_every_index_once() -> None:
    with milepost.Run("ac", display="none") as run:
        seen = dict(
            milepost.process_as_completed(
                slow, range(40), workers=2, chunksize=3, description="ac", mp_context=mp.get_context("fork")
            )
        )
        assert run.snapshot().find("ac")["done"] == 40
    assert seen == {i: i for i in range(40)}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_task_passed_to_a_plain_executor_counts_losslessly(method) -> None:
    with milepost.Run("ppe", display="none") as run:
        phase = run.phase("count")
        with ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as pool:
            pids = list(pool.map(count_into, [phase] * 4, [50_000] * 4))
        phase.advance(7)  # the parent counts too
        assert run.snapshot().find("count")["done"] == 200_007
    assert len(set(pids)) >= 1


def test_two_workers_a_million_updates_each_end_exact() -> None:
    ctx = mp.get_context("spawn")
    with milepost.Run("exact", display="none") as run:
        phase = run.phase("hammer", total=2_000_000)
        workers = [ctx.Process(target=count_into, args=(phase, 1_000_000)) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(120)
        assert [w.exitcode for w in workers] == [0, 0]
        assert run.snapshot().find("hammer")["done"] == 2_000_000


def test_nested_phases_steps_loops_and_events_from_workers(event_log) -> None:
    events = event_log.events
    with milepost.Run("nest", display="none", observers=[event_log]) as run:
        phase = run.phase("work")
        with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(nested_work, [phase] * 4, range(4)))
        run.poll()
        snap = run.snapshot()
    work = snap.find("work")
    names = [c["name"] for c in work["children"]]
    assert "sub" in names
    sub = snap.find("sub")
    assert (sub["done"], sub["total"]) == (20, 5 * 4)
    assert snap.find("inner-loop")["done"] == 12
    assert work["failed"] == 4
    logs = [e for e in events if isinstance(e, milepost.LogLine)]
    assert sorted(e.message for e in logs) == [f"worker {k} done" for k in range(4)]
    assert all(e.level == "warning" and e.source.startswith("pid ") for e in logs)
    failed = [e for e in events if isinstance(e, milepost.ItemFailed)]
    assert sorted(e.item for e in failed) == [f"w{k}-item" for k in range(4)]
    assert all(e.path == ("nest", "work") for e in failed)


def test_a_killed_worker_is_found_and_its_item_counted_failed() -> None:
    ctx = mp.get_context("fork")
    with milepost.Run("kill", display="none") as run:
        phase = run.phase("p")
        phase.advance(3)
        child = ctx.Process(target=start_item_then_die, args=(phase,))
        child.start()
        child.join(30)
        assert child.exitcode == -signal.SIGKILL
        assert _wait_for(lambda: run.snapshot().find("p")["failed"] == 1, seconds=2.0), "found within 2 s"
        snap = run.snapshot()
        p = snap.find("p")
        assert (p["done"], p["failed"], p["in_flight"]) == (3, 1, 0)
        fail = snap.data["failures"][0]
        assert (fail["name"], fail["error"]) == ("doomed.json", f"worker died (pid {child.pid})")
        lane = next(lane for lane in snap.data["lanes"] if lane["name"] == f"pid {child.pid}")
        assert lane["state"] == "died"


def test_process_map_survives_a_killed_worker_with_exact_counts() -> None:
    with milepost.Run("kill", display="none") as run:
        out = milepost.process_map(
            die_on_13,
            range(60),
            workers=2,
            chunksize=4,
            description="m",
            return_exceptions=True,
            mp_context=mp.get_context("fork"),
        )
        snap = run.snapshot()
    m = snap.find("m")
    died = [o for o in out if isinstance(o, milepost.WorkerDied)]
    ok = [o for o in out if not isinstance(o, BaseException)]
    assert died and ok and len(died) + len(ok) == 60
    assert any(f["name"] == "13" and f["error"].startswith("worker died") for f in snap.data["failures"])
    assert m["in_flight"] == 0 and m["done"] + m["failed"] <= 60
    assert m["done"] >= len(ok), "every returned result was counted"
    assert m["state"] == "failed"


def test_a_silent_worker_shows_stalled() -> None:
    ctx = mp.get_context("fork")
    with milepost.Run("stall", display="none", stall_after=0.3) as run:
        phase = run.phase("p")
        child = ctx.Process(target=hold_item, args=(phase, 3.0))
        child.start()
        try:

            def lane_state():
                lanes = [lane for lane in run.snapshot().data["lanes"] if lane["name"] == f"pid {child.pid}"]
                return lanes and lanes[0]["state"]

            assert _wait_for(lambda: lane_state() == "busy", 5.0)
            assert _wait_for(lambda: lane_state() == "stalled", 5.0)
        finally:
            child.join(30)


def test_an_overflowing_event_channel_counts_what_it_dropped() -> None:
    got = []

    class Keep(milepost.BaseObserver):
        def on_event(self, event):
            if isinstance(event, milepost.LogLine):
                got.append(event)

    ctx = mp.get_context("fork")
    with milepost.Run("flood", display="none", observers=[Keep()]) as run:
        phase = run.phase("p")
        child = ctx.Process(target=flood, args=(phase, 5000))
        child.start()
        child.join(60)
        run.poll()
        dropped = run.snapshot().data["worker_events_dropped"]
    assert dropped > 0, "5,000 lines in a burst overflow a 256-event ring"
    assert len(got) + dropped == 5000, "every line is delivered or counted"
    assert run.events_dropped >= dropped


@pytest.mark.parametrize("how", ["normal", "exception", "interrupt"])
def test_no_segment_is_left_behind(how, shm_dir) -> None:
    def job():
        with milepost.Run("clean", display="none") as run:
            milepost.process_map(slow, range(6), workers=2, mp_context=mp.get_context("fork"))
            assert len(list(shm_dir.iterdir())) == 1, "the segment exists while the run goes on"
            if how == "exception":
                raise RuntimeError("job failed")
            if how == "interrupt":
                raise KeyboardInterrupt
        return run

    if how == "normal":
        job()
    else:
        with pytest.raises((RuntimeError, KeyboardInterrupt)):
            job()
    assert list(shm_dir.iterdir()) == []


def test_a_segment_left_by_a_killed_parent_is_removed_at_the_next_start(shm_dir) -> None:
    code = textwrap.dedent(
        """
        import os, signal, sys, milepost
        run = milepost.Run("orphan", display="none").start()
        run.phase("p")
        print(run.share(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "MILEPOST_SHM_DIR": str(shm_dir)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    left = Path(proc.stdout.strip())
    assert left.exists() and left.parent == shm_dir
    with milepost.Run("next", display="none") as run:
        run.share()
        assert not left.exists(), "the next run cleans up after a dead parent"


def test_attaching_to_something_else_is_a_clear_error(tmp_path) -> None:
    bogus = tmp_path / "milepost-1-x"
    bogus.write_bytes(b"\0" * 8192)
    with pytest.raises(milepost.InvalidValueError, match="is not a milepost segment"):
        milepost._milepost.SharedRun.attach(str(bogus))
