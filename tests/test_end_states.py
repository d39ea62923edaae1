"""How runs, phases, loops and pools end: one rule, the same in every display and the history;
and updates after a run ended are refused, never silently dropped."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

import milepost
from milepost.persistence import default_path

sys.path.insert(0, os.path.dirname(__file__))
import procs_helpers as helpers  # noqa: E402 - importable by spawned workers from tests/


def _status(run_id: str) -> str:
    db = sqlite3.connect(str(default_path()))
    try:
        return str(db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0])
    finally:
        db.close()


@pytest.mark.parametrize(
    ("code", "state"), [("0", "completed"), ("None", "completed"), ("3", "failed"), ("'bye'", "failed")]
)
def test_sys_exit_inside_a_run_ends_it_by_its_code(tmp_path, code, state) -> None:
    """Issue 9, item 9: `sys.exit(0)` inside a run recorded it failed."""
    script = textwrap.dedent(
        f"""
        import sys, milepost
        with milepost.Run("exiting", display="none") as run:
            with run.phase("p") as ph:
                ph.advance()
                print(run.id, flush=True)
                sys.exit({code})
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MILEPOST_HOME": str(tmp_path)},
    )
    run_id = proc.stdout.strip()
    db = sqlite3.connect(str(tmp_path / "runs.db"))
    assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == state
    assert db.execute("SELECT status FROM phases WHERE run_id = ?", (run_id,)).fetchone()[0] == state


def test_updates_after_the_run_ended_are_refused_naming_the_run(clock) -> None:
    """Issue 9, item 10: updates after the run ended were dropped without a word."""
    with milepost.Run("over", display="none", clock=clock) as run:
        ph = run.phase("p")
        ph.advance(2)
    calls = [
        lambda: ph.advance(),
        lambda: ph.skip(),
        lambda: ph.fail("x", "e"),
        lambda: ph.set_total(5),
        lambda: ph.add_total(1),
        lambda: ph.metric("tokens", 1),
        lambda: ph.log("late"),
        lambda: ph.item("late").__enter__(),
        lambda: run.advance(),
    ]
    for call in calls:
        with pytest.raises(milepost.RunEndedError, match="'over'|\"over\""):
            call()
    assert run.snapshot().find("p")["done"] == 2, "what the run ended with stands"
    assert issubclass(milepost.RunEndedError, milepost.MilepostError)


def test_a_thread_advancing_past_the_end_gets_an_error_and_no_count_is_lost() -> None:
    counted = [0]
    started, ended = threading.Event(), threading.Event()
    out = io.StringIO()

    def advance_forever(ph: milepost.Task) -> None:
        started.set()
        try:
            for _ in range(50_000_000):  # bounded: a run that never refuses fails the test, not hangs it
                ph.advance()
                counted[0] += 1
        except milepost.RunEndedError:
            ended.set()

    with milepost.Run("late", display="plain", output=out) as run:
        ph = run.phase("p")
        t = threading.Thread(target=advance_forever, args=(ph,))
        t.start()
        started.wait(10)
        with run.phase("q") as q:
            for _ in range(100_000):
                q.advance()
    t.join(60)
    assert ended.is_set(), "the thread was told the run ended"
    assert run.snapshot().find("p")["done"] == counted[0], "every advance that returned is in the final count"
    ends = [line for line in out.getvalue().splitlines() if " p: " in line and "completed" in line]
    assert len(ends) == 1, f"the phase's end line is printed once: {ends}"


def test_a_worker_dying_under_return_exceptions_fails_the_run_everywhere() -> None:
    """Issue 9, item 13: the run ended "completed" with a check mark while its phase failed."""
    out = io.StringIO()
    with milepost.Run("dies", display="plain", output=out) as run:
        results = milepost.process_map(
            helpers.die_on_13, range(40), workers=2, chunksize=2, description="map", return_exceptions=True
        )
    assert any(isinstance(r, milepost.WorkerDied) for r in results)
    snap = run.snapshot()
    assert (snap.find("map")["state"], snap.root["state"]) == ("failed", "failed")
    assert _status(run.id) == "failed"
    last = out.getvalue().splitlines()[-2:]
    assert any("failed" in line for line in last) and not any("completed" in line for line in last), last


def test_process_map_raising_fails_its_phase_and_the_run() -> None:
    """Issue 9, item 13: `process_map` raising left its phase completed."""
    with pytest.raises(ValueError, match="bad 7"):
        with milepost.Run("raises", display="none") as run:
            milepost.process_map(helpers.square_or_fail, range(10), workers=2, description="squares")
    snap = run.snapshot()
    assert (snap.find("squares")["state"], snap.root["state"]) == ("failed", "failed")
    assert _status(run.id) == "failed"


def _cancelled_pools(kind: str) -> str:
    """The end state of a pool's phase when the run is cancelled while it runs."""
    with milepost.Run(f"cancel-{kind}", display="none") as run:
        timer = threading.Timer(0.3, run.cancel, args=("test",))
        timer.start()
        try:
            pool = milepost.thread_map if kind == "threads" else milepost.process_map
            pool(helpers.slow, range(200), workers=2, description="pool")
        except milepost.Cancelled:
            pass
        finally:
            timer.join()
    return str(run.snapshot().find("pool")["state"])


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_every_pool_ends_a_cancel_the_same_way(kind) -> None:
    """Issue 9, item 14: the exception-to-state rule existed three times; processes called a
    cancel a failure."""
    assert _cancelled_pools(kind) == "cancelled"


@pytest.mark.parametrize(
    ("exc", "state"),
    [
        (KeyboardInterrupt, "cancelled"),
        (milepost.Cancelled, "cancelled"),
        (SystemExit(0), "completed"),
        (ValueError, "failed"),
        (SystemExit(2), "failed"),
    ],
)
def test_a_block_a_loop_and_a_thread_pool_agree_on_an_exception(clock, exc, state) -> None:
    def raise_it(*_):
        raise exc

    states = []
    with milepost.Run("agree", display="none", clock=clock) as run:
        with pytest.raises(BaseException):  # noqa: B017 - every kind of exit is the point
            with run.phase("block"):
                raise_it()
        with pytest.raises(BaseException):  # noqa: B017
            for _ in milepost.track(range(3), description="loop"):
                raise_it()
        with pytest.raises(BaseException):  # noqa: B017
            milepost.thread_map(raise_it, range(3), workers=1, description="pool")
        states = [run.snapshot().find(n)["state"] for n in ("block", "loop", "pool")]
    assert states == [state] * 3


def test_new_phases_and_steps_after_the_end_are_refused_and_end_changes_nothing(clock) -> None:
    with milepost.Run("closed", display="none", clock=clock) as run:
        ph = run.phase("p")
    with pytest.raises(milepost.RunEndedError):
        run.phase("late")
    with pytest.raises(milepost.RunEndedError):
        ph.step("late")
    ph.end("failed")
    assert [n["state"] for _, n in run.snapshot().nodes()] == ["completed"]


def test_a_forked_child_is_refused_after_its_parent_ended_the_run() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with milepost.Run("forked", display="none") as run:
        ph = run.phase("p")
        gate, told = ctx.Event(), ctx.Queue()

        def child() -> None:
            gate.wait(30)
            refused = []
            for name, call in (
                ("log", lambda: ph.log("late")),
                ("advance", lambda: ph.advance()),
                ("step", lambda: ph.step("late")),
            ):
                try:
                    call()
                except milepost.RunEndedError:
                    refused.append(name)
            told.put(refused)

        proc = ctx.Process(target=child)
        proc.start()
    gate.set()
    assert told.get(timeout=30) == ["log", "advance", "step"]
    proc.join(30)


def test_done_counted_both_ways_stays_within_the_range(clock) -> None:
    with milepost.Run("both", display="none", clock=clock) as run:
        ph = run.phase("p")
        ph.advance(2**53 - 1)
        with pytest.raises(milepost.InvalidValueError, match="9007199254740991"):
            with ph.item("one more"):
                pass
    assert run.snapshot().find("p")["done"] == 2**53 - 1


def test_a_bare_loops_first_plain_line_shows_its_total_and_unit() -> None:
    """Found by a newcomer: a bare `track()` began with `· 0 processed · ? it/s`."""
    out = io.StringIO()
    for _ in milepost.track(["a", "b", "c"], desc="files", unit="file", display="plain", file=out):
        pass
    first = out.getvalue().splitlines()[0]
    # The loop may be over before the first delivery: either way its line shows the total.
    assert "/3" in first and "processed" not in first, first


def test_pending_hands_out_no_more_items_once_cancelled(clock) -> None:
    seen = []
    with pytest.raises(milepost.Cancelled):
        with milepost.Run("pending-cancel", display="none", clock=clock) as run:
            with run.phase("p", total=10) as ph:
                for i in ph.pending(range(10)):
                    with ph.item(str(i)):
                        seen.append(i)
                    if i == 3:
                        run.cancel("enough")
    assert seen == [0, 1, 2, 3]
    assert run.state == "cancelled" and ph.state == "cancelled"
