"""Entering and leaving a run: slow observers hold up neither; a second Ctrl-C while the run
ends still leaves the history right; a disabled bar leaves no trace."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import milepost
from milepost.persistence import default_path


class Sleepy(milepost.BaseObserver):
    """An observer that takes its time in every call, as a slow webhook would."""

    interval = 0.1

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.closed = threading.Event()
        self.events: list = []

    def on_event(self, event) -> None:
        time.sleep(self.seconds)
        self.events.append(event.kind)

    def on_snapshot(self, snapshot) -> None:
        time.sleep(self.seconds)

    def close(self) -> None:
        time.sleep(self.seconds)
        self.closed.set()


def test_a_slow_observer_holds_up_neither_entering_nor_leaving_a_run() -> None:
    """Issue 9, item 20: an observer sleeping 2 s delayed entering and leaving `with Run` by
    2 s; observers ran on the caller's thread at the run's start and end."""
    slow = Sleepy(2.0)
    t0 = time.monotonic()
    with milepost.Run("slow-observer", display="none", observers=[slow]) as run:
        entered = time.monotonic() - t0
        with run.phase("p") as ph:
            ph.advance(5)
        t1 = time.monotonic()
    left = time.monotonic() - t1
    assert entered < 0.5 and left < 0.5, (entered, left)
    db = sqlite3.connect(str(default_path()))
    assert db.execute("SELECT status, done FROM runs WHERE id = ?", (run.id,)).fetchone() == ("completed", 5), (
        "the run's own history is written without waiting for the user's observer"
    )
    assert slow.closed.wait(30), "the slow observer still gets its final delivery, in the background"
    assert slow.events[0] == "run_started" and slow.events[-1] == "run_finished"


def test_a_slow_observer_finishes_before_the_interpreter_exits(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import sys, time, milepost

        class Late(milepost.BaseObserver):
            def close(self):
                time.sleep(1.0)
                open(sys.argv[1], "w").write("closed")

        with milepost.Run("exit", display="none", history=False, observers=[Late()]):
            pass
        """
    )
    marker = tmp_path / "closed.txt"
    subprocess.run([sys.executable, "-c", script, str(marker)], check=True, timeout=60)
    assert marker.read_text() == "closed"


INTERRUPTED_JOB = textwrap.dedent(
    """
    import milepost
    with milepost.Run("twice", display="plain") as run:
        with run.phase("p") as ph:
            print("started", flush=True)
            i = 0
            while True:
                with ph.item(f"i{i}"):
                    pass
                i += 1
    """
)


def test_a_second_ctrl_c_while_the_run_ends_leaves_the_history_right(tmp_path) -> None:
    """Issue 9, item 7: a second SIGINT during the shutdown left the history `running` with
    stale counts (4 of 6 trials)."""
    for trial, gap in enumerate((0.0, 0.002, 0.005, 0.01, 0.02, 0.05)):
        home = tmp_path / f"t{trial}"
        proc = subprocess.Popen(
            [sys.executable, "-c", INTERRUPTED_JOB],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MILEPOST_HOME": str(home)},
        )
        assert proc.stdout is not None and proc.stdout.readline() == "started\n"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(gap)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert "KeyboardInterrupt" in err, err
        db = sqlite3.connect(str(home / "runs.db"))
        status, done = db.execute("SELECT status, done FROM runs").fetchone()
        rows = db.execute("SELECT count(*) FROM items WHERE status = 'done'").fetchone()[0]
        assert status == "cancelled", f"trial {trial} (gap {gap}): {status}"
        assert done == rows > 0, f"trial {trial}: the history's count {done} and its {rows} rows agree"


def test_a_disabled_bar_leaves_no_trace() -> None:
    """Issue 9, item 8: `track(total=N, disable=True)` created the history database and left a
    run "disabled" running."""
    threads = threading.active_count()
    bar = milepost.track(total=10, desc="quiet", disable=True)
    bar.update(3)
    bar.set_description("still quiet")
    bar.close()
    with milepost.track(total=2, disable=True) as other:
        other.update()
    assert not default_path().exists(), "no history database"
    assert bar.n == 3 and bar.total == 10
    assert threading.active_count() == threads and milepost.current_run() is None


def test_a_run_made_and_never_started_leaves_no_row(tmp_path) -> None:
    """Found trying it as a user: a `Run` made and never entered, after another run of the
    process had used the history, was kept as a run that later read as crashed, and
    `resume=True` took it up. Its row is now written as it starts."""
    code = textwrap.dedent(
        """
        import milepost
        with milepost.Run("setup", display="none") as run:
            run.phase("p", total=1).advance()
        nightly = milepost.Run("nightly", display="none")
        print(repr(nightly))
        """
    )
    env = {**os.environ, "MILEPOST_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "<Run 'nightly' not started>"
    db = sqlite3.connect(str(tmp_path / "runs.db"))
    try:
        assert db.execute("SELECT name, status FROM runs").fetchall() == [("setup", "completed")]
    finally:
        db.close()


def test_a_run_ended_by_an_observer_is_written_before_the_process_exits(tmp_path) -> None:
    """Found in review: `run.finish()` from an observer's thread left the history `running`
    with done 0 when the process exited right after `with Run`."""
    script = textwrap.dedent(
        """
        import milepost

        class Stopper(milepost.BaseObserver):
            interval = 0.05
            def on_snapshot(self, snapshot):
                if snapshot.root["done"] > 1000:
                    run.finish()

        with milepost.Run("stopped", display="none", observers=[Stopper()]) as run:
            ph = run.phase("p")
            try:
                while True:
                    ph.advance()
            except milepost.RunEndedError:
                pass
        """
    )
    subprocess.run(
        [sys.executable, "-c", script], check=True, timeout=60, env={**os.environ, "MILEPOST_HOME": str(tmp_path)}
    )
    db = sqlite3.connect(str(tmp_path / "runs.db"))
    status, done = db.execute("SELECT status, done FROM runs").fetchone()
    assert status == "completed" and done > 1000


def test_a_quick_observer_has_seen_the_end_when_the_run_is_left() -> None:
    """Leaving `with Run` waits a moment (at most 0.2 s) for the user's observers' final
    delivery: a quick one has its events, its last snapshot and `close()` by then, however
    short the run (a run's end no longer takes long enough to hide the race)."""

    class Log(milepost.BaseObserver):
        def __init__(self) -> None:
            self.events: list = []
            self.closed = False

        def on_event(self, event) -> None:
            self.events.append(event.kind)

        def close(self) -> None:
            self.closed = True

    for i in range(20):
        log = Log()
        with milepost.Run(f"quick-{i}", display="none", history=False, observers=[log]) as run:
            run.phase("p").advance()
        assert log.closed and log.events[0] == "run_started" and log.events[-1] == "run_finished", (i, log.events)
